"""Partial correlation against statsmodels OLS residuals + scipy pearsonr with n − k − 2 df."""

from __future__ import annotations

import warnings

import dask.array as da
import numpy as np
import pandas as pd
import pytest
import scipy.stats as ss
import statsmodels.api as sm
from hypothesis import given, settings
from hypothesis import strategies as st

from cytodask.correlation import partial
from tests.correlation._data import P_RTOL, RHO_ATOL


def _reference(a, b, z, min_n):
    k = z.shape[1]
    fa, fb = a.shape[0], b.shape[0]
    rho, p, reason = np.full((fa, fb), np.nan), np.full((fa, fb), np.nan), np.full((fa, fb), "", dtype=object)
    for i in range(fa):
        for j in range(fb):
            m = ~np.isnan(a[i]) & ~np.isnan(b[j])
            if m.sum() < max(min_n, k + 3):
                reason[i, j] = f"n<{max(min_n, k + 3)}"
                continue
            x = sm.add_constant(z[m], has_constant="add")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # rank-deficient subsets: residuals are still defined
                ea, eb = sm.OLS(a[i][m], x).fit().resid, sm.OLS(b[j][m], x).fit().resid
            if (a[i][m] == a[i][m][0]).all() or (b[j][m] == b[j][m][0]).all():
                reason[i, j] = "constant"
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                r = ss.pearsonr(ea, eb).statistic
            df = m.sum() - k - 2
            t = r * np.sqrt(df / (1 - r**2))
            rho[i, j], p[i, j] = r, 2 * ss.t.sf(abs(t), df)
    return rho, p, reason


@st.composite
def problems(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n = draw(st.integers(8, 30))
    k = draw(st.integers(1, 3))
    z = np.column_stack([rng.normal(size=n)] + [rng.integers(0, 2, n).astype(float) for _ in range(k - 1)])
    a = rng.normal(size=(draw(st.integers(1, 4)), n)) + z[:, :1].T
    b = rng.normal(size=(draw(st.integers(1, 3)), n)) * 5 + 100 + z[:, -1:].T
    if draw(st.booleans()):
        a[0] = 2.5  # constant
    if draw(st.booleans()):
        a[rng.random(a.shape) < 0.15] = np.nan
        b[rng.random(b.shape) < 0.15] = np.nan
    return a, b, z


@settings(max_examples=30, deadline=None)
@given(problems())
def test_matches_ols_residual_correlation(data):
    a, b, z = data
    res = partial(a, b, z, min_n=5)
    rho, p, reason = _reference(a, b, z, 5)
    assert res.reason.tolist() == reason.tolist()
    ok = ~np.isnan(rho)
    np.testing.assert_allclose(res.rho[ok], rho[ok], rtol=0, atol=RHO_ATOL)
    np.testing.assert_allclose(res.pvalue[ok], p[ok], rtol=P_RTOL)


def test_missing_covariates_dataframes_and_dask():
    rng = np.random.default_rng(0)
    n = 40
    samples = [f"s{i}" for i in range(n)]
    cov = pd.DataFrame({"age": rng.uniform(20, 80, n), "sex": rng.choice(["F", "M"], n)}, index=samples)
    cov.iloc[3, 0] = np.nan
    a = pd.DataFrame(rng.normal(size=(3, n)), index=list("xyz"), columns=samples)
    b = pd.DataFrame(rng.normal(size=(2, n)) + cov["age"].fillna(50).to_numpy() / 20,
                     index=["bmi", "crp"], columns=samples)  # fmt: skip
    res = partial(a, b, cov)
    keep = cov["age"].notna().to_numpy()
    z = np.column_stack([cov["age"].to_numpy(), (cov["sex"] == "M").to_numpy(float)])[keep]
    rho, p, _ = _reference(a.to_numpy()[:, keep], b.to_numpy()[:, keep], z, 10)
    np.testing.assert_allclose(res.rho.to_numpy(), rho, atol=RHO_ATOL)
    np.testing.assert_allclose(res.pvalue.to_numpy(), p, rtol=P_RTOL)
    assert (res.n.to_numpy() == n - 1).all()
    lazy = partial(da.from_array(a.to_numpy()[:, keep], chunks=(2, -1)), b.to_numpy()[:, keep], z)
    np.testing.assert_allclose(lazy.rho.compute(), rho, atol=RHO_ATOL)


def test_errors():
    with pytest.raises(ValueError, match="covariates must be samples"):
        partial(np.zeros((2, 10)), np.zeros((2, 10)), np.zeros((9, 2)))
    with pytest.raises(ValueError, match="pearson"):
        partial(np.zeros((2, 10)), np.zeros((2, 10)), None)
