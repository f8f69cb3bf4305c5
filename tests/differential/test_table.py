"""Stratified differential tables against a per-stratum loop over scipy/statsmodels."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.stats as ss
from statsmodels.stats.multitest import multipletests

from cytodask.differential import differential_table
from cytodask.differential.api.table import TABLE_COLUMNS
from tests.differential._data import STAT_RTOL, assert_p_close


def _data(seed=0, n=150):
    rng = np.random.default_rng(seed)
    obs = pd.DataFrame(
        {
            "cell_type": rng.choice(["B", "T", "NK", "Mono"], n),
            "tissue": rng.choice(["blood", "lung", None], n, p=[0.5, 0.4, 0.1]),
            "disease": rng.choice(["healthy", "covid", "flu"], n),
        },
        index=[f"s{i}" for i in range(n)],
    )
    values = pd.DataFrame(np.round(rng.normal(size=(n, 6)), 1), index=obs.index, columns=[f"f{i}" for i in range(6)])
    values.iloc[rng.random(values.shape) < 0.05] = np.nan
    return values, obs.sample(frac=1.0, random_state=1)  # obs in another order: aligned by label


def _bh(p):
    q = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    if ok.any():
        q[ok] = multipletests(p[ok], method="fdr_bh")[1]
    return q


@pytest.mark.parametrize("test", ["wilcoxon", "welch", "student"])
def test_matches_per_stratum_loop(test):
    values, obs = _data()
    table = differential_table(values, obs, group_col="disease", group1="covid", group2="healthy",
                               strata=["cell_type", "tissue"], test=test)  # fmt: skip
    assert list(table.columns) == ["cell_type", "tissue", *TABLE_COLUMNS]
    o = obs.loc[values.index]
    strata = o.dropna(subset=["tissue"]).groupby(["cell_type", "tissue"]).size().index
    assert len(table) == len(strata) * values.shape[1]
    for (ct, ti), sub in table.groupby(["cell_type", "tissue"], sort=False):
        sel = (o.cell_type == ct) & (o.tissue == ti)
        a = values[sel & (o.disease == "covid")].to_numpy().T
        b = values[sel & (o.disease == "healthy")].to_numpy().T
        n1, n2 = (~np.isnan(a)).sum(axis=1), (~np.isnan(b)).sum(axis=1)
        np.testing.assert_array_equal(sub.n_g1, n1)
        np.testing.assert_array_equal(sub.n_g2, n2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = None
            if a.size and b.size and test == "wilcoxon":
                ref = ss.mannwhitneyu(a, b, axis=1, method="asymptotic", nan_policy="omit")
            elif a.size and b.size:
                ref = ss.ttest_ind(a, b, axis=1, equal_var=test == "student", nan_policy="omit")
            diff = np.nanmean(a, axis=1) - np.nanmean(b, axis=1)
            np.testing.assert_allclose(sub.activity_diff, diff, rtol=1e-12, atol=1e-14)
            np.testing.assert_allclose(sub.median_g1, np.nanmedian(a, axis=1) if a.size else np.nan, rtol=1e-12)
        ok = (n1 >= 3) & (n2 >= 3)
        assert np.isnan(sub.pvalue[~ok]).all() and (sub.reason[~ok] != "").all()
        if ok.any():
            np.testing.assert_allclose(sub.statistic[ok], np.atleast_1d(ref.statistic)[ok], rtol=STAT_RTOL, atol=1e-12)
            assert_p_close(sub.pvalue[ok], np.atleast_1d(ref.pvalue)[ok])
        np.testing.assert_allclose(sub.qvalue, _bh(sub.pvalue.to_numpy()), rtol=1e-12)
        np.testing.assert_allclose(sub.neg_log10_pval, -np.log10(sub.pvalue))


def test_fdr_families_rest_and_no_strata():
    values, obs = _data(2)
    t_all = differential_table(values, obs, group_col="disease", group1="covid", strata=["cell_type"],
                               fdr_family="all")  # fmt: skip
    assert (t_all.group2 == "rest").all()
    np.testing.assert_allclose(t_all.qvalue, _bh(t_all.pvalue.to_numpy()), rtol=1e-12)
    t_feat = differential_table(values, obs, group_col="disease", group1="covid", strata=["cell_type"],
                                fdr_family=["signature"])  # fmt: skip
    for _, sub in t_feat.groupby("signature"):
        np.testing.assert_allclose(sub.qvalue, _bh(sub.pvalue.to_numpy()), rtol=1e-12)
    assert t_feat.attrs["fdr_family"] == "Benjamini-Hochberg within each value of: signature"
    assert t_all.attrs["fdr_family"] == "Benjamini-Hochberg over every row of the table"
    with pytest.warns(DeprecationWarning, match="now called 'signature'"):
        old_name = differential_table(values, obs, group_col="disease", group1="covid", strata=["cell_type"],
                                      fdr_family=["feature"])  # fmt: skip
    pd.testing.assert_frame_equal(old_name, t_feat)
    welch = differential_table(values, obs, group_col="disease", group1="covid", strata=["cell_type"], test="welch")
    alias = differential_table(values, obs, group_col="disease", group1="covid", strata=["cell_type"], test="ttest")
    pd.testing.assert_frame_equal(alias, welch)
    flat = differential_table(values, obs, group_col="disease", group1="covid", group2="flu", features=["f1", "f3"])
    assert list(flat.columns) == list(TABLE_COLUMNS) and flat.signature.tolist() == ["f1", "f3"]
    o = obs.loc[values.index]
    ref = ss.mannwhitneyu(values.loc[o.disease == "covid", ["f1", "f3"]], values.loc[o.disease == "flu", ["f1", "f3"]],
                          method="asymptotic", nan_policy="omit")  # fmt: skip
    assert_p_close(flat.pvalue, ref.pvalue)


def test_errors_name_the_fix():
    values, obs = _data()
    with pytest.raises(ValueError, match="available"):
        differential_table(values, obs, group_col="nope", group1="covid")
    with pytest.raises(ValueError, match="no sample has disease == 'typo'"):
        differential_table(values, obs, group_col="disease", group1="typo")
    with pytest.raises(ValueError, match="not in obs.index"):
        differential_table(values, obs.iloc[:-3], group_col="disease", group1="covid")
    with pytest.raises(ValueError, match="fdr_family"):
        differential_table(values, obs, group_col="disease", group1="covid", fdr_family="strata")
    with pytest.raises(ValueError, match="test="):
        differential_table(values, obs, group_col="disease", group1="covid", test="paired")
    with pytest.raises(TypeError, match="DataFrames"):
        differential_table(values.to_numpy(), obs, group_col="disease", group1="covid")


def test_threads_and_float32_keep_results():
    """Row blocks on a thread pool give the same table; float32 input equals its float64 copy."""
    import cytodask.core.stats.driver as drv
    from cytodask.differential import ttest, wilcoxon

    rng = np.random.default_rng(11)
    n = 600
    values = pd.DataFrame(rng.standard_normal((n, 40)).astype(np.float32), columns=[f"f{i}" for i in range(40)])
    values.iloc[::7, 3] = np.nan
    obs = pd.DataFrame({"g": rng.choice(["a", "b"], n), "s": rng.choice(["x", "y", "z"], n)}, index=values.index)
    old = drv.ROW_BLOCK_ELEMENTS
    drv.ROW_BLOCK_ELEMENTS = 2000  # many row blocks
    try:
        one = differential_table(values, obs, group_col="g", group1="a", group2="b", strata=["s"], threads=1)
        many = differential_table(values, obs, group_col="g", group1="a", group2="b", strata=["s"], threads=3)
        f64 = differential_table(values.astype(np.float64), obs, group_col="g", group1="a", group2="b",
                                 strata=["s"], threads=2)
        x, y = rng.standard_normal((50, 30)), rng.standard_normal((50, 25))
        for fn in (wilcoxon, ttest):
            a, b = fn(x, y, threads=1), fn(x, y, threads=3)
            np.testing.assert_array_equal(a.pvalue, b.pvalue)
    finally:
        drv.ROW_BLOCK_ELEMENTS = old
    pd.testing.assert_frame_equal(one, many)
    pd.testing.assert_frame_equal(one, f64)  # float32 values are exact in float64: same ranks, same table
    with pytest.raises(ValueError, match="threads=0"):
        differential_table(values, obs, group_col="g", group1="a", group2="b", threads=0)
