"""Shared generators and per-pair scipy references for the correlation tests."""

from __future__ import annotations

import warnings

import numpy as np
import scipy.stats as ss
from hypothesis import strategies as st

RHO_ATOL = 1e-12  # |rho − scipy| (rho is in [−1, 1])
P_RTOL = 1e-9  # p-values, relative; in log space below TINY
TINY = 1e-250


@st.composite
def matrices(draw, *, max_a=5, max_b=4, min_samples=3, max_samples=25, nan=True):
    """(a, b): features × samples with ties, pairwise NaN patterns and constant rows."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n = draw(st.integers(min_samples, max_samples))
    fa, fb = draw(st.integers(1, max_a)), draw(st.integers(1, max_b))
    kind = draw(st.sampled_from(["int", "float", "offset"]))

    def make(f):
        if kind == "int":
            return rng.integers(0, 4, (f, n)).astype(np.float64)
        if kind == "offset":  # large mean, small spread (cancellation)
            return 1000.0 + np.round(rng.normal(size=(f, n)), 3)
        return rng.normal(size=(f, n))

    a, b = make(fa), make(fb)
    if fb > 1:
        b[1] = b[0] * 2 + a[0] if draw(st.booleans()) else b[1]  # correlated rows
    if draw(st.booleans()):
        a[-1] = 3.0  # constant row
    if nan and draw(st.booleans()):
        frac = draw(st.sampled_from([0.1, 0.3]))
        a[rng.random(a.shape) < frac] = np.nan
        b[rng.random(b.shape) < frac] = np.nan
        if fa > 1 and draw(st.booleans()):
            a[0, np.isnan(b[0])] = np.nan  # same missing pattern for a pair
    return a, b


def reference(a, b, method, min_n):
    """rho, p, n, reason per pair with scipy on the pairwise-complete samples."""
    fa, fb = a.shape[0], b.shape[0]
    rho, p, n = np.full((fa, fb), np.nan), np.full((fa, fb), np.nan), np.zeros((fa, fb), int)
    reason = np.full((fa, fb), "", dtype=object)
    fn = ss.pearsonr if method == "pearson" else ss.spearmanr
    for i in range(fa):
        for j in range(fb):
            m = ~np.isnan(a[i]) & ~np.isnan(b[j])
            x, y = a[i][m], b[j][m]
            n[i, j] = m.sum()
            if m.sum() < min_n:
                reason[i, j] = f"n<{min_n}"
            elif (x == x[0]).all() or (y == y[0]).all():
                reason[i, j] = "constant"
            else:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    r = fn(x, y)
                rho[i, j], p[i, j] = r.statistic, r.pvalue
    return rho, p, n, reason


def assert_matches(res, ref, *, near_constant_ok=False, p_rtol=P_RTOL):
    rho, p, n, reason = (np.asarray(v.compute() if hasattr(v, "compute") else v)
                         for v in (res.rho, res.pvalue, res.n, res.reason))  # fmt: skip
    ref_rho, ref_p, ref_n, ref_reason = ref
    np.testing.assert_array_equal(n, ref_n)
    assert reason.tolist() == ref_reason.tolist()
    ok = ~np.isnan(ref_rho)
    np.testing.assert_allclose(rho[ok], ref_rho[ok], rtol=0, atol=RHO_ATOL)
    # At |rho| = 1 − δ the p-value scales like δ^(df/2): rounding-level δ makes it
    # ill-conditioned (df = 1: p ∝ √δ), so there both need only be tiny.
    edge = ok & (1.0 - np.abs(ref_rho) < 1e-12)
    assert (p[edge] < 1e-6).all() and (ref_p[edge] < 1e-6).all()
    ok &= ~edge
    big = ok & (ref_p > TINY)
    rtol, err = np.broadcast_to(p_rtol, p.shape)[big], np.abs(p[big] - ref_p[big]) / ref_p[big]
    assert (err <= rtol).all(), f"p differs from scipy by {err.max():.3g} relative (tolerance {rtol[err.argmax()]:.3g})"
    small = ok & ~big
    log_p, log_ref = (np.log(np.maximum(v[small], 1e-320)) for v in (p, ref_p))
    np.testing.assert_allclose(log_p, log_ref, rtol=1e-6)
