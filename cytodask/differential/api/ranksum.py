"""Wilcoxon rank-sum (Mann–Whitney U) and signed-rank tests per feature: the public functions.

Input handling (:func:`cytodask.core.stats.inputs.prepare_rows`) and the
row-block driver (:mod:`cytodask.core.stats.driver`: NumPy in threads, Dask
lazily) run the kernels of :mod:`cytodask.differential.kernels.ranksum`.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from cytodask.core.stats import driver
from cytodask.core.stats.driver import TWO_SAMPLE_REASONS
from cytodask.core.stats.inputs import prepare_rows
from cytodask.core.stats.results import StatResult
from cytodask.differential.kernels.ranksum import RANKSUM_OUTPUTS, mannwhitney_block, signed_rank_block


def wilcoxon(
    x: Any, y: Any, *, axis: int = -1, min_n: int = 3, threads: int | None = None
) -> StatResult | pd.DataFrame:
    """Two-sided Wilcoxon rank-sum (Mann–Whitney U) test per feature.

    Parameters
    ----------
    x, y
        Group 1 (features × n₁) and group 2 (features × n₂) values: NumPy or
        CuPy arrays (any leading shape), pandas DataFrames (features on rows,
        matched by label), or Dask arrays (lazy result; samples are put in one
        chunk, features stay split).
    axis
        Axis of the samples (default last).
    min_n
        Groups with fewer non-NaN values give NaN and a reason (``"n_g1<3"``).
    threads
        Threads for NumPy input (default: all available cores); results do not
        depend on it. Dask input is spread by the Dask scheduler.

    Returns
    -------
    StatResult or DataFrame
        ``statistic`` (U of ``x``), ``pvalue``, ``n_g1``, ``n_g2`` (non-NaN
        counts) and ``reason`` (``""`` when computed); a DataFrame indexed by
        feature for DataFrame inputs.

    Notes
    -----
    Equal to ``scipy.stats.mannwhitneyu(x, y, axis=-1, method="asymptotic",
    use_continuity=True, alternative="two-sided", nan_policy="omit")`` for
    groups of at least ``min_n`` values (see :func:`~cytodask.differential.kernels.mannwhitney_block`).
    Ranks use average ties, NaNs are dropped per feature.
    """
    min_n = driver.check_min_n(min_n)
    prep = prepare_rows(x, y, axis=axis)
    return driver.run(mannwhitney_block, prep, RANKSUM_OUTPUTS, min_n=min_n, reasons=TWO_SAMPLE_REASONS,
                      threads=threads)


def wilcoxon_paired(
    x: Any, y: Any, *, axis: int = -1, min_n: int = 3, threads: int | None = None
) -> StatResult | pd.DataFrame:
    """Two-sided Wilcoxon signed-rank test of paired samples per feature.

    Parameters
    ----------
    x, y
        Paired values (features × n, matched by position along ``axis``): arrays,
        DataFrames or Dask arrays as in :func:`wilcoxon`.
    axis
        Axis of the samples (default last).
    min_n
        Features with fewer complete pairs give NaN and reason ``"n_pairs<3"``.
    threads
        Threads for NumPy input (default: all available cores); results do not
        depend on it. Dask input is spread by the Dask scheduler.

    Returns
    -------
    StatResult or DataFrame
        ``statistic`` (min(T⁺, T⁻)), ``pvalue``, ``n_g1 = n_g2`` (complete
        pairs) and ``reason``.

    Notes
    -----
    Equal to ``scipy.stats.wilcoxon(x - y, zero_method="wilcox",
    correction=False, alternative="two-sided", method="asymptotic",
    nan_policy="omit", axis=-1)`` (``method="approx"`` in older scipy): zero
    differences dropped, tie-corrected normal approximation, no continuity
    correction. scipy's default ``method="auto"`` would use the exact null
    distribution for small samples without ties; this kernel always uses the
    normal approximation (see :func:`~cytodask.differential.kernels.signed_rank_block`).
    """
    min_n = driver.check_min_n(min_n)
    prep = prepare_rows(x, y, axis=axis, paired=True)
    return driver.run(signed_rank_block, prep, RANKSUM_OUTPUTS, min_n=min_n, reasons=TWO_SAMPLE_REASONS,
                      threads=threads)
