"""Public functions of the differential family: input handling through the shared driver, then the kernels.

- :mod:`.ranksum`: :func:`wilcoxon`, :func:`wilcoxon_paired`;
- :mod:`.ttest`: :func:`ttest`;
- :mod:`.effects`: :func:`effect_sizes`, :func:`activity_diff`, :func:`median_diff`, :func:`cohens_d`,
  :func:`hedges_g`;
- :mod:`.table`: :func:`differential_table` (every stratum × feature in one batched call).
"""

from __future__ import annotations

from cytodask.differential.api.effects import activity_diff, cohens_d, effect_sizes, hedges_g, median_diff
from cytodask.differential.api.ranksum import wilcoxon, wilcoxon_paired
from cytodask.differential.api.table import TABLE_COLUMNS, differential_table
from cytodask.differential.api.ttest import ttest

__all__ = [
    "TABLE_COLUMNS",
    "activity_diff",
    "cohens_d",
    "differential_table",
    "effect_sizes",
    "hedges_g",
    "median_diff",
    "ttest",
    "wilcoxon",
    "wilcoxon_paired",
]
