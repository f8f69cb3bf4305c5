"""Pure kernels of the cross-atlas statistics: one group of numbers and an array module ``xp`` in,
numbers out (no I/O, no pandas, inputs never changed)."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np


def inverse_variance(y: Any, v: Any, xp: ModuleType = np) -> dict[str, float]:
    """Fixed-effect and DerSimonian–Laird random-effects pooling of ``k`` effects ``y`` with variances ``v``.

    Fixed: ``wᵢ = 1/vᵢ``, ``θ_F = Σwᵢyᵢ/Σwᵢ``, ``SE_F = 1/√Σwᵢ``. Heterogeneity:
    ``Q = Σwᵢ(yᵢ − θ_F)²`` on ``k − 1`` degrees of freedom, ``I² = max(0, (Q − (k−1))/Q)`` (a
    fraction here), ``τ² = max(0, (Q − (k−1)) / (Σwᵢ − Σwᵢ²/Σwᵢ))`` (DerSimonian & Laird 1986).
    Random: ``wᵢ* = 1/(vᵢ + τ²)``, ``θ_R = Σwᵢ*yᵢ/Σwᵢ*``, ``SE_R = 1/√Σwᵢ*``. With ``k = 1`` the
    heterogeneity terms are NaN (undefined) and τ² = 0.
    """
    y = xp.asarray(y, dtype=xp.float64)
    v = xp.asarray(v, dtype=xp.float64)
    k = int(y.shape[0])
    w = 1.0 / v
    sw = float(w.sum())
    fixed = float((w * y).sum()) / sw
    q = float((w * (y - fixed) ** 2).sum())
    df = k - 1
    if k > 1:
        c = sw - float((w**2).sum()) / sw
        tau2 = max(0.0, (q - df) / c) if c > 0 else 0.0
        i2 = max(0.0, (q - df) / q) if q > 0 else 0.0
    else:
        tau2, i2, q = 0.0, float("nan"), float("nan")
    ws = 1.0 / (v + tau2)
    random = float((ws * y).sum()) / float(ws.sum())
    return {"fixed": fixed, "fixed_se": sw**-0.5, "random": random, "random_se": float(ws.sum()) ** -0.5,
            "tau2": tau2, "q": q, "i2": i2, "df": df}


def kendall_w(ranks: Any, tie_sum: Any, xp: ModuleType = np) -> float:
    """Kendall's coefficient of concordance of ``m`` raters (rows) ranking ``n`` items (columns).

    ``W = 12 S / (m²(n³ − n) − m Σⱼ Tⱼ)`` with ``S = Σᵢ (Rᵢ − R̄)²`` over the items' rank sums ``Rᵢ``
    and ``Tⱼ = Σ (t³ − t)`` over the tie groups of rater ``j`` (``tie_sum`` = ``Σⱼ Tⱼ``), mid-ranks for
    ties (Kendall & Babington Smith 1939; Siegel & Castellan 1988, §9.4). NaN when every rater ties
    every item.
    """
    ranks = xp.asarray(ranks, dtype=xp.float64)
    m, n = ranks.shape
    r = ranks.sum(axis=0)
    s = float(((r - r.mean()) ** 2).sum())
    denom = m * m * (n**3 - n) - m * float(tie_sum)
    return 12.0 * s / denom if denom > 0 else float("nan")
