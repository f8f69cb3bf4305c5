"""Effect sizes of a two-group comparison per feature: the public functions (kernel: :mod:`..kernels.effects`).

Activity values are z-scores (ridge activity over permutation null), so the
location effect is a plain difference of means, ``activity_diff = x̄ − ȳ``;
it is not a log2 fold change.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from cytodask.core.stats import driver
from cytodask.core.stats.driver import TWO_SAMPLE_REASONS
from cytodask.core.stats.inputs import prepare_rows
from cytodask.core.stats.results import StatResult
from cytodask.differential.kernels.effects import EFFECT_OUTPUTS, effects_block


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
        (formulas in :func:`~cytodask.differential.kernels.effects_block`).
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
    """Cohen's d per feature: ``(x̄ − ȳ) / s_pooled`` (see :func:`~cytodask.differential.kernels.effects_block`)."""
    return _one("cohens_d", x, y, axis, min_n)


def hedges_g(x: Any, y: Any, *, axis: int = -1, min_n: int = 3) -> Any:
    """Hedges' g per feature: Cohen's d times ``1 − 3/(4(n₁+n₂) − 9)``.

    See :func:`~cytodask.differential.kernels.effects_block`.
    """
    return _one("hedges_g", x, y, axis, min_n)
