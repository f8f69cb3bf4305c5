"""Validation kernels against independent references on the same numbers (scipy, a direct formula)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from cytodask.validation.kernels import (
    correlation_rows,
    group_sums_block,
    histogram_block,
    lins_ccc_rows,
    mann_whitney_rows,
    median_bin_values_block,
    median_from_bins,
    median_ranks,
    smallest_keys,
)


@pytest.fixture
def pairs() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(6, 25))
    y = 0.5 * x + rng.normal(size=(6, 25))
    y[0, :5] = np.round(y[0, :5])  # ties
    x[1, 3] = np.nan  # a missing pair
    return x, y


def test_correlation_rows_match_scipy(pairs: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = pairs
    out = correlation_rows(x, y, np)
    for i in range(x.shape[0]):
        ok = ~(np.isnan(x[i]) | np.isnan(y[i]))
        a, b = x[i, ok], y[i, ok]
        pr, sr, lr = stats.pearsonr(a, b), stats.spearmanr(a, b), stats.linregress(a, b)
        assert out["n"][i] == ok.sum()
        np.testing.assert_allclose(out["pearson_r"][i], pr.statistic, rtol=1e-12)
        np.testing.assert_allclose(out["pvalue"][i], pr.pvalue, rtol=1e-9)
        np.testing.assert_allclose(out["slope"][i], lr.slope, rtol=1e-12)
        np.testing.assert_allclose(out["r_squared"][i], lr.rvalue**2, rtol=1e-12)
        np.testing.assert_allclose(out["pvalue"][i], lr.pvalue, rtol=1e-9)
        np.testing.assert_allclose(out["spearman_rho"][i], sr.statistic, rtol=1e-12)
        np.testing.assert_allclose(out["spearman_pvalue"][i], sr.pvalue, rtol=1e-9)


def test_correlation_rows_too_few_or_constant_is_nan() -> None:
    out = correlation_rows(np.array([[1.0, 2.0, np.nan], [1.0, 1.0, 1.0]]), np.array([[1.0, 3.0, 2.0], [1, 2, 3.0]]), np)
    assert np.isnan(out["pearson_r"]).all() and np.isnan(out["pvalue"]).all()


def test_lins_ccc_direct_formula(pairs: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = pairs
    got = lins_ccc_rows(x, y + 0.3, np)
    for i in range(x.shape[0]):
        ok = ~np.isnan(x[i])
        a, b = x[i, ok], y[i, ok] + 0.3
        s_xy = np.mean((a - a.mean()) * (b - b.mean()))
        want = 2 * s_xy / (a.var() + b.var() + (a.mean() - b.mean()) ** 2)
        np.testing.assert_allclose(got[i], want, rtol=1e-12)
    assert lins_ccc_rows(x[:1], x[:1], np)[0] == pytest.approx(1.0)


def test_mann_whitney_auc_matches_scipy() -> None:
    rng = np.random.default_rng(2)
    x1 = np.round(rng.normal(0.4, 1, size=(4, 30)), 1)
    x2 = np.round(rng.normal(0.0, 1, size=(4, 40)), 1)
    x1[2, 20:] = np.nan
    out = mann_whitney_rows(x1, x2, np)
    for i in range(4):
        a = x1[i][~np.isnan(x1[i])]
        ref = stats.mannwhitneyu(a, x2[i], method="asymptotic", use_continuity=True)
        np.testing.assert_allclose(out["u"][i], ref.statistic, rtol=1e-12)
        np.testing.assert_allclose(out["auc"][i], ref.statistic / (a.size * x2.shape[1]), rtol=1e-12)
        np.testing.assert_allclose(out["pvalue"][i], ref.pvalue, rtol=1e-9)


def test_streamed_group_mean_and_exact_median_any_blocks() -> None:
    rng = np.random.default_rng(3)
    z = rng.normal(size=(500, 3)) * 3
    z[rng.random(z.shape) < 0.05] = np.nan
    codes = rng.integers(-1, 7, size=500)
    edges = np.linspace(-4, 4, 9)
    for step in (500, 97):
        cuts = range(0, 500, step)
        count = sum(group_sums_block(z[a:a + step], codes[a:a + step], 7, np)[0] for a in cuts)
        total = sum(group_sums_block(z[a:a + step], codes[a:a + step], 7, np)[1] for a in cuts)
        hist = sum(histogram_block(z[a:a + step], codes[a:a + step], 7, edges, np) for a in cuts)
        lo, hi, offset, n = median_ranks(hist, np)
        parts = [median_bin_values_block(z[a:a + step], codes[a:a + step], edges, lo, hi, np) for a in cuts]
        med = median_from_bins(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
                               offset, n, np)
        for g in range(7):
            for c in range(3):
                v = z[codes == g, c]
                v = v[~np.isnan(v)]
                assert count[g, c] == v.size
                np.testing.assert_allclose(total[g, c] / count[g, c], v.mean(), rtol=1e-12)
                assert med[g, c] == np.median(v)


def test_smallest_keys_is_mergeable() -> None:
    rng = np.random.default_rng(4)
    gid = rng.integers(0, 5, 300)
    key = rng.permutation(300).astype(np.uint64)
    val = rng.normal(size=300)
    whole = smallest_keys(gid, key, val, 10, np)
    a, b = smallest_keys(gid[:120], key[:120], val[:120], 10, np), smallest_keys(gid[120:], key[120:], val[120:], 10, np)
    merged = smallest_keys(*(np.concatenate([u, v]) for u, v in zip(a, b, strict=True)), 10, np)
    for u, v in zip(whole, merged, strict=True):
        np.testing.assert_array_equal(u, v)


def test_kernels_through_the_cupy_branches_equal_numpy(pairs: tuple[np.ndarray, np.ndarray], monkeypatch) -> None:
    """Every kernel with ``xp`` = the NumPy-backed CuPy stand-in (lacks what CuPy 13 lacks; t p-value by betainc).

    The real device run is the GPU check; here the ``xp is not np`` branches run on the CPU and must
    give the NumPy numbers (p-values: betainc vs stdtr, so to 1e-10 relative).
    """
    import scipy.sparse as sp

    from cytodask.validation.kernels import auc_candidates_block, producer_flags_block
    from tests.gpu_util import install_fake_cupy

    install_fake_cupy(monkeypatch)
    import cupy

    x, y = pairs
    for name in ("pearson_r", "spearman_rho", "slope", "pvalue", "spearman_pvalue"):
        np.testing.assert_allclose(correlation_rows(x, y, cupy)[name], correlation_rows(x, y, np)[name], rtol=1e-10,
                                   err_msg=name)
    np.testing.assert_allclose(lins_ccc_rows(x, y, cupy), lins_ccc_rows(x, y, np), rtol=1e-12)
    for name, a in mann_whitney_rows(x, y, cupy).items():
        np.testing.assert_allclose(a, mann_whitney_rows(x, y, np)[name], rtol=1e-10, err_msg=name)
    rng = np.random.default_rng(5)
    z, codes = rng.normal(size=(200, 3)), rng.integers(-1, 4, size=200)
    counts = sp.csr_matrix(rng.poisson(0.5, size=(200, 6)).astype(np.float64))
    positions = np.array([0, 5, -1])
    edges = np.linspace(-2, 2, 5)
    for got, want in [(group_sums_block(z, codes, 4, cupy), group_sums_block(z, codes, 4, np)),
                      ((histogram_block(z, codes, 4, edges, cupy),), (histogram_block(z, codes, 4, edges, np),)),
                      ((producer_flags_block(counts, positions, cupy),), (producer_flags_block(counts, positions, np),)),
                      (auc_candidates_block(z, producer_flags_block(counts, positions, np), codes, 10, 7, 0, cupy),
                       auc_candidates_block(z, producer_flags_block(counts, positions, np), codes, 10, 7, 0, np))]:
        for g, w in zip(got, want, strict=True):
            np.testing.assert_array_equal(g, w)
