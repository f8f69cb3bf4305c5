"""Validation kernels: pure functions of one block and an array module ``xp`` (NumPy or CuPy).

No I/O, no Dask, no mutation of inputs. Row statistics take 2-D blocks (one row
per test, columns = the paired observations, NaN = missing); block kernels of
the streamed checks take one block of cells and return mergeable partials.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from cytodask.core.stats.pvalues import two_sided_normal_pvalue, two_sided_t_pvalue
from cytodask.core.stats.ranks import rankdata


def _paired(x: Any, y: Any, xp: ModuleType) -> tuple[Any, Any, Any]:
    """``x``, ``y`` as float64 rows with NaN wherever either is NaN, and the count per row."""
    x = xp.asarray(x, dtype=xp.float64)
    y = xp.asarray(y, dtype=xp.float64)
    bad = xp.isnan(x) | xp.isnan(y)
    x, y = xp.where(bad, xp.nan, x), xp.where(bad, xp.nan, y)
    return x, y, (~bad).sum(axis=-1)


def _moments(x: Any, y: Any, n: Any, xp: ModuleType) -> tuple[Any, Any, Any, Any, Any]:
    """Means and centred sums of squares/products of paired rows (NaN-free pairs only)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        mx = xp.nansum(x, axis=-1) / n
        my = xp.nansum(y, axis=-1) / n
    dx, dy = x - mx[:, None], y - my[:, None]
    return mx, my, xp.nansum(dx * dx, axis=-1), xp.nansum(dy * dy, axis=-1), xp.nansum(dx * dy, axis=-1)


