"""Rank-sum and signed-rank tests against scipy.stats (asymptotic, tie-corrected)."""

from __future__ import annotations

import warnings

import dask.array as da
import numpy as np
import pandas as pd
import pytest
import scipy.stats as ss
from hypothesis import given, settings
from hypothesis import strategies as st

from cytodask.differential import wilcoxon, wilcoxon_paired
from tests.differential._data import BACKENDS, STAT_RTOL, as_backend, assert_p_close, compute, two_groups


def _ref_mwu(x, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = ss.mannwhitneyu(x, y, axis=1, method="asymptotic", use_continuity=True,
                            alternative="two-sided", nan_policy="omit")  # fmt: skip
    return np.atleast_1d(r.statistic), np.atleast_1d(r.pvalue)


def _ref_signed(x, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = ss.wilcoxon(x - y, axis=1, zero_method="wilcox", correction=False, method="asymptotic",
                        alternative="two-sided", nan_policy="omit")  # fmt: skip
    return np.atleast_1d(r.statistic), np.atleast_1d(r.pvalue)


@settings(max_examples=60, deadline=None)
@given(two_groups(min_n=1))
def test_mannwhitney_matches_scipy(data):
    x, y = data
    res = wilcoxon(x, y, min_n=1)
    u, p = _ref_mwu(x, y)
    np.testing.assert_allclose(res.statistic, u, rtol=STAT_RTOL, atol=0)
    assert_p_close(res.pvalue, p)
    np.testing.assert_array_equal(res.n_g1, (~np.isnan(x)).sum(axis=1))
    np.testing.assert_array_equal(res.n_g2, (~np.isnan(y)).sum(axis=1))


@settings(max_examples=25, deadline=None)
@given(two_groups(min_n=0))
def test_tiny_groups_are_nan_with_reason(data):
    x, y = data
    res = wilcoxon(x, y)
    n1, n2 = (~np.isnan(x)).sum(axis=1), (~np.isnan(y)).sum(axis=1)
    small = (n1 < 3) | (n2 < 3)
    assert np.isnan(res.statistic[small]).all() and np.isnan(res.pvalue[small]).all()
    assert all(
        ("n_g1<3" in r) == (a < 3) and ("n_g2<3" in r) == (b < 3) for r, a, b in zip(res.reason, n1, n2, strict=True)
    )
    u, p = _ref_mwu(x[~small], y[~small]) if (~small).any() else ([], [])
    np.testing.assert_allclose(res.statistic[~small], u, rtol=STAT_RTOL)
    assert_p_close(res.pvalue[~small], p)


@pytest.mark.parametrize("dtype", [np.float32, np.int16, np.int32, np.uint32, np.int64, np.bool_])
def test_dtypes_rank_like_float64(dtype):
    rng = np.random.default_rng(3)
    x = rng.integers(0, 2 if dtype is np.bool_ else 5, (7, 20)).astype(dtype)
    y = rng.integers(0, 2 if dtype is np.bool_ else 5, (7, 13)).astype(dtype)
    if dtype is np.uint32:
        x, y = x + np.uint32(2**31), y + np.uint32(2**31)
    res = wilcoxon(x, y)
    u, p = _ref_mwu(x.astype(np.float64), y.astype(np.float64))
    np.testing.assert_allclose(res.statistic, u, rtol=STAT_RTOL)
    assert_p_close(res.pvalue, p)


def test_mixed_dtypes_use_the_generic_merge():
    rng = np.random.default_rng(6)
    x, y = rng.integers(0, 4, (5, 9)).astype(np.float32), rng.integers(0, 4, (5, 8)).astype(np.float64)
    res = wilcoxon(x, y)
    u, p = _ref_mwu(x.astype(np.float64), y)
    np.testing.assert_allclose(res.statistic, u, rtol=STAT_RTOL)
    assert_p_close(res.pvalue, p)


def test_float32_signed_zero_infinities_and_nan_payloads():
    x = np.array([[-0.0, 0.0, np.inf, -np.inf, 1.5, np.nan, 2.0]], dtype=np.float32)
    y = np.array([[0.0, -np.inf, 1.5, -np.nan, 3.0, np.inf]], dtype=np.float32)
    res = wilcoxon(x, y)
    u, p = _ref_mwu(x.astype(np.float64), y.astype(np.float64))
    np.testing.assert_allclose(res.statistic, u, rtol=STAT_RTOL)
    assert_p_close(res.pvalue, p)


@settings(max_examples=50, deadline=None)
@given(two_groups(min_n=1))
def test_signed_rank_matches_scipy(data):
    x, y = data
    m = min(x.shape[1], y.shape[1])
    x, y = x[:, :m], y[:, :m]
    res = wilcoxon_paired(x, y, min_n=1)
    stat, p = _ref_signed(x, y)
    np.testing.assert_allclose(res.statistic, stat, rtol=STAT_RTOL)
    assert_p_close(res.pvalue, p)
    n_pairs = (~np.isnan(x - y)).sum(axis=1)
    np.testing.assert_array_equal(res.n_g1, n_pairs)
    all_zero = ((x - y == 0) | np.isnan(x - y)).all(axis=1)
    assert [r == "all_differences_zero" for r in res.reason] == (all_zero & (n_pairs > 0)).tolist()


def test_signed_rank_tiny_and_all_zero():
    x = np.array([[1.0, 2.0, np.nan, 4.0], [1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 5.0]])
    y = np.array([[0.0, np.nan, 1.0, 1.0], [1.0, 2.0, 3.0, 4.0], [0.0, 1.0, 1.0, 1.0]])
    res = wilcoxon_paired(x, y)
    assert res.reason.tolist() == ["n_pairs<3", "all_differences_zero", ""]
    assert np.isnan(res.pvalue[:2]).all()  # too few pairs; all differences zero
    stat, p = _ref_signed(x[2:], y[2:])
    np.testing.assert_allclose(res.statistic[2:], stat, rtol=STAT_RTOL)
    assert_p_close(res.pvalue[2:], p)


@pytest.mark.parametrize("chunks", [1, 2, 5])
@pytest.mark.parametrize("test", [wilcoxon, wilcoxon_paired])
def test_dask_is_lazy_and_chunking_invariant(chunks, test):
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 6, (11, 17)).astype(float), rng.integers(0, 6, (11, 17)).astype(float)
    x[rng.random(x.shape) < 0.1] = np.nan
    ref = test(x, y)
    lazy = test(as_backend(x, "dask", chunks), da.from_array(y, chunks=(3, 5)))
    assert isinstance(lazy.pvalue, da.Array) and isinstance(lazy.reason, da.Array)
    for k in ("statistic", "pvalue", "n_g1", "n_g2"):
        np.testing.assert_array_equal(compute(lazy[k]), ref[k])
    assert compute(lazy.reason).tolist() == ref.reason.tolist()


def test_dataframes_align_features_and_label_output():
    rng = np.random.default_rng(1)
    x = pd.DataFrame(rng.normal(size=(4, 6)), index=list("abcd"))
    y = pd.DataFrame(rng.normal(size=(4, 5)), index=list("dcba"))
    out = wilcoxon(x, y)
    assert list(out.index) == list("abcd")
    assert list(out.columns) == ["statistic", "pvalue", "n_g1", "n_g2", "reason"]
    u, p = _ref_mwu(x.to_numpy(), y.loc[list("abcd")].to_numpy())
    np.testing.assert_allclose(out["statistic"], u, rtol=STAT_RTOL)
    assert_p_close(out["pvalue"], p)


def test_axis_and_leading_shape():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(9, 2, 3)), rng.normal(size=(6, 2, 3))
    res = wilcoxon(x, y, axis=0)
    assert res.pvalue.shape == (2, 3)
    u, _ = _ref_mwu(np.moveaxis(x, 0, -1).reshape(6, 9), np.moveaxis(y, 0, -1).reshape(6, 6))
    np.testing.assert_allclose(res.statistic.ravel(), u, rtol=STAT_RTOL)


