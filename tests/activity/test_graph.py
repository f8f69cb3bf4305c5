"""The lazy activity graph (infer on Dask input) equals in-memory infer, for any chunking, and stays lazy."""

from __future__ import annotations

import anndata as ad
import dask
import dask.array as da
import numpy as np
import pandas as pd
import pytest

from cytodask.activity import infer
from cytodask.demo import SyntheticAtlasSpec, gene_table, generate_block

SPEC = SyntheticAtlasSpec(n_cells=900, n_genes=5000, n_donors=4, seed=9)


@pytest.fixture(scope="module")
def counts():
    return generate_block(SPEC, 0, SPEC.n_cells).astype(np.float64), gene_table(SPEC).index.astype(str).tolist()


@pytest.mark.parametrize(("method", "chunk"), [("analytic", 100), ("analytic", 900), ("permutation", 250)])
def test_lazy_equals_in_memory(counts, method, chunk):
    x, genes = counts
    blocks = [x[a:a + chunk] for a in range(0, x.shape[0], chunk)]
    dx = da.concatenate([da.from_delayed(dask.delayed(b), shape=b.shape, dtype=b.dtype,
                                         meta=x[:0]) for b in blocks], axis=0)
    lazy = infer(dx, "CytoSig", genes=genes, method=method, n_rand=40)
    assert isinstance(lazy.zscore, da.Array)  # nothing computed yet
    got = lazy.compute(scheduler="sync")
    adata = ad.AnnData(x.tocsr(), obs=pd.DataFrame(index=list(map(str, range(x.shape[0])))),
                       var=pd.DataFrame(index=genes))
    ref = infer(adata, "CytoSig", method=method, n_rand=40, backend="numpy")
    for key in ("beta", "se", "zscore", "pvalue"):
        # same kernels; only the gene-mean summation order differs with chunking: 1e-10 absolute
        np.testing.assert_allclose(getattr(got, key).to_numpy(), getattr(ref, key).loc[got.zscore.index].to_numpy(),
                                   rtol=0, atol=1e-10, err_msg=key)
    assert (got.empty.to_numpy() == ref.empty.to_numpy()).all()


def test_lazy_errors(counts):
    x, genes = counts
    with pytest.raises(ValueError, match="genes has 3 names"):
        infer(da.zeros((10, 5000), chunks=5), genes=["a", "b", "c"])
    with pytest.raises(ValueError, match="A Dask array needs genes="):
        infer(da.zeros((10, 5000), chunks=5))


def test_infer_routes_dask_input_to_the_lazy_graph(counts):
    x, genes = counts
    dx = da.from_array(x.toarray(), chunks=(300, -1))
    res = infer(dx, genes=genes, method="analytic")
    assert isinstance(res.zscore, da.Array)
    with pytest.raises(ValueError, match="needs genes="):
        infer(dx)
