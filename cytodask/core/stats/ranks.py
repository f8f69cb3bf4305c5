"""Sort-based average ranks with ties, vectorised over rows (NumPy or CuPy).

Kernels work along the last axis of a 2-D block (rows = features or pairs,
columns = samples) and treat NaN as missing: valid values of a row get the
ranks ``1..n_valid``.

After one sort, a run of ``t`` equal values at 0-based positions ``s..s+t-1``
gets the average rank ``s + 1 + (t - 1)/2`` (ties share the mean of the ranks
they span; Kendall & Gibbons 1990, §3.1). ``argsort(argsort(x))`` would give
tied values distinct ranks. The tie term ``Σ (t³ − t)`` over runs is what the
normal approximations of rank tests need (Lehmann 1975, §1.4).

Sorting is the cost of a rank test. Values that fit in 32 bits are mapped to
int64 keys ``2·m(v) + flag`` with ``m`` order-preserving, so one sort of keys
carries a group flag along with the value; two already-sorted groups are
merged by a stable sort, which finds the two runs and merges them in linear
time (NumPy's timsort; CuPy's radix sort is stable too).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

_INT32_MAX = np.int32(np.iinfo(np.int32).max)


def _sort(a: Any, xp: ModuleType, *, stable: bool = False) -> Any:
    if stable and xp is np:
        return np.sort(a, axis=-1, kind="stable")
    return xp.sort(a, axis=-1)


def _argsort(a: Any, xp: ModuleType, *, stable: bool = False) -> Any:
    if stable and xp is np:
        return np.argsort(a, axis=-1, kind="stable")
    return xp.argsort(a, axis=-1)


def int32_keys(values: Any, xp: ModuleType, nan: Any = None) -> Any | None:
    """Order-preserving int32 codes of values that fit in 32 bits, else None.

    Floats (≤ 32 bit): the IEEE bits ``b`` become ``b ^ ((b >> 31) & 0x7FFFFFFF)``,
    a signed integer with the order of the float; −0 is mapped to +0 (they tie)
    and every NaN to the largest code (after +inf). Integers of ≤ 32 bits are
    shifted into the int32 range. Sorting int32 codes is cheaper than sorting
    floats and lets a group flag ride along in an int64 ``2·code + flag``.
    ``nan`` may pass the NaN mask of ``values`` when the caller has it.
    """
    dt = np.dtype(values.dtype)
    if dt.kind == "f" and dt.itemsize <= 4:
        key = (values.astype(xp.float32, copy=False) + xp.float32(0.0)).view(xp.int32)  # a copy; -0 -> +0
        sign = key >> 31
        sign &= 0x7FFFFFFF
        key ^= sign
        nan = xp.isnan(values) if nan is None else nan
        if bool(nan.any()):
            key[nan] = _INT32_MAX
        return key
    if dt.kind in "ib" and dt.itemsize <= 4 or dt.kind == "u" and dt.itemsize <= 2:
        return values.astype(xp.int32)
    if dt.kind == "u" and dt.itemsize == 4:
        return (values.astype(xp.int64) - (1 << 31)).astype(xp.int32)
    return None


def decode_int32_keys(keys: Any, dtype: np.dtype, xp: ModuleType) -> Any:
    """Inverse of :func:`int32_keys` for values of ``dtype``, as float64 (NaN keys give NaN for floats).

    The float map ``b ^ ((b >> 31) & 0x7FFFFFFF)`` is its own inverse; unsigned
    32-bit values were shifted by ``2³¹``; other integers are the keys themselves.
    """
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return (keys ^ ((keys >> 31) & 0x7FFFFFFF)).view(xp.float32).astype(xp.float64)
    if dtype.kind == "u" and dtype.itemsize == 4:
        return keys.astype(xp.float64) + float(1 << 31)
    return keys.astype(xp.float64)


def median_of_sorted(sorted_rows: Any, n_valid: Any, xp: ModuleType, decode: Any = None) -> Any:
    """Median of the first ``n_valid`` entries of each sorted row (NaN for an empty row).

    ``(v[⌊(n−1)/2⌋] + v[⌊n/2⌋]) / 2``; ``decode`` maps the two picked entries
    to float64 values (e.g. :func:`decode_int32_keys`), so keys need not be
    decoded whole.
    """
    rows, width = sorted_rows.shape
    if width == 0:
        return xp.full(rows, xp.nan)
    n = xp.asarray(n_valid).astype(xp.int64)
    lo = xp.clip((n - 1) // 2, 0, None)[:, None]
    hi = xp.clip(n // 2, 0, width - 1)[:, None]
    pair = xp.concatenate([xp.take_along_axis(sorted_rows, lo, axis=-1),
                           xp.take_along_axis(sorted_rows, hi, axis=-1)], axis=1)
    pair = pair.astype(xp.float64) if decode is None else decode(pair)
    return xp.where(n > 0, (pair[:, 0] + pair[:, 1]) / 2.0, xp.nan)


def _flagged(keys: Any, flag: Any, xp: ModuleType) -> Any:
    out = keys.astype(xp.int64)
    out *= 2
    out += flag
    return out


def merge_sorted_keys(kx: Any, ky: Any, xp: ModuleType) -> tuple[Any, Any]:
    """Merge rows of two sorted int32 key blocks: sorted codes and "came from ``kx``" flags (0/1)."""
    rows, n1 = kx.shape
    keys = xp.empty((rows, n1 + ky.shape[1]), dtype=xp.int64)
    keys[:, :n1] = kx
    keys[:, n1:] = ky
    keys <<= 1
    keys[:, :n1] |= 1
    if xp is np:
        keys.sort(axis=-1, kind="stable")  # two sorted runs: a linear merge, in place
    else:
        keys.sort(axis=-1)
    flags = keys & 1
    keys >>= 1
    return keys, flags


def merge_sorted(xs: Any, ys: Any, xp: ModuleType) -> tuple[Any, Any]:
    """Merge rows of two sorted value blocks (NaN last): sorted values and "came from ``xs``" flags."""
    dtype = xp.result_type(xs.dtype, ys.dtype)
    both = xp.concatenate([xs.astype(dtype, copy=False), ys.astype(dtype, copy=False)], axis=-1)
    order = _argsort(both, xp, stable=True)
    return xp.take_along_axis(both, order, axis=-1), order < xs.shape[1]


def sort_with_flag(values: Any, flag: Any, xp: ModuleType) -> tuple[Any, Any]:
    """Sort rows of ``values`` (NaN last) carrying a boolean ``flag`` along."""
    keys = int32_keys(values, xp)
    if keys is not None:
        keys = _sort(_flagged(keys, flag, xp), xp)
        return keys >> 1, (keys & 1).astype(bool)
    order = _argsort(values, xp)
    return xp.take_along_axis(values, order, axis=-1), xp.take_along_axis(flag, order, axis=-1)


def sorted_rank_sums(codes: Any, flags: Any, n_valid: Any, xp: ModuleType) -> tuple[Any, Any]:
    """Per row: sum of average ranks of flagged entries, and the tie term.

    Parameters
    ----------
    codes
        Sorted rows (rows × n); the first ``n_valid`` entries of a row are valid.
    flags
        Boolean (or 0/1 integer) block, same shape: which entries to sum.
    n_valid
        Valid entries per row.

    Returns
    -------
    rank_sum, tie_term
        ``Σ_{flagged valid} rank`` and ``Σ_runs (t³ − t)``; both exact in
        float64 (sums of half-integers below 2⁵³). Ties are handled sparsely:
        ranks are positions plus a correction on tied runs only.
    """
    rows, n = codes.shape
    if rows == 0 or n == 0:
        zero = xp.zeros(rows, dtype=xp.float64)
        return zero, zero.copy()
    n_valid = xp.asarray(n_valid)
    complete = bool((n_valid == n).all())
    valid = None if complete else xp.arange(n)[None, :] < n_valid[:, None]
    if valid is not None:
        flags = flags & valid
    if flags.dtype != xp.int64:
        flags = flags.astype(xp.int64)
    rank_sum = (flags @ xp.arange(1, n + 1, dtype=xp.int64)).astype(xp.float64)  # exact integer sums
    tied = codes[:, 1:] == codes[:, :-1]
    if valid is not None:
        tied &= valid[:, 1:]
    if not bool(tied.any()):
        return rank_sum, xp.zeros(rows, dtype=xp.float64)
    left = xp.zeros((rows, n), dtype=bool)  # equal to its left neighbour
    left[:, 1:] = tied
    member = left.copy()
    member[:, :-1] |= tied  # part of a run of t > 1
    idx = xp.flatnonzero(member.ravel())
    is_start = ~left.ravel()[idx]
    run = xp.cumsum(is_start) - 1
    run_start = idx[is_start]
    t = xp.bincount(run).astype(xp.float64)
    mid = run_start + (t - 1.0) / 2.0  # mean 0-based flat position of each run
    delta = (mid[run] - idx) * flags.ravel()[idx]
    rank_sum = rank_sum + xp.bincount(idx // n, weights=delta, minlength=rows)
    tie_term = xp.bincount(run_start // n, weights=t * t * t - t, minlength=rows)
    return rank_sum, tie_term


def rankdata(values: Any, xp: ModuleType) -> tuple[Any, Any]:
    """Average ranks along the last axis of a 2-D block; NaN stays NaN.

    Each row equals ``scipy.stats.rankdata(row, method="average",
    nan_policy="omit")``. Returns ``(ranks, tie_term)`` with ``Σ (t³ − t)``.
    """
    rows, n = values.shape
    valid = ~xp.isnan(values) if np.dtype(values.dtype).kind == "f" else xp.ones((rows, n), bool)
    if rows == 0 or n == 0:
        return xp.full((rows, n), xp.nan), xp.zeros(rows, dtype=xp.float64)
    n_valid = valid.sum(axis=-1)
    order = _argsort(values, xp)
    codes = xp.take_along_axis(values, order, axis=-1)
    pos = xp.arange(n)[None, :]
    start = xp.ones((rows, n), dtype=bool)
    start[:, 1:] = codes[:, 1:] != codes[:, :-1]
    start |= pos >= n_valid[:, None]
    target = (order + (xp.arange(rows) * n)[:, None]).ravel()
    ranks = xp.empty(rows * n, dtype=xp.float64)
    if bool(start.all()):  # no ties: ranks are positions
        ranks[target] = xp.broadcast_to(xp.arange(1.0, n + 1.0), (rows, n)).ravel()
        ranks = ranks.reshape(rows, n)
        return (ranks if bool(valid.all()) else xp.where(valid, ranks, xp.nan)), xp.zeros(rows)
    flat_start = xp.flatnonzero(start.ravel())
    run = xp.cumsum(start.ravel()) - 1
    t = xp.diff(xp.concatenate([flat_start, xp.asarray([rows * n], dtype=flat_start.dtype)]))
    mid = (flat_start % n) + 1.0 + (t - 1.0) / 2.0
    ranks[target] = mid[run]
    ranks = xp.where(valid, ranks.reshape(rows, n), xp.nan)
    tf = t.astype(xp.float64)
    tie_term = xp.bincount(flat_start // n, weights=tf * tf * tf - tf, minlength=rows)
    return ranks, tie_term