def _r_and_p(sxx: Any, syy: Any, sxy: Any, n: Any, xp: ModuleType) -> tuple[Any, Any]:
    """Pearson r and its two-sided p (t = r √((n−2)/(1−r²)), n − 2 df: scipy's pearsonr/linregress)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        r = xp.clip(sxy / xp.sqrt(sxx * syy), -1.0, 1.0)
        df = n - 2.0
        t = r * xp.sqrt(df / ((1.0 - r) * (1.0 + r)))
    p = xp.where(xp.abs(r) == 1.0, 0.0, two_sided_t_pvalue(t, df, xp))
    ok = (n > 2) & (sxx > 0) & (syy > 0)
    return xp.where(ok, r, xp.nan), xp.where(ok, p, xp.nan)


def correlation_rows(x: Any, y: Any, xp: ModuleType) -> dict[str, Any]:
    """Pearson, Spearman and the least-squares line of ``y`` on ``x``, row by row.

    For the ``n`` pairs of a row without NaN: Pearson ``r = Sxy / √(Sxx Syy)``,
    slope ``b = Sxy / Sxx`` (``y = a + b x``), ``R² = r²``, and the two-sided
    p of ``t = r √((n − 2)/(1 − r²))`` on ``n − 2`` degrees of freedom (the
    p of ``scipy.stats.pearsonr`` and of ``linregress``' slope); Spearman ρ is
    Pearson's r of the average ranks with the same t p-value (``scipy.stats.spearmanr``).
    Rows with fewer than 3 pairs or a constant side are NaN.
    """
    x, y, n = _paired(x, y, xp)
    _, _, sxx, syy, sxy = _moments(x, y, n, xp)
    r, p = _r_and_p(sxx, syy, sxy, n, xp)
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = xp.where(xp.isnan(r), xp.nan, sxy / sxx)
    rx, _ = rankdata(x, xp)
    ry, _ = rankdata(y, xp)
    _, _, rxx, ryy, rxy = _moments(rx, ry, n, xp)
    rho, rho_p = _r_and_p(rxx, ryy, rxy, n, xp)
    return {"n": n, "pearson_r": r, "pvalue": p, "slope": slope, "r_squared": r * r,
            "spearman_rho": rho, "spearman_pvalue": rho_p}


def lins_ccc_rows(x: Any, y: Any, xp: ModuleType) -> Any:
    """Lin's concordance correlation coefficient of paired rows (Lin 1989).

    ``ρc = 2 s_xy / (s_x² + s_y² + (x̄ − ȳ)²)`` with moments over ``n`` (not ``n − 1``);
    NaN with fewer than 2 pairs or when both sides are one constant.
    """
    x, y, n = _paired(x, y, xp)
    mx, my, sxx, syy, sxy = _moments(x, y, n, xp)
    with np.errstate(invalid="ignore", divide="ignore"):
        denom = (sxx + syy) / n + (mx - my) ** 2
        ccc = 2.0 * (sxy / n) / denom
    return xp.where((n >= 2) & (denom > 0), ccc, xp.nan)


def mann_whitney_rows(x1: Any, x2: Any, xp: ModuleType) -> dict[str, Any]:
    """Tie-corrected Mann–Whitney U of ``x1`` vs ``x2`` row by row (NaN = absent), and its AUC.

    With the average ranks of the pooled ``n₁ + n₂`` values, ``U₁ = R₁ − n₁(n₁ + 1)/2``,
    ``AUC = U₁ / (n₁ n₂)`` (the probability that a value of ``x1`` exceeds one of
    ``x2``, ties counting ½); the two-sided p is the normal approximation with the tie
    correction ``σ² = n₁n₂/12 · ((n + 1) − Σ(t³ − t)/(n(n − 1)))`` and the continuity
    correction: ``scipy.stats.mannwhitneyu(method="asymptotic")``.
    """
    x1 = xp.asarray(x1, dtype=xp.float64)
    x2 = xp.asarray(x2, dtype=xp.float64)
    n1 = (~xp.isnan(x1)).sum(axis=-1).astype(xp.float64)
    n2 = (~xp.isnan(x2)).sum(axis=-1).astype(xp.float64)
    ranks, tie = rankdata(xp.concatenate([x1, x2], axis=-1), xp)
    r1 = xp.nansum(ranks[:, : x1.shape[-1]], axis=-1)
    n = n1 + n2
    with np.errstate(invalid="ignore", divide="ignore"):
        u1 = r1 - n1 * (n1 + 1.0) / 2.0
        auc = u1 / (n1 * n2)
        sigma = xp.sqrt(n1 * n2 / 12.0 * ((n + 1.0) - tie / (n * (n - 1.0))))
        z = (xp.abs(u1 - n1 * n2 / 2.0) - 0.5) / sigma
    p = xp.clip(two_sided_normal_pvalue(z, xp), 0.0, 1.0)
    ok = (n1 > 0) & (n2 > 0)
    p = xp.where(ok & (sigma > 0), p, xp.where(ok, 1.0, xp.nan))
    return {"n1": n1, "n2": n2, "u": xp.where(ok, u1, xp.nan), "auc": xp.where(ok, auc, xp.nan), "pvalue": p}


# -- streamed block kernels ------------------------------------------------------------------------------


def group_sums_block(z: Any, codes: Any, n_groups: int, xp: ModuleType) -> tuple[Any, Any]:
    """Per group × column: count and sum of the non-NaN values of a block (``codes < 0``: no group).

    ``z`` is cells × columns, ``codes`` one group per cell. Returns two ``n_groups × columns`` arrays
    (summed over blocks they give the group means exactly up to summation order).
    """
    cols = z.shape[1]
    keep = (codes >= 0)[:, None] & ~xp.isnan(z)
    flat = (xp.asarray(codes)[:, None] * cols + xp.arange(cols)[None, :])[keep]
    size = n_groups * cols
    count = xp.bincount(flat, minlength=size).reshape(n_groups, cols)
    total = xp.bincount(flat, weights=z[keep], minlength=size).reshape(n_groups, cols)
    return count.astype(xp.float64), total


def histogram_block(z: Any, codes: Any, n_groups: int, edges: Any, xp: ModuleType) -> Any:
    """Per group × column × bin counts of a block's values (bins: ``searchsorted(edges, z)``)."""
    cols, bins = z.shape[1], edges.shape[0] + 1
    keep = (codes >= 0)[:, None] & ~xp.isnan(z)
    b = xp.searchsorted(edges, z)
    flat = ((xp.asarray(codes)[:, None] * cols + xp.arange(cols)[None, :]) * bins + b)[keep]
    return xp.bincount(flat, minlength=n_groups * cols * bins).reshape(n_groups, cols, bins)


def median_bin_values_block(z: Any, codes: Any, edges: Any, lo: Any, hi: Any, xp: ModuleType) -> tuple[Any, Any]:
    """Values of a block whose bin lies in ``[lo, hi]`` of their group × column: ``(flat index, value)``.

    ``lo``/``hi`` (groups × columns) are the bins holding the lower and upper median ranks
    (:func:`median_from_bins`), so the values returned are the few that decide the median.
    """
    cols = z.shape[1]
    valid = (codes >= 0)[:, None] & ~xp.isnan(z)
    safe = xp.where(codes >= 0, codes, 0)
    b = xp.searchsorted(edges, z)
    keep = valid & (b >= lo[safe]) & (b <= hi[safe])
    flat = (safe[:, None] * cols + xp.arange(cols)[None, :])[keep]
    return flat, z[keep]


def median_ranks(hist: Any, xp: ModuleType) -> tuple[Any, Any, Any, Any]:
    """From counts per bin: the bins of the lower/upper median ranks and the count below the lower bin."""
    n = hist.sum(axis=-1)
    cum = xp.cumsum(hist, axis=-1)
    k_lo, k_hi = (n - 1) // 2, n // 2
    lo = (cum <= k_lo[..., None]).sum(axis=-1)
    hi = (cum <= k_hi[..., None]).sum(axis=-1)
    below = xp.where(lo > 0, xp.take_along_axis(cum, xp.maximum(lo - 1, 0)[..., None], axis=-1)[..., 0], 0)
    return lo, hi, k_lo - below, n


def median_from_bins(flat: Any, values: Any, offset: Any, n: Any, xp: ModuleType) -> Any:
    """Exact medians from the values of the median bins (``offset``: rank of the lower median among them).

    ``flat``/``values`` come from every block (:func:`median_bin_values_block`); sorting them by
    (group × column, value) gives each group's median values at positions ``offset`` and
    ``offset + 1 − n mod 2`` of its run. NaN for groups without values.
    """
    shape = n.shape
    n, offset = n.ravel(), offset.ravel()
    order = xp.lexsort(xp.stack([values, flat.astype(xp.float64)]))
    flat, values = flat[order], values[order]
    start = xp.searchsorted(flat, xp.arange(n.size))
    i_lo = xp.minimum(start + offset, max(values.size - 1, 0))
    i_hi = xp.minimum(i_lo + (1 - n % 2), max(values.size - 1, 0))
    if values.size == 0:
        return xp.full(shape, xp.nan)
    med = (values[i_lo] + values[i_hi]) / 2.0
    return xp.where(n > 0, med, xp.nan).reshape(shape)


def splitmix64(index: Any, seed: int, xp: ModuleType) -> Any:
    """A 64-bit hash of each cell index and the seed (SplitMix64; Steele et al. 2014): subsample keys."""
    x = xp.asarray(index, dtype=xp.uint64) + xp.uint64((seed * 0x9E3779B97F4A7C15) % 2**64)
    with np.errstate(over="ignore"):
        x = (x ^ (x >> xp.uint64(30))) * xp.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> xp.uint64(27))) * xp.uint64(0x94D049BB133111EB)
    return x ^ (x >> xp.uint64(31))


