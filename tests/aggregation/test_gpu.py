"""CuPy block paths of every aggregation kernel and function, compared with NumPy/SciPy on the same data.

Tolerances: integer sums, sums of squares, counts and the variance of integer
counts (exact path: a function of the exact ``(n, S, Σx²)``) are bit-identical
on both backends; M2, Chan's variance and normalized values rel 1e-12 (GPU
atomics reorder float64 additions).
"""

from __future__ import annotations

import anndata as ad
import dask
import numpy as np
import pytest
import scipy.sparse as sp

from cytodask.aggregation import bootstrap_pseudobulk, normalized_cells, pseudobulk
from cytodask.aggregation.kernels import (
    chan_merge,
    finish_moments,
    group_moments,
    normalize_cells,
    weighted_group_sums,
)
from cytodask.ingest import open_atlas
from tests.gpu_util import STORE_DTYPES, counts_store, requires_gpu

pytestmark = requires_gpu

ALL = ("sum", "mean", "var", "count_nonzero")


def _block(seed: int = 0) -> tuple[sp.csr_matrix, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = sp.random(400, 60, density=0.2, format="csr", random_state=seed, dtype=np.float64)
    x.data = np.ceil(x.data * 30)
    return x.astype(np.float32), rng.integers(-1, 6, 400)


def test_moments_and_chan_merge_cupy_equal_numpy():
    import cupy as cp
    import cupyx.scipy.sparse as cpsp

    x, codes = _block()
    for block, gblock in ((x, cpsp.csr_matrix(x)), (x.toarray(), cp.asarray(x.toarray()))):
        ref = group_moments(block, codes, 6, np)
        got = group_moments(gblock, cp.asarray(codes), 6, cp)
        for key in ("n", "sum", "sq", "integral", "nnz"):
            np.testing.assert_array_equal(cp.asnumpy(got[key]), ref[key])
        np.testing.assert_allclose(cp.asnumpy(got["m2"]), ref["m2"], rtol=1e-12, atol=1e-9)
    halves = (slice(0, 150), slice(150, None))
    a_ref, b_ref = (group_moments(x[s], codes[s], 6, np) for s in halves)
    a, b = (group_moments(cpsp.csr_matrix(x[s]), cp.asarray(codes[s]), 6, cp) for s in halves)
    m_ref, m = chan_merge(a_ref, b_ref, np), chan_merge(a, b, cp)
    np.testing.assert_allclose(cp.asnumpy(m["m2"]), m_ref["m2"], rtol=1e-12, atol=1e-9)
    mean, chan = finish_moments(m["n"], m["sum"], m["m2"], cp)
    mean_ref, chan_ref = finish_moments(m_ref["n"], m_ref["sum"], m_ref["m2"], np)
    np.testing.assert_allclose(cp.asnumpy(chan), chan_ref, rtol=1e-12)
    np.testing.assert_array_equal(cp.asnumpy(mean), mean_ref)
    _, var = finish_moments(m["n"], m["sum"], m["m2"], cp, sq=m["sq"], integral=m["integral"])
    _, var_ref = finish_moments(m_ref["n"], m_ref["sum"], m_ref["m2"], np, sq=m_ref["sq"], integral=m_ref["integral"])
    np.testing.assert_array_equal(cp.asnumpy(var), var_ref)  # exact integer path: same bits on both backends


def test_integral_flags_and_fallback_cupy_equal_numpy():
    import cupy as cp
    import cupyx.scipy.sparse as cpsp

    x, codes = _block(3)
    x = x.astype(np.float64)
    x.data[codes[np.repeat(np.arange(400), np.diff(x.indptr))] == 2] += 0.25  # group 2 non-integer
    for block, gblock in ((x, cpsp.csr_matrix(x)), (x.toarray(), cp.asarray(x.toarray()))):
        ref = group_moments(block, codes, 6, np)
        got = group_moments(gblock, cp.asarray(codes), 6, cp)
        np.testing.assert_array_equal(cp.asnumpy(got["integral"]), [True, True, False, True, True, True])
        _, var = finish_moments(got["n"], got["sum"], got["m2"], cp, sq=got["sq"], integral=got["integral"])
        _, var_ref = finish_moments(ref["n"], ref["sum"], ref["m2"], np, sq=ref["sq"], integral=ref["integral"])
        np.testing.assert_allclose(cp.asnumpy(var), var_ref, rtol=1e-12)
        np.testing.assert_array_equal(cp.asnumpy(var)[[0, 1, 3, 4, 5]], var_ref[[0, 1, 3, 4, 5]])


def test_normalize_and_weighted_sums_cupy_equal_numpy():
    import cupy as cp
    import cupyx.scipy.sparse as cpsp

    x, codes = _block(1)
    got = normalize_cells(cpsp.csr_matrix(x), "log2cp1e5", cp)
    assert isinstance(got, cpsp.csr_matrix)
    np.testing.assert_allclose(cp.asnumpy(got.toarray()), normalize_cells(x, "log2cp1e5", np).toarray(), rtol=1e-12)
    w = np.random.default_rng(2).integers(0, 3, (5, 400)).astype(np.float64)
    ref = weighted_group_sums(x, codes, w, 6, np)
    np.testing.assert_array_equal(cp.asnumpy(weighted_group_sums(cpsp.csr_matrix(x), cp.asarray(codes), w, 6, cp)), ref)


@pytest.mark.parametrize("dtype", STORE_DTYPES)
def test_functions_on_cupy_blocks_equal_numpy_blocks(tmp_path, counts_adata, dtype: str):
    import cupy as cp

    atlas = open_atlas(counts_store(tmp_path, counts_adata, dtype, 500))
    obs = atlas.obs.assign(donor=atlas.obs["sample"])
    gpu = ad.AnnData(X=atlas.to_dask("cupy"), obs=obs, var=atlas.var)
    cpu = ad.AnnData(X=atlas.to_dask("numpy"), obs=obs, var=atlas.var)
    g = pseudobulk(gpu, ["cell_type", "sample"], min_cells=1, stats=ALL)
    c = pseudobulk(cpu, ["cell_type", "sample"], min_cells=1, stats=ALL)
    assert isinstance(g.layers["counts"]._meta, cp.ndarray)
    (gl, gx), (cl, cx) = dask.compute((dict(g.layers), g.X), (dict(c.layers), c.X))
    for key in ("counts", "count_nonzero", "mean", "var"):  # var of integer counts: exact path on both
        np.testing.assert_array_equal(cp.asnumpy(gl[key]), cl[key])
    np.testing.assert_allclose(cp.asnumpy(gx), cx, rtol=1e-6)
    for mode in ("donor", "cell"):
        bg = bootstrap_pseudobulk(gpu, ["cell_type"], n_boot=3, seed=1, resample=mode, min_cells=1)
        bc = bootstrap_pseudobulk(cpu, ["cell_type"], n_boot=3, seed=1, resample=mode, min_cells=1)
        np.testing.assert_array_equal(cp.asnumpy(bg.counts.compute()), bc.counts.compute())
        lo, hi = dask.compute(*bg.interval(0.9))
        assert isinstance(lo, cp.ndarray) and bool((lo <= hi).all())
        lo_c, hi_c = dask.compute(*bc.interval(0.9))  # CuPy has no nanquantile: the fallback gives NumPy's values
        np.testing.assert_allclose(cp.asnumpy(lo), lo_c, rtol=1e-12, equal_nan=True)
        np.testing.assert_allclose(cp.asnumpy(hi), hi_c, rtol=1e-12, equal_nan=True)
        assert np.isfinite(cp.asnumpy(lo)).sum() == np.isfinite(lo_c).sum()
    y = normalized_cells(atlas.to_dask("cupy")).blocks[0].compute()
    ref = normalized_cells(atlas.to_dask("numpy")).blocks[0].compute()
    np.testing.assert_allclose(cp.asnumpy(y.toarray()), ref.toarray(), rtol=1e-12)
