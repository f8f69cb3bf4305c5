"""Pearson and Spearman against scipy.stats.pearsonr / spearmanr on pairwise-complete samples."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pandas as pd
import pytest
import scipy.stats as ss
from hypothesis import given, settings

from cytodask.correlation import pearson, spearman
from tests.correlation._data import P_RTOL, assert_matches, matrices, reference

METHODS = {"pearson": pearson, "spearman": spearman}


@settings(max_examples=60, deadline=None)
@given(matrices())
@pytest.mark.parametrize("method", ["pearson", "spearman"])
def test_matches_scipy_pairwise(method, data):
    a, b = data
    res = METHODS[method](a, b, min_n=3)
    assert_matches(res, reference(a, b, method, 3), p_rtol=p_rtol(a, b, method, 3))


def p_rtol(a, b, method, min_n):
    """Relative tolerance of each pair's p-value: P_RTOL plus what the conditioning allows.

    Near |rho| = 1 the p-value is p ~ (1 - rho^2)^(df/2) (df = n - 2), so a rounding error
    d_rho in rho moves it by a relative (df/2) d_rho / delta, with delta = 1 - |rho|. Both
    implementations compute rho from centred data, which costs d_rho ~ eps * cond, where cond
    = max|v| / std(v) of either variable (cancellation: data offset by 1000 with spread 1 has
    cond ~ 1000). Hypothesis seed 3 found n = 3, rho = -1 + 2e-8 on such data: p differed from
    scipy by 3.2e-9 relative, within (1/2) eps cond / delta = 5.5e-6 but not the constant 1e-9.
    A factor 4 covers both sides' rounding. Spearman's rho comes from ranks (cond from the ranks).
    """
    tol = np.full((a.shape[0], b.shape[0]), P_RTOL)
    eps = np.finfo(np.float64).eps
    for i in range(a.shape[0]):
        for j in range(b.shape[0]):
            m = ~np.isnan(a[i]) & ~np.isnan(b[j])
            x, y = a[i][m], b[j][m]
            if m.sum() < min_n or np.ptp(x) == 0 or np.ptp(y) == 0:
                continue
            if method == "spearman":
                x, y = ss.rankdata(x), ss.rankdata(y)
            cond = max(np.abs(v).max() / v.std() for v in (x, y))
            rho = abs(np.corrcoef(x, y)[0, 1])
            delta = max(1.0 - rho, eps)
            tol[i, j] += 4 * (m.sum() - 2) / 2 * eps * cond / delta
    return tol


@settings(max_examples=15, deadline=None)
@given(matrices(max_a=6, max_b=5))
@pytest.mark.parametrize("method", ["pearson", "spearman"])
def test_dask_any_chunking(method, data):
    a, b = data
    ref = METHODS[method](a, b, min_n=3)
    for ca, cb in [(1, 1), (2, 3), (4, 2)]:
        lazy = METHODS[method](da.from_array(a, chunks=(ca, -1)), da.from_array(b, chunks=(cb, 7)), min_n=3)
        assert isinstance(lazy.rho, da.Array)
        rho = lazy.rho.compute()
        if method == "spearman":  # sums of half-integer rank products are exact
            np.testing.assert_array_equal(rho, ref.rho)
        else:
            np.testing.assert_allclose(rho, ref.rho, rtol=1e-13, atol=1e-15, equal_nan=True)
        np.testing.assert_array_equal(lazy.n.compute(), ref.n)
        assert lazy.reason.compute().tolist() == ref.reason.tolist()


def test_min_n_default_and_self_correlation():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(3, 12))
    a[0, :5] = np.nan
    res = pearson(a)
    assert res.reason[0, 1] == "n<10" and np.isnan(res.rho[0, 1])
    np.testing.assert_allclose(np.diag(res.rho)[1:], 1.0)
    assert res.n[1, 2] == 12


def test_dataframes_align_samples_and_top_variance():
    rng = np.random.default_rng(1)
    samples = [f"d{i}" for i in range(30)]
    acts = pd.DataFrame(rng.normal(size=(4, 30)), index=list("ABCD"), columns=samples)
    scale = np.arange(1, 9)[:, None]
    chem = pd.DataFrame(rng.normal(size=(8, 30)) * scale, index=[f"m{i}" for i in range(8)], columns=samples[::-1])
    res = spearman(acts, chem, top_variance=3)
    assert list(res.rho.index) == list("ABCD") and list(res.rho.columns) == ["m5", "m6", "m7"]
    ref = reference(acts.to_numpy(), chem.loc[["m5", "m6", "m7"], samples].to_numpy(), "spearman", 10)
    np.testing.assert_allclose(res.rho.to_numpy(), ref[0], atol=1e-12)
    long = res.to_frame()
    assert list(long.columns) == ["feature_a", "feature_b", "rho", "pvalue", "n", "reason"] and len(long) == 12
    age = pd.Series(rng.uniform(20, 80, 30), index=samples, name="age")
    one = pearson(acts, age)
    assert list(one.rho.columns) == ["age"]


def test_errors_say_how_to_fix():
    with pytest.raises(ValueError, match="same samples"):
        pearson(np.zeros((2, 5)), np.zeros((2, 6)))
    with pytest.raises(ValueError, match="min_n"):
        spearman(np.zeros((2, 5)), np.zeros((2, 5)), min_n=2)
    with pytest.raises(ValueError, match="no sample labels"):
        pearson(
            pd.DataFrame(np.zeros((2, 3)), columns=list("abc")), pd.DataFrame(np.zeros((1, 3)), columns=list("xyz"))
        )
    with pytest.raises(TypeError, match="both"):
        pearson(pd.DataFrame(np.zeros((2, 3))), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="top_variance"):
        pearson(np.zeros((2, 5)), np.zeros((2, 5)), top_variance=0)


@pytest.mark.parametrize("method", [pearson, spearman])
def test_threads_do_not_change_results(method):
    """Thread-pool tiling (NumPy input) splits rows of a; every block writes its own slice."""
    rng = np.random.default_rng(5)
    a = rng.standard_normal((400, 200))
    a[5, :40] = np.nan  # masked path too
    b = rng.standard_normal((70, 200)) + 0.2 * a[:70]
    one = method(a, b, threads=1)
    many = method(a, b, threads=3)
    for name in ("rho", "pvalue", "n"):
        np.testing.assert_array_equal(getattr(one, name), getattr(many, name))
    assert (one.reason == many.reason).all()
    with pytest.raises(ValueError, match="threads=0"):
        method(a, b, threads=0)
