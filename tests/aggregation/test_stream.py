"""Streaming per-cell normalization: equals the dense formula, keeps CSR blocks, computes nothing when built."""

from __future__ import annotations

import anndata as ad
import dask
import numpy as np
import pytest
import scipy.sparse as sp

import cytodask.ingest.atlas as atlas_mod
from cytodask.aggregation import normalized_cells
from cytodask.aggregation.kernels import normalize_cells
from cytodask.ingest import open_atlas


def _dense_formula(x: np.ndarray, scale: float, log=np.log2) -> np.ndarray:
    t = x.sum(1, keepdims=True)
    return log(x / np.where(t > 0, t, 1) * scale + 1)


def test_equals_dense_formula_block_by_block(atlas_store, counts_adata: ad.AnnData):
    y = normalized_cells(open_atlas(atlas_store(500)).to_dask())
    assert y.chunks[0] == (500, 500, 500, 500)
    first = y.blocks[1].compute()
    assert sp.issparse(first) and first.format == "csr"
    x = counts_adata.X.toarray().astype(np.float64)
    assert first.nnz == sp.csr_matrix(x[500:1000]).nnz  # same sparsity pattern: zeros never stored
    # float64 throughout: rel 1e-12
    np.testing.assert_allclose(y.compute().toarray(), _dense_formula(x, 1e5), rtol=1e-12)
    y6 = normalized_cells(atlas_store(500), normalize="log2cp1e6", dtype=np.float32)
    assert y6.dtype == np.float32
    np.testing.assert_allclose(y6.compute().toarray(), _dense_formula(x, 1e6), rtol=1e-6)  # float32 values


def test_building_reads_nothing(atlas_store, monkeypatch: pytest.MonkeyPatch):
    reads = []
    real = atlas_mod._read_block
    monkeypatch.setattr(atlas_mod, "_read_block", lambda *a: reads.append(a[1:3]) or real(*a))
    y = normalized_cells(open_atlas(atlas_store(500)).to_dask())
    assert reads == []  # lazy: building the graph reads no block
    y.blocks[2].compute()
    assert reads == [(1000, 1500)]  # computing one block reads exactly that block


def test_kernel_dense_and_sparse_agree_and_anndata_input(counts_adata: ad.AnnData):
    x = counts_adata.X[:50]
    x = sp.csr_matrix((x.data, x.indices, x.indptr), shape=x.shape)
    x.data[::5] = 0  # explicit zeros stay zeros
    for method, scale, log in (("log1p", 1e4, np.log), ("log2cp1e5", 1e5, np.log2)):
        ref = _dense_formula(x.toarray().astype(np.float64), scale, log)
        np.testing.assert_allclose(normalize_cells(x, method, np).toarray(), ref, rtol=1e-12)
        np.testing.assert_allclose(normalize_cells(x.toarray(), method, np), ref, rtol=1e-12)
    y = normalized_cells(counts_adata, batch_size=300)
    assert y.numblocks == (7, 1)
    ref = _dense_formula(counts_adata.X.toarray().astype(np.float64), 1e5)
    np.testing.assert_allclose(dask.compute(y)[0].toarray(), ref, rtol=1e-12)
    with pytest.raises(ValueError, match="normalize='log10'"):
        normalized_cells(counts_adata, normalize="log10")  # type: ignore[arg-type]
