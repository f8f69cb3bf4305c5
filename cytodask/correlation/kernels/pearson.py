"""Pearson correlation kernels: every row of ``a`` with every row of ``b``, pairwise-complete.

Missing values are handled by masked matrix products: with ``M`` the
non-NaN indicators and ``A`` the shifted values set to 0 where missing, the
pairwise-complete sums are ``n = M_a M_bᵀ``, ``S_a = A M_bᵀ``,
``S_aa = A² M_bᵀ``, ``S_ab = A Bᵀ`` (and symmetric ones for ``b``); then
``r = (S_ab − S_a S_b / n) / √((S_aa − S_a²/n)(S_bb − S_b²/n))``.

The pieces (:func:`complete_corr`, :func:`masked_corr`, :func:`t_pvalue`,
:func:`finish`) are shared by the Spearman and partial kernels.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from cytodask.core.stats.pvalues import two_sided_t_pvalue

CORRELATION_OUTPUTS = ("rho", "pvalue", "n", "code")


def _centred(a: Any, xp: ModuleType) -> Any:
    """Rows minus their mean, scaled by a power of two (exact) so sums of squares stay in range."""
    c = a - a.mean(axis=1, keepdims=True)
    _, e = xp.frexp(xp.abs(c).max(axis=1, keepdims=True))
    return xp.ldexp(c, -e)


def complete_corr(a: Any, b: Any, xp: ModuleType) -> tuple[Any, Any, Any]:
    """Correlation of complete rows (no NaN): ``r``, ``n`` and the "constant" mask.

    ``r = Σ (a−ā)(b−b̄) / √(Σ(a−ā)² Σ(b−b̄)²)`` clipped to [−1, 1] (one rounding
    after the sums, so exact sums, e.g. of ranks, give exact ±1); a row whose
    values are all equal is constant (scipy's exact check).
    """
    ac, bc = _centred(a, xp), _centred(b, xp)
    saa, sbb = (ac * ac).sum(axis=1), (bc * bc).sum(axis=1)
    const = (a == a[:, :1]).all(axis=1)[:, None] | (b == b[:, :1]).all(axis=1)[None, :]
    den = xp.sqrt(saa[:, None] * sbb[None, :])
    r = xp.clip((ac @ bc.T) / xp.where(const, 1.0, den), -1.0, 1.0)
    n = xp.full(r.shape, float(a.shape[1]))
    return r, n, const


def masked_corr(
    a: Any, b: Any, shift_a: Any, shift_b: Any, xp: ModuleType, *, rel_tol: float | None = None
) -> tuple[Any, Any, Any]:
    """Pairwise-complete correlation by masked matrix products: ``r``, ``n``, "constant" mask.

    Rows are shifted by ``shift_a``/``shift_b`` (a value near their centre)
    before the products to limit cancellation. A pair is constant when the
    centred sum of squares of either side is ``≤ rel_tol · S_aa`` (default
    ``8·n·ε``: nothing left above rounding); ``rel_tol=0`` asks for exact zeros.
    """
    ma, mb = ~xp.isnan(a), ~xp.isnan(b)
    av = xp.where(ma, a - shift_a[:, None], 0.0)
    bv = xp.where(mb, b - shift_b[:, None], 0.0)
    ma, mb = ma.astype(xp.float64), mb.astype(xp.float64)
    n = ma @ mb.T
    sa, sb = av @ mb.T, ma @ bv.T
    saa, sbb = (av * av) @ mb.T, ma @ (bv * bv).T
    sab = av @ bv.T
    with np.errstate(divide="ignore", invalid="ignore"):
        va = saa - sa * sa / n
        vb = sbb - sb * sb / n
        cov = sab - sa * sb / n
        tol = 8.0 * np.finfo(np.float64).eps * n if rel_tol is None else rel_tol
        const = (va <= tol * saa) | (vb <= tol * sbb)
        r = xp.clip(cov / xp.sqrt(va * vb), -1.0, 1.0)
    return r, n, const


def lower_median(a: Any, xp: ModuleType) -> Any:
    """The lower median of the non-NaN values of each row (an element of the row; 0 if none)."""
    s = xp.sort(a, axis=1)
    k = xp.clip(((~xp.isnan(a)).sum(axis=1) - 1) // 2, 0, None)
    med = xp.take_along_axis(s, k[:, None], axis=1)[:, 0]
    return xp.where(xp.isnan(med), 0.0, med)


def t_pvalue(r: Any, df: Any, xp: ModuleType) -> Any:
    """Two-sided p of a correlation: ``t = r √(ν / ((1+r)(1−r)))``, ``p = 2 T_ν(−|t|)``.

    Under independence (Fisher 1915) ``t ~ t_ν`` with ``ν = n − 2`` (Pearson,
    Spearman) or ``n − k − 2`` (partial on ``k`` covariates). This is
    ``scipy.stats.spearmanr``'s formula; ``scipy.stats.pearsonr`` evaluates the
    same distribution as ``(|r|+1)/2 ~ Beta(ν/2, ν/2)``, and the two agree to
    ~1e-12 relative (the t form is 1.5-1.9× cheaper to evaluate: claim-t-vs-beta in benchmarks/RESULTS.md).
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        t = r * xp.sqrt(xp.clip(df / ((r + 1.0) * (1.0 - r)), 0.0, None))
        return two_sided_t_pvalue(t, df, xp)


def finish(r: Any, p: Any, n: Any, const: Any, min_n: int, xp: ModuleType) -> Any:
    """Stack ``rho, pvalue, n, code``; NaN where ``n < min_n`` (code 1) or a side is constant (code 2)."""
    small = n < min_n
    code = small * 1.0 + (const & ~small) * 2.0
    bad = code > 0
    return xp.stack([xp.where(bad, xp.nan, r), xp.where(bad, xp.nan, p), n, code], axis=-1)


def has_nan(xp: ModuleType, *arrays: Any) -> bool:
    """True when any of the (float) arrays holds a NaN."""
    return any(bool(xp.isnan(a).any()) for a in arrays)


def pearson_block(a: Any, b: Any, *, xp: ModuleType, z: Any = None, min_n: int = 10) -> Any:
    """Pearson kernel on a block pair: ``(fa × fb × 4)`` of ``rho, pvalue, n, code``."""
    a, b = a.astype(xp.float64, copy=False), b.astype(xp.float64, copy=False)
    if has_nan(xp, a, b):
        r, n, const = masked_corr(a, b, lower_median(a, xp), lower_median(b, xp), xp)
    else:
        r, n, const = complete_corr(a, b, xp)
    return finish(r, t_pvalue(r, n - 2.0, xp), n, const, min_n, xp)
