"""The organ and cancer block kernels through their non-NumPy (CuPy) branch, on the CPU: NumPy under another
name (tests/gpu_util.device_numpy) must give what NumPy gives. No GPU ran these kernels in issue 20."""

from __future__ import annotations

import numpy as np
import pytest

from cytodask.cancer.kernels import group_sums_block, set_scores_block
from cytodask.organ.kernels import group_moments_block, kruskal_block, specificity_block
from tests.gpu_util import device_numpy


@pytest.fixture()
def data():
    rng = np.random.default_rng(3)
    values = rng.normal(size=(7, 30))
    values[2, 4] = np.nan
    codes = np.repeat(np.arange(4), [8, 7, 9, 6]) - np.r_[np.zeros(29, int), 5]  # last sample: code -1
    return values, codes


def test_organ_kernels_same_on_the_device_branch(data):
    values, codes = data
    xp = device_numpy()
    for a, b in zip(group_moments_block(values, codes, 4, np), group_moments_block(values, codes, 4, xp),
                    strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(kruskal_block(values, codes, 4, np), kruskal_block(values, codes, 4, xp))
    _, mean, var = group_moments_block(values, codes, 4, np)
    pooled = np.sqrt(np.nanmean(var, axis=1))
    for a, b in zip(specificity_block(mean, pooled, np), specificity_block(mean, pooled, xp), strict=True):
        np.testing.assert_array_equal(a, b)


def test_cancer_kernels_same_on_the_device_branch():
    rng = np.random.default_rng(4)
    counts = rng.poisson(2.0, size=(40, 25)).astype(np.float64)
    rows = rng.random(40) < 0.6
    sets = [(np.array([0, 3, 5]), np.array([10, 11, 12, 13])), (np.array([7]), np.array([20, 21]))]
    xp = device_numpy()
    np.testing.assert_array_equal(set_scores_block(counts, rows, sets, "log1p", np),
                                  set_scores_block(counts, rows, sets, "log1p", xp))
    codes = rng.integers(-1, 3, size=40)
    for a, b in zip(group_sums_block(counts, codes, 3, np), group_sums_block(counts, codes, 3, xp), strict=True):
        np.testing.assert_array_equal(a, b)
