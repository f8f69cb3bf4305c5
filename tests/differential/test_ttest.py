"""t-tests against scipy.stats.ttest_ind / ttest_rel (nan_policy="omit")."""

from __future__ import annotations

import warnings

import dask.array as da
import numpy as np
import pandas as pd
import pytest
import scipy.stats as ss
from hypothesis import given, settings

from cytodask.differential import ttest
from tests.differential._data import STAT_RTOL, as_backend, assert_p_close, compute, two_groups


def _ref(x, y, kind):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind == "paired":
            r = ss.ttest_rel(x, y, axis=1, nan_policy="omit")
        else:
            r = ss.ttest_ind(x, y, axis=1, equal_var=kind == "student", nan_policy="omit")
    return np.atleast_1d(r.statistic), np.atleast_1d(r.pvalue), np.atleast_1d(r.df)


@settings(max_examples=40, deadline=None)
@given(two_groups(min_n=3))
@pytest.mark.parametrize("kind", ["welch", "student", "paired"])
def test_matches_scipy(kind, data):
    x, y = data
    if kind == "paired":
        m = min(x.shape[1], y.shape[1])
        x, y = x[:, :m], y[:, :m]
    res = ttest(x, y, kind)
    t, p, df = _ref(x, y, kind)
    nx = (~np.isnan(x - y)).sum(axis=1) if kind == "paired" else (~np.isnan(x)).sum(axis=1)
    ny = nx if kind == "paired" else (~np.isnan(y)).sum(axis=1)
    ok = (nx >= 3) & (ny >= 3)
    assert np.isnan(res.statistic[~ok]).all() and np.isnan(res.pvalue[~ok]).all()
    np.testing.assert_allclose(res.statistic[ok], t[ok], rtol=STAT_RTOL, atol=1e-12)
    np.testing.assert_allclose(res.df[ok], df[ok], rtol=STAT_RTOL)
    assert_p_close(res.pvalue[ok], p[ok])
    zero_var = ~np.isfinite(t) & ok
    assert all(("zero_variance" in r) == z for r, z in zip(res.reason, zero_var, strict=True))


@pytest.mark.parametrize("kind", ["welch", "student"])
def test_min_n_one_matches_scipy_for_single_values(kind):
    x = np.array([[1.0, np.nan, np.nan], [1.0, 2.0, 4.0]])
    y = np.array([[2.0, 3.0, 5.0], [3.0, np.nan, np.nan]])
    res = ttest(x, y, kind, min_n=1)
    t, p, _ = _ref(x, y, kind)
    np.testing.assert_allclose(res.statistic, t, rtol=STAT_RTOL)
    assert_p_close(res.pvalue, p)


@pytest.mark.parametrize("chunks", [1, 3])
def test_dask_and_dataframe(chunks):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(7, 9)), rng.normal(size=(7, 6))
    ref = ttest(x, y)
    lazy = ttest(as_backend(x, "dask", chunks), y)
    assert isinstance(lazy.statistic, da.Array)
    np.testing.assert_array_equal(compute(lazy.statistic), ref.statistic)
    frame = ttest(pd.DataFrame(x), pd.DataFrame(y), "student")
    assert list(frame.columns) == ["statistic", "pvalue", "df", "n_g1", "n_g2", "reason"]


def test_bad_kind():
    with pytest.raises(ValueError, match="'welch', 'student', 'paired'"):
        ttest(np.zeros((1, 3)), np.zeros((1, 3)), "wilcoxon")
