"""Public functions of the correlation family: input handling through the shared driver, then the kernels.

- :mod:`.pearson`, :mod:`.spearman`, :mod:`.partial`: :func:`pearson`, :func:`spearman`, :func:`partial`
  (features of ``a`` × features of ``b``, pairwise-complete);
- :mod:`.bins`: :func:`bin_means` (:class:`BinnedMeans`, :data:`AGE_BINS`, :data:`BMI_BINS`).
"""

from __future__ import annotations

from cytodask.correlation.api.bins import AGE_BINS, BMI_BINS, BinnedMeans, bin_means
from cytodask.correlation.api.partial import partial
from cytodask.correlation.api.pearson import pearson
from cytodask.correlation.api.spearman import spearman

__all__ = ["AGE_BINS", "BMI_BINS", "BinnedMeans", "bin_means", "partial", "pearson", "spearman"]
