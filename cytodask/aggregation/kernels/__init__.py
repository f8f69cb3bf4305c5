"""Pure block kernels of aggregation (NumPy or CuPy via ``xp``).

Every function here takes one block (cells × genes, CSR or dense, NumPy/SciPy
or CuPy/cupyx) or block partials, and an array module ``xp``; none does I/O,
touches Dask or mutates its inputs. Sparse blocks are never densified whole:
per-group statistics are scattered from the stored values only.

- :mod:`~cytodask.aggregation.kernels.sums`: per-group (and weighted) sums;
- :mod:`~cytodask.aggregation.kernels.moments`: per-group moments as mergeable
  partials, Chan's merge, mean and variance;
- :mod:`~cytodask.aggregation.kernels.exact`: the exact variance of integer data
  (error-free transformations);
- :mod:`~cytodask.aggregation.kernels.normalize`: normalization of sums and of cells;
- :mod:`~cytodask.aggregation.kernels.partials`: a block's partial over its
  groups, merged in block order and finished into layers;
- :mod:`~cytodask.aggregation.kernels.csr`: canonical CSR and bounded row ranges.
"""

from __future__ import annotations

from cytodask.aggregation.kernels.exact import (
    exact_variance_mask,
    integer_m2,
    integer_variance,
    two_product,
    two_sum,
)
from cytodask.aggregation.kernels.moments import STATS, Stat, chan_merge, check_stats, finish_moments, group_moments
from cytodask.aggregation.kernels.normalize import Normalize, normalize_cells, normalize_sums
from cytodask.aggregation.kernels.sums import group_sums, weighted_group_sums

__all__ = [
    "STATS", "Normalize", "Stat", "chan_merge", "check_stats", "exact_variance_mask", "finish_moments",
    "group_moments", "group_sums", "integer_m2", "integer_variance", "normalize_cells", "normalize_sums",
    "two_product", "two_sum", "weighted_group_sums",
]
