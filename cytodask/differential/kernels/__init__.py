"""Block kernels of the differential family: pure functions of a block of features × samples and ``xp``.

Each takes the two groups' blocks ``x``, ``y`` (rows = features, NaN = missing)
and the array module ``xp`` (NumPy or CuPy) and returns one row per feature,
one column per output (the ``*_OUTPUTS`` names, ``code`` last: the reason
bits of :data:`cytodask.core.stats.driver.TWO_SAMPLE_REASONS`). No I/O, no
Dask, inputs are not modified.

- :mod:`.ranksum`: Mann–Whitney U (with group means and medians) and the signed-rank test;
- :mod:`.ttest`: Welch, Student and paired t-tests, and the masked moments they share;
- :mod:`.effects`: difference of means and medians, Cohen's d, Hedges' g.
"""

from __future__ import annotations

from cytodask.differential.kernels.effects import EFFECT_OUTPUTS, effects_block, nanmedian_rows
from cytodask.differential.kernels.ranksum import (
    RANKSUM_OUTPUTS,
    SUMMARY_OUTPUTS,
    mannwhitney_block,
    mannwhitney_summary_block,
    signed_rank_block,
)
from cytodask.differential.kernels.ttest import TTEST_OUTPUTS, TTestKind, masked_moments, ttest_block

__all__ = [
    "EFFECT_OUTPUTS",
    "RANKSUM_OUTPUTS",
    "SUMMARY_OUTPUTS",
    "TTEST_OUTPUTS",
    "TTestKind",
    "effects_block",
    "mannwhitney_block",
    "mannwhitney_summary_block",
    "masked_moments",
    "nanmedian_rows",
    "signed_rank_block",
    "ttest_block",
]
