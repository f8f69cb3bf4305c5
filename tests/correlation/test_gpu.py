"""CuPy blocks give the NumPy results (skipped without a CUDA device)."""

from __future__ import annotations

import numpy as np
import pytest

from cytodask.core.backend import gpu_available, to_numpy
from cytodask.correlation import bin_means, partial, pearson, spearman

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not gpu_available(), reason="needs CuPy and a CUDA device")]


def _data():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(30, 40)), rng.integers(0, 5, (12, 40)).astype(float)
    a[rng.random(a.shape) < 0.05] = np.nan
    b[rng.random(b.shape) < 0.05] = np.nan
    return a, b, rng.normal(size=(40, 2))


@pytest.mark.parametrize("fn", [pearson, spearman, "partial"])
@pytest.mark.parametrize("lazy", [False, True])
def test_cupy_matches_numpy(fn, lazy):
    import cupy as cp
    import dask.array as da

    a, b, z = _data()
    run = (lambda x, y: partial(x, y, z)) if fn == "partial" else fn
    ref = run(a, b)
    ga, gb = cp.asarray(a), cp.asarray(b)
    if lazy:
        ga, gb = da.from_array(ga, chunks=(7, -1)), da.from_array(gb, chunks=(5, -1))
    got = run(ga, gb)
    for name in ("rho", "pvalue", "n"):
        v = getattr(got, name)
        v = v.compute() if lazy else v
        np.testing.assert_allclose(to_numpy(v), getattr(ref, name), rtol=1e-9, atol=1e-12, equal_nan=True)
    reason = got.reason.compute() if lazy else got.reason
    assert reason.tolist() == ref.reason.tolist()


def test_bin_means_on_cupy():
    import cupy as cp

    a, _, z = _data()
    ref = bin_means(a, z[:, 0] * 20 + 50)
    got = bin_means(cp.asarray(a), z[:, 0] * 20 + 50)
    np.testing.assert_allclose(to_numpy(got.mean), ref.mean, rtol=1e-12, equal_nan=True)
