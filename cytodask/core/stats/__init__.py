"""Statistics shared by the analysis families: ranks, p-values, BH FDR, the row-block driver, result types.

Kernels are pure functions of a block and ``xp`` (NumPy or CuPy); the driver
(:mod:`cytodask.core.stats.driver`) tiles them over rows, threads or graphs
them, and packages their outputs.
"""

from __future__ import annotations

from cytodask.core.stats.fdr import bh_rows, fdr_bh
from cytodask.core.stats.pvalues import two_sided_normal_pvalue, two_sided_t_pvalue
from cytodask.core.stats.ranks import rankdata
from cytodask.core.stats.results import CorrelationResult, StatResult

__all__ = [
    "CorrelationResult",
    "StatResult",
    "bh_rows",
    "fdr_bh",
    "rankdata",
    "two_sided_normal_pvalue",
    "two_sided_t_pvalue",
]
