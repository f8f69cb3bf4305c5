"""Spearman rank correlation kernels: every row of ``a`` with every row of ``b``, pairwise-complete.

ρ is Pearson's r of average ranks (ties share the mean rank; Spearman
1904). With missing values the ranks of a pair are those of its
pairwise-complete samples, as ``scipy.stats.spearmanr(x, y,
nan_policy="omit")`` computes them:

- complete rows: rank once, one matrix product of centred ranks;
- pairs whose two rows miss the same samples: each row's own ranks are the
  pair's ranks, so masked products of the centred ranks are exact;
- other pairs (different missing samples): gathered into a batch of pairs,
  re-ranked over their joint mask and correlated row-wise, in blocks of pairs.
Ranks are half-integers, so sums of their products are exact in float64.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from cytodask.core.stats import driver
from cytodask.core.stats.ranks import rankdata
from cytodask.correlation.kernels.pearson import complete_corr, finish, has_nan, masked_corr, t_pvalue


def paired_rank_corr(a: Any, b: Any, xp: ModuleType) -> tuple[Any, Any, Any]:
    """Row-wise Spearman of paired rows ``a[k]``, ``b[k]`` over their joint non-NaN samples."""
    m = ~xp.isnan(a) & ~xp.isnan(b)
    ra, _ = rankdata(xp.where(m, a, xp.nan), xp)
    rb, _ = rankdata(xp.where(m, b, xp.nan), xp)
    n = m.sum(axis=1).astype(xp.float64)
    centre = ((n + 1.0) / 2.0)[:, None]
    ca, cb = xp.where(m, ra - centre, 0.0), xp.where(m, rb - centre, 0.0)
    saa, sbb, sab = (ca * ca).sum(axis=1), (cb * cb).sum(axis=1), (ca * cb).sum(axis=1)
    const = (saa == 0) | (sbb == 0)
    with_zero = xp.where(const, 1.0, saa * sbb)
    return xp.clip(sab / xp.sqrt(with_zero), -1.0, 1.0), n, const


def _fix_mixed_pairs(a: Any, b: Any, r: Any, const: Any, todo: Any, xp: ModuleType) -> None:
    """Recompute the pairs flagged in ``todo`` over their joint masks (in place), in blocks of pairs."""
    ii, jj = xp.nonzero(todo)
    step = max(1, driver.PAIR_BLOCK_ELEMENTS // max(1, a.shape[1]))
    for s in range(0, int(ii.size), step):  # blocks of pairs
        i, j = ii[s : s + step], jj[s : s + step]
        rk, _, ck = paired_rank_corr(a[i], b[j], xp)
        r[i, j] = rk
        const[i, j] = ck


def spearman_block(a: Any, b: Any, *, xp: ModuleType, z: Any = None, min_n: int = 10) -> Any:
    """Spearman kernel on a block pair: ``(fa × fb × 4)`` of ``rho, pvalue, n, code``.

    ``p`` from ``t = ρ √((n−2)/((1+ρ)(1−ρ)))`` on ``n − 2`` degrees of freedom,
    as ``scipy.stats.spearmanr``.
    """
    a, b = a.astype(xp.float64, copy=False), b.astype(xp.float64, copy=False)
    ra, _ = rankdata(a, xp)
    rb, _ = rankdata(b, xp)
    if not has_nan(xp, a, b):
        r, n, const = complete_corr(ra, rb, xp)
    else:
        ma, mb = (~xp.isnan(a)).astype(xp.float64), (~xp.isnan(b)).astype(xp.float64)
        centre_a, centre_b = (ma.sum(axis=1) + 1.0) / 2.0, (mb.sum(axis=1) + 1.0) / 2.0
        r, n, const = masked_corr(ra, rb, centre_a, centre_b, xp, rel_tol=0.0)
        mismatch = ma @ (1.0 - mb).T + (1.0 - ma) @ mb.T
        _fix_mixed_pairs(a, b, r, const, (mismatch > 0) & (n >= min_n), xp)
    return finish(r, t_pvalue(r, n - 2.0, xp), n, const, min_n, xp)
