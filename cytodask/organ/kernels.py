"""Pure block kernels of the organ family: rows = signatures, columns = samples, any array module ``xp``.

No I/O, no Dask, no mutation of inputs; one implementation serves NumPy and CuPy.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from cytodask.core.stats.ranks import rankdata
from cytodask.core.xp import special


def onehot(codes: Any, n_groups: int, xp: ModuleType) -> Any:
    """Samples × groups float64 indicator of ``codes`` (a code of −1 belongs to no group)."""
    codes = xp.asarray(codes)
    return (codes[:, None] == xp.arange(n_groups)[None, :]).astype(xp.float64)


def group_moments_block(values: Any, codes: Any, n_groups: int, xp: ModuleType) -> tuple[Any, Any, Any]:
    """Per row and group: non-NaN count ``n``, mean and unbiased variance ``Σ(v − v̄)²/(n − 1)``.

    ``values`` is rows × samples (NaN = missing), ``codes`` the group of each
    sample (−1: none). Groups are summed by one matrix product with the
    samples × groups indicator, so the kernel is the same on NumPy and CuPy.
    Returns three rows × groups arrays (mean NaN where ``n = 0``, variance
    NaN where ``n < 2``).
    """
    v = xp.asarray(values, dtype=xp.float64)
    g = onehot(codes, n_groups, xp)
    valid = ~xp.isnan(v)
    v0 = xp.where(valid, v, 0.0)
    n = valid.astype(xp.float64) @ g
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = (v0 @ g) / n
        dev = xp.where(valid, v - mean @ g.T, 0.0) if n_groups else v0
        var = ((dev * dev) @ g) / (n - 1.0)
    var = xp.where(n > 1, var, xp.nan)
    return n, mean, var


def kruskal_block(values: Any, codes: Any, n_groups: int, xp: ModuleType) -> Any:
    """Kruskal–Wallis H test per row across the groups of ``codes``: columns ``H, pvalue, k, n``.

    Ranks (average ties) over the row's ``N`` non-NaN values of samples in a
    group; ``H = [12/(N(N+1)) Σ_g R_g²/n_g − 3(N+1)] / (1 − Σ(t³−t)/(N³−N))``
    and ``p = P(χ²_{k−1} > H)`` over the ``k`` groups with a value (Kruskal &
    Wallis 1952; tie correction as ``scipy.stats.kruskal``). Fewer than two
    groups, or all values tied, give NaN.
    """
    v = xp.asarray(values, dtype=xp.float64)
    in_group = xp.asarray(codes) >= 0
    v = xp.where(in_group[None, :], v, xp.nan)
    ranks, tie = rankdata(v, xp)
    g = onehot(codes, n_groups, xp)
    valid = ~xp.isnan(ranks)
    n_g = valid.astype(xp.float64) @ g
    r_g = xp.where(valid, ranks, 0.0) @ g
    n = n_g.sum(axis=1)
    k = (n_g > 0).sum(axis=1).astype(xp.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        ssq = xp.where(n_g > 0, r_g * r_g / n_g, 0.0).sum(axis=1)
        h = 12.0 / (n * (n + 1.0)) * ssq - 3.0 * (n + 1.0)
        h = h / (1.0 - tie / (n**3 - n))
    bad = (k < 2) | ~xp.isfinite(h)
    h = xp.where(bad, xp.nan, h)
    p = xp.where(bad, xp.nan, special(xp, "chdtrc")(xp.maximum(k - 1.0, 1.0), h))
    return xp.stack([h, p, k, n], axis=1)


def specificity_block(means: Any, pooled_sd: Any, xp: ModuleType) -> tuple[Any, Any]:
    """z-specificity and gap of every group (columns) for every row of group means.

    ``z = (m_g − mean_h m_h) / sd_h m_h`` (sd with ddof 1 over the groups of
    the row) and ``gap = (m_g − max_{h≠g} m_h) / s_pooled``: positive only for
    the top group, where it is its lead over the second in pooled
    within-group sd units. Both use differences of means, so adding a
    constant to every activity changes neither (unlike a tau index on
    min-shifted values). Groups with a NaN mean are left out of the row.
    """
    m = xp.asarray(means, dtype=xp.float64)
    valid = ~xp.isnan(m)
    k = valid.sum(axis=1).astype(xp.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        centre = xp.where(valid, m, 0.0).sum(axis=1) / k
        dev = xp.where(valid, m - centre[:, None], 0.0)
        sd = xp.sqrt((dev * dev).sum(axis=1) / (k - 1.0))
        z = (m - centre[:, None]) / sd[:, None]
    low = xp.where(valid, m, -xp.inf)
    order = xp.argsort(-low, axis=1)
    first = xp.take_along_axis(low, order[:, :1], axis=1)
    second = xp.take_along_axis(low, order[:, 1:2], axis=1) if m.shape[1] > 1 else xp.full_like(first, xp.nan)
    is_top = xp.arange(m.shape[1])[None, :] == order[:, :1]
    other = xp.where(is_top, second, first)
    with np.errstate(divide="ignore", invalid="ignore"):
        gap = (m - other) / xp.asarray(pooled_sd, dtype=xp.float64)[:, None]
    few = (k < 2)[:, None] | ~valid
    return xp.where(few | ~xp.isfinite(z), xp.nan, z), xp.where(few | ~xp.isfinite(gap), xp.nan, gap)