def smallest_keys(gid: Any, key: Any, value: Any, k: int, xp: ModuleType) -> tuple[Any, Any, Any]:
    """Per group id, the ``k`` entries of smallest ``key`` (a merge of such sets is such a set)."""
    order = xp.lexsort(xp.stack([key, gid]))
    gid, key, value = gid[order], key[order], value[order]
    first = xp.searchsorted(gid, gid)  # position of the first entry of each entry's group
    keep = (xp.arange(gid.size) - first) < k
    return gid[keep], key[keep], value[keep]


#: The largest key (``uint64``): a threshold that keeps every member of a group.
KEY_MAX = np.iinfo(np.uint64).max


def subsample_thresholds(sizes: Any, k: int, xp: ModuleType, *, sds: float = 8.0) -> Any:
    """Per group of ``sizes`` members, a key bound with ≥ ``k`` members below it but for a chance ~Φ(−sds).

    Keys are uniform on [0, 2⁶⁴) (:func:`splitmix64`), so the count below ``p·2⁶⁴`` is
    Binomial(size, p); ``p = (k + sds·√k + sds²) / size`` puts ``k`` about ``sds`` standard
    deviations below its mean. Groups of ≤ ``k`` members (or ``p ≥ 1``) get :data:`KEY_MAX`.
    The caller checks the count kept and raises a short group's bound to :data:`KEY_MAX`,
    so the subsample stays exact whatever the chance.
    """
    sizes = xp.asarray(sizes, dtype=xp.float64)
    with np.errstate(divide="ignore"):
        p = (k + sds * np.sqrt(k) + sds * sds) / sizes
    # below 2⁶⁴ − 2¹² so the float → uint64 cast cannot overflow
    bound = xp.minimum(xp.floor(p * 2.0**64), 2.0**64 - 2.0**12).astype(xp.uint64)
    return xp.where((sizes <= k) | (p >= 1.0), xp.uint64(KEY_MAX), bound)


