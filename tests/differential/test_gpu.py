"""CuPy blocks give the NumPy results (skipped without a CUDA device)."""

from __future__ import annotations

import numpy as np
import pytest

from cytodask.core.backend import gpu_available, to_numpy
from cytodask.differential import differential_table, effect_sizes, fdr_bh, ttest, wilcoxon, wilcoxon_paired

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not gpu_available(), reason="needs CuPy and a CUDA device")]


def _data(dtype=np.float64):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 8, (40, 30)).astype(dtype)
    y = rng.normal(size=(40, 30)).astype(dtype)
    x[rng.random(x.shape) < 0.1] = np.nan
    return x, y


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("fn", [wilcoxon, wilcoxon_paired, ttest, effect_sizes])
def test_cupy_matches_numpy(fn, dtype):
    import cupy as cp

    x, y = _data(dtype)
    ref = fn(x, y)
    got = fn(cp.asarray(x), cp.asarray(y))
    for k in ref:
        if k == "reason":
            assert got[k].tolist() == ref[k].tolist()
        else:
            np.testing.assert_allclose(to_numpy(got[k]), ref[k], rtol=1e-9, equal_nan=True)


def test_dask_of_cupy_blocks_and_fdr():
    import cupy as cp
    import dask.array as da

    x, y = _data()
    ref = wilcoxon(x, y)
    lazy = wilcoxon(da.from_array(cp.asarray(x), chunks=(7, -1)), da.from_array(cp.asarray(y), chunks=(7, -1)))
    assert isinstance(lazy.pvalue._meta, cp.ndarray)
    np.testing.assert_allclose(to_numpy(lazy.pvalue.compute()), ref.pvalue, rtol=1e-9, equal_nan=True)
    p = ref.pvalue.reshape(8, 5)
    np.testing.assert_allclose(to_numpy(fdr_bh(cp.asarray(p), axis=1)), fdr_bh(p, axis=1), rtol=1e-12, equal_nan=True)


def test_table_on_cupy():
    import pandas as pd

    rng = np.random.default_rng(1)
    obs = pd.DataFrame({"g": rng.choice(["a", "b"], 60), "s": rng.choice(["u", "v"], 60)})
    values = pd.DataFrame(rng.normal(size=(60, 4)))
    ref = differential_table(values, obs, group_col="g", group1="a", strata=["s"])
    got = differential_table(values, obs, group_col="g", group1="a", strata=["s"], backend="cupy")
    pd.testing.assert_frame_equal(got, ref, rtol=1e-9)
