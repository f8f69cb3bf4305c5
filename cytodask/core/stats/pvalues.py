"""Two-sided p-values of normal and Student t statistics (NumPy or CuPy), computed where the statistic lives.

``cupyx.scipy.special`` has ``ndtr`` and ``betainc`` but no ``stdtr`` (CuPy 13 and 14), so on the
GPU the Student t tail comes from the regularised incomplete beta function
(Abramowitz & Stegun 26.7.1; the identity scipy's own ``stdtr`` rests on):

.. math:: P(|T_\\nu| \\ge |t|) = I_{\\nu/(\\nu+t^2)}(\\nu/2, 1/2) = 1 - I_{t^2/(\\nu+t^2)}(1/2, \\nu/2)

:func:`t_pvalue_betainc` is that formula for any ``xp``: it runs on NumPy in the CPU tests, where it is
compared with ``scipy.stats.t.sf``, and on CuPy in :func:`two_sided_t_pvalue`. NumPy keeps scipy's
``stdtr`` (CPU results unchanged).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from cytodask.core.xp import special


def t_pvalue_betainc(t: Any, df: Any, xp: ModuleType) -> Any:
    """``P(|T_df| >= |t|)`` from the regularised incomplete beta function, on ``xp``'s device.

    For ``|t| >= 1`` the upper tail ``I_x(df/2, 1/2)`` with ``x = df/(df+t²)`` keeps small p-values
    relatively accurate; for ``|t| < 1`` (p ≥ 0.3 for every df) the complement
    ``1 - I_{1-x}(1/2, df/2)`` keeps ``1 - x = t²/(df+t²)`` exact where ``x`` would round to 1.
    The one rounding of ``x`` is amplified about ``df/2``-fold in the tail (``d log p / d log x ≈ df/2``),
    so the relative error is ≲ df · 1e-16 (measured: 2e-15 at df = 10, 8e-12 at df = 1e5).
    NaN ``t`` or ``df`` give NaN; ``t = ±inf`` gives 0; ``df = inf`` the normal tail.
    """
    t = xp.asarray(t, dtype=xp.float64)
    df = xp.asarray(df, dtype=xp.float64)
    betainc = special(xp, "betainc")
    t2 = t * t
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        denom = df + t2
        tail = betainc(df / 2.0, 0.5, df / denom)
        centre = 1.0 - betainc(0.5, df / 2.0, t2 / denom)
        p = xp.where(t2 < 1.0, centre, tail)
        p = xp.where(xp.isinf(t) & ~xp.isnan(df), 0.0, p)
        p = xp.where(xp.isinf(df) & (df > 0), 2.0 * special(xp, "ndtr")(-xp.abs(t)), p)
    return xp.clip(p, 0.0, 1.0)


def two_sided_t_pvalue(t: Any, df: Any, xp: ModuleType) -> Any:
    """``2 · T_df(−|t|)``: scipy's ``_get_pvalue`` for a Student t statistic (:func:`t_pvalue_betainc` on CuPy)."""
    if xp is np:
        return 2.0 * special(xp, "stdtr")(df, -xp.abs(t))
    return t_pvalue_betainc(t, df, xp)


def two_sided_normal_pvalue(z: Any, xp: ModuleType) -> Any:
    """``2 · Φ(−|z|)``: scipy's ``_get_pvalue`` for a standard normal statistic."""
    return 2.0 * special(xp, "ndtr")(-xp.abs(z))
