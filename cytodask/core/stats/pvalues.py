"""Two-sided p-values of normal and Student t statistics (NumPy or CuPy)."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from cytodask.core.xp import special


def two_sided_t_pvalue(t: Any, df: Any, xp: ModuleType) -> Any:
    """``2 · T_df(−|t|)``: scipy's ``_get_pvalue`` for a Student t statistic."""
    return 2.0 * special(xp, "stdtr")(df, -xp.abs(t))


def two_sided_normal_pvalue(z: Any, xp: ModuleType) -> Any:
    """``2 · Φ(−|z|)``: scipy's ``_get_pvalue`` for a standard normal statistic."""
    return 2.0 * special(xp, "ndtr")(-xp.abs(z))
