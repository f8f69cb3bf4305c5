"""Lazy activity on CuPy blocks (issue 15.3/7): the results, the meta, and shared operands uploaded once.

Stores are int32 (as 10x and the demo write them) and float32. CPU and GPU run the same kernels;
float64 rounding on another device differs in the last bits: atol 1e-8 on z-scores and p-values
(as the stage's GPU test).
"""

from __future__ import annotations

import dask
import numpy as np
import pandas as pd
import pytest

from cytodask.activity import infer
from cytodask.activity.preprocess import normalize_sparse
from cytodask.core import xp as xpm
from cytodask.ingest import open_atlas
from tests.gpu_util import STORE_DTYPES, counts_store, requires_gpu

pytestmark = requires_gpu


@pytest.fixture(scope="module", params=STORE_DTYPES)
def gpu_atlas(request, tmp_path_factory, counts_adata):
    return open_atlas(counts_store(tmp_path_factory.mktemp("gpu-act"), counts_adata, request.param, 512))


def _signature(genes: list[str]) -> pd.DataFrame:
    rng = np.random.default_rng(4)
    return pd.DataFrame(rng.standard_normal((len(genes), 6)), index=genes, columns=[f"S{j}" for j in range(6)])


@pytest.mark.parametrize("method", ["analytic", "permutation"])
def test_infer_on_cupy_blocks_equals_numpy_blocks(gpu_atlas, method: str):
    import cupy as cp

    genes = list(gpu_atlas.var.index)
    sig = _signature(genes)
    kw = dict(genes=genes, gene_axis=1, method=method, n_rand=40, group=False, min_genes=10)
    gpu = infer(gpu_atlas.to_dask("cupy"), sig, **kw)
    cpu = infer(gpu_atlas.to_dask("numpy"), sig, **kw)
    assert isinstance(gpu.zscore._meta, cp.ndarray) and isinstance(gpu.empty._meta, cp.ndarray)
    assert isinstance(gpu.zscore.blocks[0].compute(), cp.ndarray)  # results stay on the device
    g, c = gpu.compute(), cpu.compute()
    for key in ("zscore", "pvalue", "beta", "se"):
        np.testing.assert_allclose(getattr(g, key).to_numpy(), getattr(c, key).to_numpy(), rtol=0, atol=1e-8,
                                   err_msg=key)
    assert g.empty.equals(c.empty)


def test_shared_operands_uploaded_once_per_process(gpu_atlas, monkeypatch: pytest.MonkeyPatch):
    import cupy as cp

    genes = list(gpu_atlas.var.index)
    uploads: list[tuple[int, ...]] = []
    real = xpm.to_device

    def counting(a, xp):
        uploads.append(tuple(np.shape(a)))
        return real(a, xp)

    monkeypatch.setattr(xpm, "to_device", counting)
    xpm._DEVICE_COPIES.clear()
    res = infer(gpu_atlas.to_dask("cupy"), _signature(genes), genes=genes, gene_axis=1, method="permutation",
                n_rand=20, group=False, min_genes=10)
    dask.compute(res.zscore, scheduler="sync")
    assert gpu_atlas.n_blocks >= 3
    n = len(genes)  # every gene is in the signature: the common genes
    assert uploads.count((6, n)) == 1 and uploads.count((20, n)) == 1, uploads  # T and the permutation table
    assert uploads.count((n,)) == 1, uploads  # the gene means
    a = np.arange(5.0)
    assert xpm.device_copy(a, cp) is xpm.device_copy(a, cp)
    assert isinstance(xpm.device_copy(a, cp), cp.ndarray) and xpm.device_copy(a.copy(), cp) is not xpm.device_copy(a, cp)


def test_sparse_normalize_and_value_rows_on_cupy(gpu_atlas):
    import cupy as cp

    from cytodask.ingest.atlas import device_block

    host = gpu_atlas.read_block(0)
    dev = device_block(host, "cupy")
    assert isinstance(dev, xpm.sparse_module(cp).csr_matrix) and dev.dtype == np.float32
    totals = np.asarray(host.sum(axis=1), dtype=np.float64).ravel()
    ref = normalize_sparse(host, totals, xp=np)
    got = normalize_sparse(dev, cp.asarray(totals), xp=cp)
    np.testing.assert_allclose(cp.asnumpy(got.data), ref.data, rtol=1e-15)
    np.testing.assert_array_equal(cp.asnumpy(xpm.value_rows(dev.indptr, cp)),
                                  np.repeat(np.arange(host.shape[0]), np.diff(host.indptr)))