def auc_candidates_block(z: Any, expressed: Any, codes: Any, start: int, k: int, seed: int,
                         xp: ModuleType, thresholds: Any = None) -> tuple[Any, Any, Any]:
    """A block's subsample candidates of check 4: per (cell type, column, expressed) its ``k`` smallest keys.

    ``z`` cells × columns, ``expressed`` the same shape (producer count > 0), ``codes`` the cell type
    of each cell (``< 0``: none), ``start`` the block's first cell in the atlas. The group id is
    ``(code · columns + column) · 2 + expressed``; keys hash the atlas cell index, so the subsample
    does not depend on the blocks. ``thresholds`` (per group id, from :func:`subsample_thresholds`)
    drops keys at or above the group's bound before the ``k`` smallest are taken.
    """
    cols = z.shape[1]
    keys = splitmix64(xp.arange(start, start + z.shape[0]), seed, xp)
    valid = (codes >= 0)[:, None] & ~xp.isnan(z)
    gid = ((xp.asarray(codes, dtype=xp.int64)[:, None] * cols + xp.arange(cols)[None, :]) * 2
           + expressed.astype(xp.int64))
    rows = xp.broadcast_to(keys[:, None], z.shape)
    gid, rows, vals = gid[valid], rows[valid], z[valid]
    if thresholds is not None:
        keep = rows < xp.asarray(thresholds)[gid]
        gid, rows, vals = gid[keep], rows[keep], vals[keep]
    return smallest_keys(gid, rows, vals, k, xp)


def nonzero_counts_block(x: Any, xp: ModuleType) -> Any:
    """Cells with a count > 0 per gene in a block of cells × genes (dense or CSR)."""
    if hasattr(x, "tocsc"):
        return xp.asarray((x > 0).sum(axis=0)).ravel().astype(xp.int64)
    return (x > 0).sum(axis=0).astype(xp.int64)


def producer_flags_block(counts: Any, positions: Any, xp: ModuleType) -> Any:
    """Cells × signatures: the count of each signature's producer gene is > 0 (``positions < 0``: False)."""
    present = positions >= 0
    cols = counts[:, xp.where(present, positions, 0)]
    cols = cols.toarray() if hasattr(cols, "toarray") else xp.asarray(cols)
    return (xp.asarray(cols) > 0) & present[None, :]
