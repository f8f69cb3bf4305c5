"""Means of features within bins of a continuous donor variable (age, BMI, …): the public function.

Input handling (bin edges, matching samples by label) here; the kernel is
:func:`cytodask.correlation.kernels.bin_means_block`, in memory or through the
lazy builder :func:`cytodask.correlation.graph.bin_means_graph` for Dask input.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from itertools import pairwise
from typing import Any, Literal

import numpy as np
import pandas as pd

from cytodask.core.stats.driver import check_min_n
from cytodask.core.xp import is_dask, to_numpy
from cytodask.correlation.graph import bin_means_graph
from cytodask.correlation.kernels.bins import bin_means_rows, bin_membership, bin_reasons

AGE_BINS: tuple[float, ...] = (0, 30, 40, 50, 60, 100)
BMI_BINS: tuple[float, ...] = (0, 18.5, 25, 30, 100)
NAMED_BINS: dict[str, tuple[float, ...]] = {"age": AGE_BINS, "bmi": BMI_BINS}


@dataclass(frozen=True)
class BinnedMeans:
    """Per-bin means (features × bins) with sample counts, weights and reasons.

    ``reason`` is ``""`` or ``"n<3"`` for bins with fewer than ``min_n``
    samples (their mean is NaN). DataFrames for DataFrame input.
    """

    mean: Any
    n: Any
    weight: Any
    reason: Any
    labels: list[str]

    def to_frame(self) -> pd.DataFrame:
        """Long table ``feature, bin, n, weight, mean, reason`` (computes Dask, copies CuPy)."""
        parts = {}
        for name in ("n", "weight", "mean", "reason"):
            v = getattr(self, name)
            v = v.compute() if is_dask(v) else v
            if not isinstance(v, pd.DataFrame):
                v = pd.DataFrame(np.asarray(to_numpy(v)), columns=self.labels)
            parts[name] = v
        index = parts["mean"].index.to_numpy()
        table = {
            "feature": np.repeat(index, len(self.labels)),
            "bin": np.tile(np.asarray(self.labels, dtype=object), len(index)),
        }
        table.update({k: v.to_numpy().ravel() for k, v in parts.items()})
        return pd.DataFrame(table)


def _labels(edges: Sequence[float]) -> list[str]:
    return [f"{lo:g}-{hi:g}" for lo, hi in pairwise(edges)]


def bin_means(
    values: Any,
    variable: Any,
    bins: Sequence[float] | Literal["age", "bmi"] = "age",
    *,
    weights: Any = None,
    min_n: int = 3,
) -> BinnedMeans:
    """Mean of each feature within bins of a per-sample variable.

    Parameters
    ----------
    values
        features × samples: array, DataFrame (samples in columns, matched to
        ``variable`` by label) or Dask array.
    variable
        One value per sample (e.g. donor age); NaN or out-of-range samples
        are left out.
    bins
        Bin edges, or ``"age"`` (0, 30, 40, 50, 60, 100) or ``"bmi"``
        (0, 18.5, 25, 30, 100). Bins are ``[lo, hi)``; the last is closed.
    weights
        Optional per-sample weights (e.g. cells per pseudobulk sample): the
        mean becomes ``Σ wᵢvᵢ / Σ wᵢ``; unweighted by default.
    min_n
        Bins with fewer non-missing samples give NaN and reason ``"n<3"``.

    Returns
    -------
    BinnedMeans
        ``mean``, ``n``, ``weight`` (Σw), ``reason`` (features × bins) and
        the bin ``labels`` (``"30-40"``…).
    """
    min_n = check_min_n(min_n)
    edges = NAMED_BINS[bins] if isinstance(bins, str) and bins in NAMED_BINS else bins
    if isinstance(edges, str) or len(edges) < 2 or np.any(np.diff(np.asarray(edges, dtype=float)) <= 0):
        raise ValueError(f"bins={bins!r}: give increasing edges (at least two) or one of {sorted(NAMED_BINS)}")
    labels = _labels(edges)
    index, values, variable, weights = _align(values, variable, weights)
    member = bin_membership(variable, edges, weights)
    if member.shape[0] != values.shape[-1]:
        raise ValueError(f"variable has {member.shape[0]} values for {values.shape[-1]} samples (columns of values)")
    if is_dask(values):
        return BinnedMeans(*bin_means_graph(values, member, min_n=min_n), labels)
    out = bin_means_rows(values, member, min_n=min_n)
    mean, n, wsum, reason = out[:, :, 0], out[:, :, 1].astype(np.int64), out[:, :, 2], bin_reasons(out[:, :, 3], min_n)
    if index is not None:
        frame = partial(pd.DataFrame, index=index, columns=labels)
        return BinnedMeans(frame(mean), frame(n), frame(wsum), frame(reason), labels)
    return BinnedMeans(mean, n, wsum, reason, labels)


def _align(values: Any, variable: Any, weights: Any) -> tuple[pd.Index | None, Any, np.ndarray, np.ndarray | None]:
    """Match a DataFrame's sample columns to labelled ``variable``/``weights``; host 1-D vectors."""
    index = None
    if isinstance(values, pd.DataFrame):
        samples = values.columns
        if isinstance(variable, pd.Series):
            variable = variable.reindex(samples)
        if isinstance(weights, pd.Series):
            weights = weights.reindex(samples)
        index, values = values.index, values.to_numpy(dtype=np.float64)
    var = np.asarray(to_numpy(variable), dtype=np.float64).ravel()
    w = None if weights is None else np.asarray(to_numpy(weights), dtype=np.float64).ravel()
    return index, values, var, w
