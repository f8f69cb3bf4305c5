"""Block kernels of the correlation family: pure functions of blocks of features × samples and ``xp``.

A correlation kernel takes a block of rows of ``a`` and one of ``b`` (NaN =
missing; ``z`` the covariates of the partial kernel) and returns
``fa × fb × 4`` of :data:`CORRELATION_OUTPUTS` (``rho, pvalue, n, code``;
the reason bits of :data:`cytodask.core.stats.driver.CORRELATION_REASONS`).
No I/O, no Dask, inputs are not modified.

- :mod:`.pearson`: Pearson, and the pieces the others share (complete and masked sums, t p-value, codes);
- :mod:`.spearman`: Spearman, re-ranking pairs that miss different samples;
- :mod:`.partial`: partial correlation given covariates;
- :mod:`.bins`: means within bins of a per-sample variable.
"""

from __future__ import annotations

from cytodask.correlation.kernels.bins import bin_means_block, bin_means_rows, bin_membership, bin_reasons
from cytodask.correlation.kernels.partial import design, paired_partial, partial_block
from cytodask.correlation.kernels.pearson import (
    CORRELATION_OUTPUTS,
    complete_corr,
    finish,
    has_nan,
    lower_median,
    masked_corr,
    pearson_block,
    t_pvalue,
)
from cytodask.correlation.kernels.spearman import paired_rank_corr, spearman_block

__all__ = [
    "CORRELATION_OUTPUTS",
    "bin_means_block",
    "bin_means_rows",
    "bin_membership",
    "bin_reasons",
    "complete_corr",
    "design",
    "finish",
    "has_nan",
    "lower_median",
    "masked_corr",
    "paired_partial",
    "paired_rank_corr",
    "partial_block",
    "pearson_block",
    "spearman_block",
    "t_pvalue",
]
