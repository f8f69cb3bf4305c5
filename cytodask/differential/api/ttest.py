"""Student, Welch and paired t-tests per feature: the public function (kernel: :mod:`..kernels.ttest`)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from cytodask.core.stats import driver
from cytodask.core.stats.driver import TWO_SAMPLE_REASONS
from cytodask.core.stats.inputs import prepare_rows
from cytodask.core.stats.results import StatResult
from cytodask.differential.kernels.ttest import TTEST_OUTPUTS, TTestKind, ttest_block


def ttest(
    x: Any, y: Any, kind: TTestKind = "welch", *, axis: int = -1, min_n: int = 3, threads: int | None = None
) -> StatResult | pd.DataFrame:
    """Two-sided t-test per feature: Welch (default), Student or paired.

    Parameters
    ----------
    x, y
        Group 1 and group 2 (features × samples): arrays, DataFrames or Dask
        arrays as in :func:`cytodask.differential.wilcoxon`. For ``"paired"``
        the samples are matched by position.
    kind
        ``"welch"`` (unequal variances), ``"student"`` (pooled variance) or
        ``"paired"``.
    axis
        Axis of the samples (default last).
    min_n
        Fewer non-NaN values (pairs) than this give NaN and a reason.
    threads
        Threads for NumPy input (default: all available cores); results do not
        depend on it. Dask input is spread by the Dask scheduler.

    Returns
    -------
    StatResult or DataFrame
        ``statistic`` (t), ``pvalue``, ``df``, ``n_g1``, ``n_g2`` and ``reason``.

    Notes
    -----
    Equal to ``scipy.stats.ttest_ind(x, y, equal_var=False)`` (Welch),
    ``ttest_ind(x, y, equal_var=True)`` (Student) and ``ttest_rel(x, y)``
    (paired), each with ``axis=-1, nan_policy="omit"``; see :func:`~cytodask.differential.kernels.ttest_block`.
    """
    if kind not in ("welch", "student", "paired"):
        raise ValueError(f"kind={kind!r} is not one of 'welch', 'student', 'paired'")
    min_n = driver.check_min_n(min_n)
    prep = prepare_rows(x, y, axis=axis, paired=kind == "paired")
    return driver.run(ttest_block, prep, TTEST_OUTPUTS, min_n=min_n, reasons=TWO_SAMPLE_REASONS, kind=kind,
                      threads=threads)
