"""Binned means of features over a donor variable, against a pandas groupby."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pandas as pd
import pytest

from cytodask.correlation import AGE_BINS, BMI_BINS, bin_means


def _reference(values, variable, edges, weights=None):
    cut = pd.cut(variable, edges, right=False, include_lowest=True)
    cut = np.where(variable == edges[-1], len(edges) - 2, cut.codes)
    out = np.full((values.shape[0], len(edges) - 1), np.nan)
    counts = np.zeros_like(out, dtype=int)
    w = np.ones(variable.size) if weights is None else weights
    for j in range(len(edges) - 1):
        sel = (cut == j) & ~np.isnan(variable)
        for i in range(values.shape[0]):
            v, ww = values[i, sel], w[sel]
            ok = ~np.isnan(v)
            counts[i, j] = ok.sum()
            if ok.sum():
                out[i, j] = (v[ok] * ww[ok]).sum() / ww[ok].sum()
    return out, counts


@pytest.mark.parametrize("bins,edges", [("age", AGE_BINS), ("bmi", BMI_BINS), ([0, 1, 2], (0, 1, 2))])
@pytest.mark.parametrize("weighted", [False, True])
def test_matches_groupby(bins, edges, weighted):
    rng = np.random.default_rng(0)
    n = 80
    variable = rng.uniform(edges[0] - 5, edges[-1] + 5, n)
    variable[:3] = [np.nan, edges[-1], edges[1]]
    values = rng.normal(size=(5, n))
    values[rng.random(values.shape) < 0.1] = np.nan
    weights = rng.integers(1, 500, n).astype(float) if weighted else None
    res = bin_means(values, variable, bins, weights=weights)
    mean, counts = _reference(values, variable, np.asarray(edges, float), weights)
    np.testing.assert_array_equal(res.n, counts)
    small = counts < 3
    assert np.isnan(res.mean[small]).all() and (res.reason[small] == "n<3").all()
    np.testing.assert_allclose(res.mean[~small], mean[~small], rtol=1e-12)
    assert len(res.labels) == len(edges) - 1


def test_labels_frames_and_dask():
    rng = np.random.default_rng(1)
    samples = [f"d{i}" for i in range(50)]
    values = pd.DataFrame(rng.normal(size=(3, 50)), index=["IL6", "TNF", "IFNG"], columns=samples)
    age = pd.Series(rng.uniform(18, 90, 50), index=samples[::-1])
    res = bin_means(values, age)
    assert res.labels == ["0-30", "30-40", "40-50", "50-60", "60-100"]
    assert list(res.mean.index) == ["IL6", "TNF", "IFNG"] and list(res.mean.columns) == res.labels
    ref = bin_means(values.to_numpy(), age.reindex(samples).to_numpy())
    np.testing.assert_array_equal(res.mean.to_numpy(), ref.mean)
    long = res.to_frame()
    assert list(long.columns) == ["feature", "bin", "n", "weight", "mean", "reason"] and len(long) == 15
    lazy = bin_means(da.from_array(values.to_numpy(), chunks=(1, 50)), age.reindex(samples).to_numpy())
    np.testing.assert_allclose(lazy.mean.compute(), ref.mean, rtol=1e-13)  # BLAS rounding only


def test_bad_bins():
    with pytest.raises(ValueError, match="increasing edges"):
        bin_means(np.zeros((1, 3)), np.zeros(3), [0, 10, 5])
    with pytest.raises(ValueError, match="increasing edges"):
        bin_means(np.zeros((1, 3)), np.zeros(3), "height")
    with pytest.raises(ValueError, match="3 samples"):
        bin_means(np.zeros((1, 3)), np.zeros(4))
