"""Correlation of activities with donor variables: Pearson, Spearman, partial, binned means.

Inputs are features × samples (``a``: e.g. activity z-scores; ``b``: age,
BMI, blood biochemistry, metabolites…), as NumPy/CuPy arrays, pandas
DataFrames or Dask arrays; missing values are handled pairwise.
"""

from __future__ import annotations

from cytodask.core.stats.results import CorrelationResult
from cytodask.correlation.bins import AGE_BINS, BMI_BINS, BinnedMeans, bin_means
from cytodask.correlation.partial import partial
from cytodask.correlation.pearson import pearson
from cytodask.correlation.spearman import spearman

__all__ = [
    "AGE_BINS",
    "BMI_BINS",
    "BinnedMeans",
    "CorrelationResult",
    "bin_means",
    "partial",
    "pearson",
    "spearman",
]
