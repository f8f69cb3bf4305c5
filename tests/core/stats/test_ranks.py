"""Rank kernels: average ranks with ties, order-preserving int32 codes."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.stats import rankdata as sp_rankdata

from cytodask.core.stats.ranks import int32_keys, rankdata, sort_with_flag, sorted_rank_sums
from tests.differential._data import two_groups

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


@settings(max_examples=80, deadline=None)
@given(two_groups(min_n=0), st.sampled_from(["float64", "float32", "int32"]))
def test_compiled_merge_equals_vectorised_route(data, dtype):
    """The NumPy kernel (one linear merge) gives the same exact rank sums and tie terms as the
    vectorised route that CuPy runs, on sorted keys and on sorted values."""
    from cytodask.core.stats.compiled_ranks import merged_rank_sums
    from cytodask.core.stats.ranks import int32_keys, merge_sorted, merge_sorted_keys, sorted_rank_sums

    x, y = data
    if dtype == "int32":
        x, y = np.nan_to_num(x) * 100, np.nan_to_num(y) * 100
    x, y = x.astype(dtype), y.astype(dtype)
    n1 = (~np.isnan(x.astype(float))).sum(axis=1)
    n2 = (~np.isnan(y.astype(float))).sum(axis=1)
    kx, ky = int32_keys(x, np), int32_keys(y, np)
    if dtype != "float64":  # 32-bit values are ranked through int32 keys
        kx.sort(axis=-1)
        ky.sort(axis=-1)
        codes, flags = merge_sorted_keys(kx, ky, np)
        want = sorted_rank_sums(codes, flags, n1 + n2, np)
        got = merged_rank_sums(kx, ky, n1, n2)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
    sx, sy = np.sort(x, axis=-1), np.sort(y, axis=-1)
    vals, vflags = merge_sorted(sx, sy, np)
    want_v = sorted_rank_sums(vals, vflags, n1 + n2, np)
    got_v = merged_rank_sums(sx, sy, n1, n2)
    np.testing.assert_array_equal(got_v[0], want_v[0])
    np.testing.assert_array_equal(got_v[1], want_v[1])


def test_compiled_merge_tie_branches():
    """Each tie branch of the kernel: no shared value, shared values once per group (t = 2 runs),
    and shared values with runs inside a group (pooled walk) — all equal to the vectorised route."""
    from cytodask.core.stats.compiled_ranks import merged_rank_sums
    from cytodask.core.stats.ranks import merge_sorted, sorted_rank_sums

    cases = [
        ([1.0, 3.0, 5.0], [2.0, 4.0, 6.0, 8.0]),          # disjoint
        ([1.0, 2.0, 3.0, 7.0], [2.0, 4.0, 7.0]),          # 2 and 7 shared, once in each group
        ([1.0, 1.0, 2.0], [3.0, 3.0, 4.0]),               # runs within groups, none shared
        ([1.0, 2.0, 2.0, 5.0], [2.0, 5.0, 5.0, 9.0]),     # shared values inside runs
    ]
    for x, y in cases:
        sx, sy = np.sort(np.array([x])), np.sort(np.array([y]))
        n1, n2 = np.array([sx.shape[1]]), np.array([sy.shape[1]])
        vals, flags = merge_sorted(sx, sy, np)
        want = sorted_rank_sums(vals, flags, n1 + n2, np)
        got = merged_rank_sums(sx, sy, n1, n2)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])


@settings(max_examples=60, deadline=None)
@given(floats32)
def test_decode_int32_keys_inverts_the_key_map(a):
    """decode(int32_keys(v)) gives v back for 32-bit floats (−0 becomes +0, NaN stays NaN) and integers."""
    from cytodask.core.stats.ranks import decode_int32_keys

    back = decode_int32_keys(int32_keys(a, np), a.dtype, np)
    np.testing.assert_array_equal(back, np.where(a == 0, 0.0, a.astype(np.float64)))
    ints = np.array([[-(2**31), -1, 0, 7, 2**31 - 1]], dtype=np.int32)
    np.testing.assert_array_equal(decode_int32_keys(int32_keys(ints, np), ints.dtype, np), ints.astype(np.float64))
    uints = np.array([[0, 1, 2**31, 2**32 - 1]], dtype=np.uint32)
    np.testing.assert_array_equal(decode_int32_keys(int32_keys(uints, np), uints.dtype, np), uints.astype(np.float64))
