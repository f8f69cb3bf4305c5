"""Effect sizes of a two-group comparison, one row per feature (NaN-aware).

Activity values are z-scores (ridge activity over permutation null), so the
location effect is a plain difference of means, ``activity_diff = x̄ − ȳ``;
it is not a log2 fold change.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

from cytodask.core.stats import driver
from cytodask.core.stats.driver import TWO_SAMPLE_REASONS
from cytodask.core.stats.inputs import prepare_rows
from cytodask.core.stats.ranks import median_of_sorted
from cytodask.core.stats.results import StatResult
from cytodask.differential.ttest import masked_moments

EFFECT_OUTPUTS = (
    "activity_diff",
    "median_g1",
    "median_g2",
    "median_diff",
    "cohens_d",
    "hedges_g",
    "n_g1",
    "n_g2",
    "code",
)


def nanmedian_rows(a: Any, xp: ModuleType) -> Any:
    """Median of the non-NaN values of each row (NaN for an all-NaN row)."""
    a = a.astype(xp.float64, copy=False)
    return median_of_sorted(xp.sort(a, axis=-1), (~xp.isnan(a)).sum(axis=-1), xp)  # NaN sorts last


def effects_block(x: Any, y: Any, *, xp: ModuleType, min_n: int = 3) -> Any:
    """Effect-size kernel; columns as :data:`EFFECT_OUTPUTS`.

    - ``activity_diff = x̄ − ȳ``; ``median_diff = median(x) − median(y)``.
    - Cohen's d: ``(x̄ − ȳ) / s_p`` with the pooled SD
      ``s_p = √(((n₁−1)s₁² + (n₂−1)s₂²) / (n₁+n₂−2))`` (Cohen 1988, eq. 2.5.2).
    - Hedges' g: ``d · (1 − 3 / (4(n₁+n₂) − 9))``, the small-sample bias
      correction of Hedges (1981) in the approximation of Hedges & Olkin (1985, eq. 5.4.10).

    Groups below ``min_n`` keep their means and medians; d and g become NaN.
    """
    n1, m1, v1 = masked_moments(x, xp)
    n2, m2, v2 = masked_moments(y, xp)
    med1, med2 = nanmedian_rows(x, xp), nanmedian_rows(y, xp)
    with np.errstate(divide="ignore", invalid="ignore"):
        sp = xp.sqrt(((n1 - 1.0) * v1 + (n2 - 1.0) * v2) / (n1 + n2 - 2.0))
        d = (m1 - m2) / sp
        g = d * (1.0 - 3.0 / (4.0 * (n1 + n2) - 9.0))
    code = (n1 < min_n) * 1.0 + (n2 < min_n) * 2.0
    d = xp.where(code > 0, xp.nan, d)
    g = xp.where(code > 0, xp.nan, g)
    code = code + ((sp == 0) & (code == 0)) * 4.0
    return xp.stack([m1 - m2, med1, med2, med1 - med2, d, g, n1, n2, code], axis=1)


def effect_sizes(
    x: Any, y: Any, *, axis: int = -1, min_n: int = 3, threads: int | None = None
) -> StatResult | pd.DataFrame:
    """Effect sizes of group ``x`` vs group ``y`` per feature.

    Parameters
    ----------
    x, y
        Group 1 and group 2 (features × samples): arrays, DataFrames or Dask
        arrays as in :func:`cytodask.differential.wilcoxon`.
    axis
        Axis of the samples (default last).
    min_n
        Cohen's d and Hedges' g need this many non-NaN values per group.
    threads
        Threads for NumPy input (default: all available cores); results do not
        depend on it. Dask input is spread by the Dask scheduler.

    Returns
    -------
    StatResult or DataFrame
        ``activity_diff``, ``median_g1``, ``median_g2``, ``median_diff``,
        ``cohens_d``, ``hedges_g``, ``n_g1``, ``n_g2``, ``reason``
        (formulas in :func:`effects_block`).
    """
    min_n = driver.check_min_n(min_n)
    prep = prepare_rows(x, y, axis=axis)
    return driver.run(effects_block, prep, EFFECT_OUTPUTS, min_n=min_n, reasons=TWO_SAMPLE_REASONS,
                      threads=threads)


def _one(name: str, x: Any, y: Any, axis: int, min_n: int) -> Any:
    return effect_sizes(x, y, axis=axis, min_n=min_n)[name]


def activity_diff(x: Any, y: Any, *, axis: int = -1) -> Any:
    """``mean(x) − mean(y)`` per feature over non-NaN values (z-score units, not log2FC)."""
    return _one("activity_diff", x, y, axis, 1)


def median_diff(x: Any, y: Any, *, axis: int = -1) -> Any:
    """``median(x) − median(y)`` per feature over non-NaN values."""
    return _one("median_diff", x, y, axis, 1)


def cohens_d(x: Any, y: Any, *, axis: int = -1, min_n: int = 3) -> Any:
    """Cohen's d per feature: ``(x̄ − ȳ) / s_pooled`` (see :func:`effects_block`)."""
    return _one("cohens_d", x, y, axis, min_n)


def hedges_g(x: Any, y: Any, *, axis: int = -1, min_n: int = 3) -> Any:
    """Hedges' g per feature: Cohen's d times ``1 − 3/(4(n₁+n₂) − 9)`` (see :func:`effects_block`)."""
    return _one("hedges_g", x, y, axis, min_n)
