"""Effect sizes against direct per-feature formulas."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings

from cytodask.differential import activity_diff, cohens_d, effect_sizes, hedges_g, median_diff
from tests.differential._data import STAT_RTOL, as_backend, compute, two_groups


def _reference(x, y):
    rows = []
    for a, b in zip(x, y, strict=False):
        a, b = a[~np.isnan(a)], b[~np.isnan(b)]
        n1, n2 = a.size, b.size
        sp = np.sqrt(((n1 - 1) * a.var(ddof=1) + (n2 - 1) * b.var(ddof=1)) / (n1 + n2 - 2))
        with np.errstate(divide="ignore", invalid="ignore"):
            d = (a.mean() - b.mean()) / sp
        rows.append((a.mean() - b.mean(), np.median(a), np.median(b), d, d * (1 - 3 / (4 * (n1 + n2) - 9))))
    return np.array(rows).T


@settings(max_examples=30, deadline=None)
@given(two_groups(min_n=3, nan=False))
def test_formulas(data):
    x, y = data
    res = effect_sizes(x, y)
    diff, m1, m2, d, g = _reference(x, y)
    np.testing.assert_allclose(res.activity_diff, diff, rtol=STAT_RTOL, atol=1e-12)
    np.testing.assert_allclose(res.median_g1, m1, rtol=STAT_RTOL)
    np.testing.assert_allclose(res.median_g2, m2, rtol=STAT_RTOL)
    np.testing.assert_allclose(res.median_diff, m1 - m2, rtol=STAT_RTOL, atol=1e-12)
    finite = np.isfinite(d)
    np.testing.assert_allclose(res.cohens_d[finite], d[finite], rtol=1e-9)
    np.testing.assert_allclose(res.hedges_g[finite], g[finite], rtol=1e-9)


def test_nan_and_tiny_groups():
    x = np.array([[1.0, 2.0, np.nan, 4.0], [1.0, np.nan, np.nan, np.nan]])
    y = np.array([[0.0, 1.0, 1.0, np.nan], [2.0, 3.0, 4.0, 5.0]])
    res = effect_sizes(x, y)
    np.testing.assert_allclose(res.activity_diff, [7 / 3 - 2 / 3, 1.0 - 3.5])
    np.testing.assert_allclose(res.median_g1, [2.0, 1.0])
    assert np.isnan(res.cohens_d[1]) and res.reason[1] == "n_g1<3"
    np.testing.assert_allclose(activity_diff(x, y), res.activity_diff)
    np.testing.assert_allclose(median_diff(x, y), res.median_diff)
    np.testing.assert_allclose(cohens_d(x, y), res.cohens_d, equal_nan=True)
    np.testing.assert_allclose(hedges_g(x, y), res.hedges_g, equal_nan=True)


@pytest.mark.parametrize("backend", ["numpy", "dask"])
def test_backends_and_frames(backend):
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(5, 8)), rng.normal(size=(5, 7))
    ref = effect_sizes(x, y)
    res = effect_sizes(as_backend(x, backend, 2), as_backend(y, backend, 3))
    np.testing.assert_array_equal(compute(res.hedges_g), ref.hedges_g)
    frame = effect_sizes(pd.DataFrame(x, index=list("abcde")), pd.DataFrame(y, index=list("abcde")))
    assert list(frame.index) == list("abcde") and "activity_diff" in frame
