"""Rank kernels: average ranks with ties, order-preserving int32 codes."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.stats import rankdata as sp_rankdata

from cytodask.differential.ranks import int32_keys, rankdata, sort_with_flag, sorted_rank_sums

floats32 = hnp.arrays(np.float32, hnp.array_shapes(min_dims=2, max_dims=2, max_side=12),
                      elements=st.floats(width=32, allow_nan=True, allow_infinity=True))  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(floats32)
def test_int32_keys_preserve_order_and_ties(a):
    k = int32_keys(a, np).astype(np.int64)
    v = a.astype(np.float64).ravel()
    k = k.ravel()
    i, j = np.meshgrid(np.arange(v.size), np.arange(v.size))
    i, j = i.ravel(), j.ravel()
    both = ~np.isnan(v[i]) & ~np.isnan(v[j])
    np.testing.assert_array_equal((k[i] < k[j])[both], (v[i] < v[j])[both])
    np.testing.assert_array_equal((k[i] == k[j])[both], (v[i] == v[j])[both])
    assert (k[np.isnan(v)] == np.iinfo(np.int32).max).all()
    assert (k[~np.isnan(v)] < np.iinfo(np.int32).max).all()


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=2, max_side=15),
                  elements=st.sampled_from([np.nan, -1.0, 0.0, 0.5, 2.0, 3.0])))  # fmt: skip
def test_rankdata_matches_scipy(a):
    ranks, tie = rankdata(a, np)
    for row, r, t in zip(a, ranks, tie, strict=False):
        ok = ~np.isnan(row)
        np.testing.assert_array_equal(r[ok], sp_rankdata(row[ok]))
        assert np.isnan(r[~ok]).all()
        _, counts = np.unique(row[ok], return_counts=True)
        assert t == (counts**3 - counts).sum()


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=2, max_side=15),
                  elements=st.sampled_from([np.nan, -1.0, 0.0, 0.5, 2.0])), st.integers(0, 2**31))  # fmt: skip
def test_flagged_rank_sums(a, seed):
    flag = np.random.default_rng(seed).random(a.shape) < 0.5
    for values in (a, a.astype(np.float32)):
        codes, f = sort_with_flag(values, flag, np)
        n_valid = (~np.isnan(a)).sum(axis=1)
        rank_sum, tie = sorted_rank_sums(codes, f, n_valid, np)
        ranks, ref_tie = rankdata(a, np)
        np.testing.assert_array_equal(rank_sum, np.where(flag & ~np.isnan(a), ranks, 0).sum(axis=1))
        np.testing.assert_array_equal(tie, ref_tie)
