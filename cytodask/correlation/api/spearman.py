"""Spearman rank correlation of every feature of ``a`` with every feature of ``b``: the public function.

Kernel: :func:`cytodask.correlation.kernels.spearman_block` (ranks over pairwise-complete samples).
"""

from __future__ import annotations

from typing import Any

from cytodask.core.stats import driver
from cytodask.core.stats.driver import CORRELATION_REASONS
from cytodask.core.stats.inputs import prepare_pairs
from cytodask.core.stats.inputs import top_variance as keep_top_variance
from cytodask.core.stats.results import CorrelationResult
from cytodask.correlation.kernels.pearson import CORRELATION_OUTPUTS
from cytodask.correlation.kernels.spearman import spearman_block


def spearman(
    a: Any, b: Any | None = None, *, min_n: int = 10, top_variance: int | None = None, threads: int | None = None
) -> CorrelationResult:
    """Spearman rank correlation of each feature of ``a`` with each feature of ``b``.

    Parameters
    ----------
    a, b, min_n, top_variance, threads
        As in :func:`cytodask.correlation.pearson`.

    Returns
    -------
    CorrelationResult
        ``rho``, ``pvalue``, ``n``, ``reason`` (features_a × features_b).

    Notes
    -----
    Each pair equals ``scipy.stats.spearmanr(x, y, nan_policy="omit")``: ranks
    with average ties over the pairwise-complete samples, p-value from the t
    distribution on ``n − 2`` degrees of freedom. Pairs whose rows miss
    different samples are re-ranked over their joint mask, so their cost grows
    with how many such pairs there are (see the module docstring).
    """
    min_n = driver.check_min_n(min_n, smallest=3, default=10)
    b = a if b is None else b
    prep = prepare_pairs(a, keep_top_variance(b, top_variance))
    return driver.run(spearman_block, prep, CORRELATION_OUTPUTS, min_n=min_n, reasons=CORRELATION_REASONS,
                      pairs=True, threads=threads)
