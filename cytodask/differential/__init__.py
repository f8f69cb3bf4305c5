"""Differential statistics per feature: rank and t tests, effect sizes, FDR, stratified tables.

Kernels are pure functions of a block of features (rows) × samples and an
array module ``xp`` (NumPy or CuPy); the public functions accept arrays,
pandas DataFrames and Dask arrays (lazy in, lazy out).
"""

from __future__ import annotations

from cytodask.core.stats.fdr import fdr_bh
from cytodask.core.stats.results import StatResult
from cytodask.differential.effects import activity_diff, cohens_d, effect_sizes, hedges_g, median_diff
from cytodask.differential.table import differential_table
from cytodask.differential.ttest import ttest
from cytodask.differential.wilcoxon import wilcoxon, wilcoxon_paired

__all__ = [
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
