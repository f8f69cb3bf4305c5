"""Differential statistics per feature: rank and t tests, effect sizes, FDR, stratified tables.

Layout (the family layout of ``CONTRIBUTING.md``):

- :mod:`~cytodask.differential.kernels`: pure block kernels of a block of features (rows) ×
  samples and an array module ``xp`` (NumPy or CuPy), by concern (``ranksum``, ``ttest``, ``effects``);
- :mod:`~cytodask.differential.api`: the public functions; they accept arrays, pandas DataFrames
  and Dask arrays (lazy in, lazy out) and run the kernels through the shared row-block driver
  :mod:`cytodask.core.stats.driver`;
- no ``graph`` module: the family's lazy path is entirely the shared driver (Dask input gives a lazy
  result of the same kernels);
- :mod:`~cytodask.differential.stage`: :class:`DifferentialStage`;
  :mod:`~cytodask.differential.export` and :mod:`~cytodask.differential.report`: its export table
  and report section.
"""

from __future__ import annotations

from cytodask.core.stats.fdr import fdr_bh
from cytodask.core.stats.results import StatResult
from cytodask.differential.api import (
    activity_diff,
    cohens_d,
    differential_table,
    effect_sizes,
    hedges_g,
    median_diff,
    ttest,
    wilcoxon,
    wilcoxon_paired,
)
from cytodask.differential.stage import DifferentialStage

__all__ = [
    "DifferentialStage",
    "StatResult",
    "activity_diff",
    "cohens_d",
    "differential_table",
    "effect_sizes",
    "fdr_bh",
    "hedges_g",
    "median_diff",
    "ttest",
    "wilcoxon",
    "wilcoxon_paired",
]
