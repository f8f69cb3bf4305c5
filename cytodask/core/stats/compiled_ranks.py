"""Compiled (numba) CPU kernel: rank sums and tie terms of two sorted groups in one linear merge.

The vectorised route (:func:`~cytodask.core.stats.ranks.merge_sorted_keys` +
:func:`~cytodask.core.stats.ranks.sorted_rank_sums`) builds int64 flag keys,
re-sorts them and scans several full-size temporaries; it serves CuPy and is
the reference in the tests. On NumPy this kernel works on the two sorted rows
with no temporaries. With average ranks, the rank sum of group 1 is
``R₁ = U₁ + n₁(n₁+1)/2`` with ``U₁ = Σᵢ #{y < xᵢ} + ½ #{y = xᵢ}`` (Mann &
Whitney 1947); both counts are merges of the sorted rows whose step has no
data-dependent branch (ties sent to one side or the other). The tie term
``Σ (t³ − t)`` over runs of the pooled sample (Lehmann 1975, §1.4) is the
sum over each group's own runs when the groups share no value (the two
counts are then equal), ``6·(#≤ − #<)`` when shared values occur once in
each group and no group has a run of its own, otherwise a walk over the
pooled runs. All sums are of
integers or half-integers below 2⁵³: exact, equal to the vectorised result.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np


@functools.cache
def _kernel() -> Callable[..., None] | None:
    try:
        import numba
    except ImportError:  # pragma: no cover - numba is a dependency; the vectorised route is the fallback
        return None

    @numba.njit(nogil=True, boundscheck=False, cache=True)
    def count_below(x, y, na, nb):  # pragma: no cover - compiled
        # sum over i of #{y < x_i}, and #{i : x_i equals some y}: a merge whose step is branch-free
        i = 0
        j = 0
        s = 0
        eq = 0
        while i < na and j < nb:
            c = np.int64(x[i] <= y[j])  # ties: x first, so the y equal to x_i are not counted
            s += c * j
            eq += c * np.int64(x[i] == y[j])
            i += c
            j += 1 - c
        return s + (na - i) * nb, eq

    @numba.njit(nogil=True, boundscheck=False, cache=True)
    def count_below_or_equal(x, y, na, nb):  # pragma: no cover - compiled
        # sum over i of #{y <= x_i}
        i = 0
        j = 0
        s = 0
        while i < na and j < nb:
            c = np.int64(x[i] < y[j])  # ties: y first, so they are counted
            s += c * j
            i += c
            j += 1 - c
        return s + (na - i) * nb

    @numba.njit(nogil=True, boundscheck=False, cache=True)
    def run_ties(x, n):  # pragma: no cover - compiled
        # sum over runs of equal values of t^3 - t
        tt = 0.0
        k = 0
        while k < n:
            e = k + 1
            while e < n and x[e] == x[k]:
                e += 1
            t = float(e - k)
            tt += t * t * t - t
            k = e
        return tt

    @numba.njit(nogil=True, boundscheck=False, cache=True)
    def merge_rank_sums(kx, ky, n1, n2, r1, tie):  # pragma: no cover - compiled; tested through the wrapper
        for row in range(kx.shape[0]):
            a_end, b_end = n1[row], n2[row]
            x = kx[row]
            y = ky[row]
            lt, eq = count_below(x, y, a_end, b_end)
            tx, ty = run_ties(x, a_end), run_ties(y, b_end)
            # without runs in y, each x_i equals at most one y: #{pairs x = y} = eq
            le = lt + eq if ty == 0.0 else count_below_or_equal(x, y, a_end, b_end)
            # U1 = sum_i #{y < x_i} + #{y = x_i} / 2, so R1 = U1 + n1 (n1 + 1) / 2
            r1[row] = (lt + le) * 0.5 + a_end * (a_end + 1) * 0.5
            if le == lt:  # no value shared by the groups: pooled runs are runs of one group
                tie[row] = tx + ty
                continue
            if tx == 0.0 and ty == 0.0:  # shared values, each once per group: le - lt runs of t = 2
                tie[row] = 6.0 * (le - lt)
                continue
            # shared values: walk the pooled runs (a in group 1, b in group 2)
            i = 0
            j = 0
            tt = 0.0
            while i < a_end or j < b_end:
                if j >= b_end or (i < a_end and x[i] <= y[j]):
                    v = x[i]
                else:
                    v = y[j]
                a = 0
                while i + a < a_end and x[i + a] == v:
                    a += 1
                b = 0
                while j + b < b_end and y[j + b] == v:
                    b += 1
                t = float(a + b)
                tt += t * t * t - t
                i += a
                j += b
            tie[row] = tt

    return merge_rank_sums


def merged_rank_sums(kx: np.ndarray, ky: np.ndarray, n1: Any, n2: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """Rank sum of group 1 and tie term per row of two sorted blocks; None without numba.

    Parameters
    ----------
    kx, ky
        Rows sorted ascending (int32 keys, or values with NaN last); the first
        ``n1[row]`` (``n2[row]``) entries of a row are valid.
    n1, n2
        Valid entries per row.
    """
    kernel = _kernel()
    if kernel is None:
        return None
    rows = kx.shape[0]
    r1 = np.empty(rows, dtype=np.float64)
    tie = np.empty(rows, dtype=np.float64)
    kernel(np.ascontiguousarray(kx), np.ascontiguousarray(ky), np.asarray(n1, dtype=np.int64),
           np.asarray(n2, dtype=np.int64), r1, tie)
    return r1, tie