@pytest.mark.parametrize("backend", BACKENDS)
def test_large_block_loop_matches_scipy(backend, monkeypatch):
    from cytodask.core.stats import driver

    monkeypatch.setattr(driver, "ROW_BLOCK_ELEMENTS", 64)  # many row blocks
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(13, 30)).astype(np.float32), rng.normal(size=(13, 25)).astype(np.float32)
    res = wilcoxon(as_backend(x, backend, 4), as_backend(y, backend, 4))
    u, p = _ref_mwu(x.astype(float), y.astype(float))
    np.testing.assert_allclose(compute(res.statistic), u, rtol=STAT_RTOL)
    assert_p_close(compute(res.pvalue), p)


def test_errors_say_how_to_fix():
    with pytest.raises(ValueError, match="feature"):
        wilcoxon(np.zeros((3, 4)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="min_n"):
        wilcoxon(np.zeros((3, 4)), np.zeros((3, 4)), min_n=0)
    with pytest.raises(ValueError, match="matched by position"):
        wilcoxon_paired(np.zeros((3, 4)), np.zeros((3, 5)))
    with pytest.raises(ValueError, match="reindex"):
        wilcoxon(pd.DataFrame(np.zeros((2, 3)), index=["a", "b"]), pd.DataFrame(np.zeros((2, 3)), index=["a", "c"]))
    with pytest.raises(TypeError, match="DataFrames"):
        wilcoxon(pd.DataFrame(np.zeros((2, 3))), np.zeros((2, 3)))


@settings(max_examples=60, deadline=None)
@given(two_groups(min_n=0), st.sampled_from(["float64", "float32", "int16", "int64", "uint32"]))
def test_summary_kernel_equals_rank_kernel_and_numpy_means_medians(data, dtype):
    """One sort serves the rank sums and the medians: same U/p as mannwhitney_block, medians and
    means as numpy.nanmedian / nanmean (all-NaN or empty groups give NaN), for every key type."""
    from cytodask.differential.kernels import mannwhitney_block, mannwhitney_summary_block

    x, y = data
    if np.dtype(dtype).kind in "iu":  # integer data has no NaN; shift into the unsigned range
        x, y = (np.nan_to_num(a, nan=0.0) * 100 + (2**31 + 7 if dtype == "uint32" else 0) for a in (x, y))
    x, y = x.astype(dtype), y.astype(dtype)
    got = mannwhitney_summary_block(x, y, xp=np, min_n=1)
    np.testing.assert_array_equal(got[:, :5], mannwhitney_block(x, y, xp=np, min_n=1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for col, a, f in ((5, x, np.nanmean), (6, y, np.nanmean), (7, x, np.nanmedian), (8, y, np.nanmedian)):
            ref = f(a.astype(np.float64), axis=1) if a.shape[1] else np.full(a.shape[0], np.nan)
            np.testing.assert_allclose(got[:, col], ref, rtol=1e-12, atol=0, equal_nan=True)


def test_table_medians_and_means_are_those_of_each_stratum():
    from cytodask.differential import differential_table

    rng = np.random.default_rng(4)
    n = 400
    values = pd.DataFrame(rng.normal(size=(n, 3)).astype(np.float32), columns=["a", "b", "c"])
    values.iloc[rng.random(n) < 0.05, 1] = np.nan
    obs = pd.DataFrame({"g": rng.choice(["d", "h"], n), "s": rng.choice(["s1", "s2", "s3"], n)}, index=values.index)
    table = differential_table(values, obs, group_col="g", group1="d", group2="h", strata=["s"])
    for (s_, feat), row in table.set_index(["s", "signature"]).iterrows():
        col = values[feat].astype(np.float64)
        d = col[(obs["s"] == s_) & (obs["g"] == "d")]
        h = col[(obs["s"] == s_) & (obs["g"] == "h")]
        assert row["median_g1"] == pytest.approx(np.nanmedian(d), rel=1e-12)
        assert row["median_g2"] == pytest.approx(np.nanmedian(h), rel=1e-12)
        assert row["activity_diff"] == pytest.approx(np.nanmean(d) - np.nanmean(h), rel=1e-9, abs=1e-12)
        assert row["n_g1"] == d.notna().sum() and row["n_g2"] == h.notna().sum()
