"""Correlation of activities with donor variables: Pearson, Spearman, partial, binned means.

Inputs are features × samples (``a``: e.g. activity z-scores; ``b``: age,
BMI, blood biochemistry, metabolites…), as NumPy/CuPy arrays, pandas
DataFrames or Dask arrays; missing values are handled pairwise.

Layout (the family layout of ``CONTRIBUTING.md``):

- :mod:`~cytodask.correlation.kernels`: pure block kernels of blocks of features × samples and an
  array module ``xp`` (NumPy or CuPy), by concern (``pearson``, ``spearman``, ``partial``, ``bins``);
- :mod:`~cytodask.correlation.api`: the public functions; Pearson, Spearman and partial run their
  kernels through the shared row-block driver :mod:`cytodask.core.stats.driver` (in memory, or lazily
  for Dask input);
- :mod:`~cytodask.correlation.graph`: the lazy builder of binned means (the only lazy path that is not
  the shared driver);
- :mod:`~cytodask.correlation.stage`: :class:`CorrelationStage`; :mod:`~cytodask.correlation.report`:
  its report section.
"""

from __future__ import annotations

from cytodask.core.stats.results import CorrelationResult
from cytodask.correlation.api import AGE_BINS, BMI_BINS, BinnedMeans, bin_means, partial, pearson, spearman
from cytodask.correlation.stage import CorrelationStage

__all__ = [
    "AGE_BINS",
    "BMI_BINS",
    "BinnedMeans",
    "CorrelationResult",
    "CorrelationStage",
    "bin_means",
    "partial",
    "pearson",
    "spearman",
]
