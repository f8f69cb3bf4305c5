"""Rank-sum (Mann–Whitney U) and signed-rank kernels, one row per feature.

Both use the normal approximation with the tie-corrected variance and match
scipy's ``method="asymptotic"`` results to rounding; ranks come from
:mod:`cytodask.core.stats.ranks` (one sort per block of features).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from cytodask.core.stats.compiled_ranks import merged_rank_sums
from cytodask.core.stats.pvalues import two_sided_normal_pvalue
from cytodask.core.stats.ranks import (
    decode_int32_keys,
    int32_keys,
    median_of_sorted,
    merge_sorted,
    merge_sorted_keys,
    sort_with_flag,
    sorted_rank_sums,
)
from cytodask.core.xp import special

RANKSUM_OUTPUTS = ("statistic", "pvalue", "n_g1", "n_g2", "code")


def _nan_and_counts(a: Any, xp: ModuleType) -> tuple[Any, Any]:
    if np.dtype(a.dtype).kind == "f":
        nan = xp.isnan(a)
        return nan, (a.shape[1] - nan.sum(axis=-1)).astype(xp.float64)
    return None, xp.full(a.shape[0], float(a.shape[1]))


def _sorted_groups(x: Any, y: Any, xp: ModuleType) -> tuple[Any, Any, Any, Any, bool]:
    """Rows of ``x`` and ``y`` sorted (NaN last): int32 keys when both fit in 32 bits, else values."""
    (nan_x, n1), (nan_y, n2) = _nan_and_counts(x, xp), _nan_and_counts(y, xp)
    kx, ky = int32_keys(x, xp, nan_x), int32_keys(y, xp, nan_y)
    if kx is not None and ky is not None:
        kx.sort(axis=-1)
        ky.sort(axis=-1)
        return kx, ky, n1, n2, True
    return xp.sort(x, axis=-1), xp.sort(y, axis=-1), n1, n2, False


def _rank_sums(sx: Any, sy: Any, n1: Any, n2: Any, keys: bool, xp: ModuleType) -> tuple[Any, Any]:
    """Rank sum of group 1 and tie term per row: a compiled linear merge on NumPy, else vectorised."""
    if xp is np:  # sorted int32 keys or sorted values (NaN last) alike
        merged = merged_rank_sums(sx, sy, n1, n2)
        if merged is not None:
            return merged
    codes, from_x = merge_sorted_keys(sx, sy, xp) if keys else merge_sorted(sx, sy, xp)
    return sorted_rank_sums(codes, from_x, (n1 + n2).astype(xp.int64), xp)


def _ranksum_columns(sx: Any, sy: Any, n1: Any, n2: Any, keys: bool, xp: ModuleType, min_n: int) -> list[Any]:
    r1, tie = _rank_sums(sx, sy, n1, n2, keys, xp)
    n = n1 + n2
    u1 = r1 - n1 * (n1 + 1.0) / 2.0
    u = xp.maximum(u1, n1 * n2 - u1)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = xp.sqrt(n1 * n2 / 12.0 * ((n + 1.0) - tie / (n * (n - 1.0))))
        z = (u - n1 * n2 / 2.0 - 0.5) / s
    p = xp.clip(2.0 * special(xp, "ndtr")(-z), 0.0, 1.0)
    code = (n1 < min_n) * 1.0 + (n2 < min_n) * 2.0
    bad = (code > 0) | (n1 == 0) | (n2 == 0)
    return [xp.where(bad, xp.nan, u1), xp.where(bad, xp.nan, p), n1, n2, code]


def mannwhitney_block(x: Any, y: Any, *, xp: ModuleType, min_n: int = 3) -> Any:
    """Mann–Whitney U kernel on a block: columns ``statistic, pvalue, n_g1, n_g2, code``.

    ``U₁ = R₁ − n₁(n₁+1)/2`` with ``R₁`` the sum of the average ranks of ``x``
    in the pooled sample; ``z = (max(U₁, U₂) − n₁n₂/2 − ½) / σ`` with
    ``σ² = n₁n₂/12 · ((n+1) − Σ(t³−t) / (n(n−1)))`` and ``p = 2Φ(−z)``
    clipped to [0, 1] (Mann & Whitney 1947; tie correction: Lehmann 1975, eq. 1.29).
    """
    sx, sy, n1, n2, keys = _sorted_groups(x, y, xp)
    return xp.stack(_ranksum_columns(sx, sy, n1, n2, keys, xp, min_n), axis=1)


SUMMARY_OUTPUTS = (*RANKSUM_OUTPUTS, "mean_g1", "mean_g2", "median_g1", "median_g2")


def _nanmean_rows(a: Any, n: Any, xp: ModuleType) -> Any:
    with np.errstate(divide="ignore", invalid="ignore"):
        if np.dtype(a.dtype).kind == "f":
            return xp.where(xp.isnan(a), 0.0, a).sum(axis=-1, dtype=xp.float64) / n
        return a.sum(axis=-1, dtype=xp.float64) / n


def mannwhitney_summary_block(x: Any, y: Any, *, xp: ModuleType, min_n: int = 3) -> Any:
    """:func:`mannwhitney_block` plus each group's mean and median, from the same sort.

    Columns :data:`SUMMARY_OUTPUTS`. The medians are read off the sorted rows
    the rank sums need (``(v[⌊(n−1)/2⌋] + v[⌊n/2⌋]) / 2`` over the ``n`` valid
    values), so a differential table sorts each group once, not twice.
    Means and medians are kept for groups below ``min_n``.
    """
    sx, sy, n1, n2, keys = _sorted_groups(x, y, xp)
    dx, dy = ((lambda v, d=a.dtype: decode_int32_keys(v, d, xp)) if keys else None for a in (x, y))
    med1, med2 = median_of_sorted(sx, n1, xp, dx), median_of_sorted(sy, n2, xp, dy)
    cols = _ranksum_columns(sx, sy, n1, n2, keys, xp, min_n)
    return xp.stack([*cols, _nanmean_rows(x, n1, xp), _nanmean_rows(y, n2, xp), med1, med2], axis=1)


def signed_rank_block(x: Any, y: Any, *, xp: ModuleType, min_n: int = 3) -> Any:
    """Wilcoxon signed-rank kernel on paired blocks: ``statistic, pvalue, n_g1, n_g2, code``.

    ``d = x − y``; pairs with a NaN are dropped, zero differences are dropped
    (Wilcoxon's rule); ``T⁺`` is the rank sum of positive ``|d|``,
    statistic ``min(T⁺, T⁻)``; ``z = (T⁺ − m(m+1)/4) / σ`` with
    ``σ² = (m(m+1)(2m+1) − Σ(t³−t)/2) / 24`` over the ``m`` non-zero pairs,
    ``p = 2Φ(−|z|)`` (Wilcoxon 1945; Lehmann 1975, §3.2). ``n_g1 = n_g2`` is
    the number of complete pairs (zeros included). All differences zero:
    statistic 0, p NaN (as scipy), reason ``"all_differences_zero"``.
    Differences are taken in the input precision (float32 stays float32, as
    in scipy), so what counts as a zero or a tie is the same.
    """
    d = x - y
    if np.dtype(d.dtype).kind != "f":
        d = d.astype(xp.float64)
    n_pairs = (~xp.isnan(d)).sum(axis=-1).astype(xp.float64)
    d = xp.where(d == 0, xp.nan, d)
    m = (~xp.isnan(d)).sum(axis=-1).astype(xp.float64)
    codes, positive = sort_with_flag(xp.abs(d), d > 0, xp)
    r_plus, tie = sorted_rank_sums(codes, positive, m.astype(xp.int64), xp)
    r_minus = m * (m + 1.0) / 2.0 - r_plus
    with np.errstate(divide="ignore", invalid="ignore"):
        se = xp.sqrt((m * (m + 1.0) * (2.0 * m + 1.0) - tie / 2.0) / 24.0)
        z = (r_plus - m * (m + 1.0) * 0.25) / se
    p = two_sided_normal_pvalue(z, xp)
    small = n_pairs < min_n
    code = small * 8.0 + ((m == 0) & ~small) * 16.0
    stat = xp.where(small, xp.nan, xp.minimum(r_plus, r_minus))
    p = xp.where(small | (m == 0), xp.nan, p)
    return xp.stack([stat, p, n_pairs, n_pairs, code], axis=1)
