"""Means of features within bins of a continuous donor variable (age, BMI, …)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from itertools import pairwise
from types import ModuleType
from typing import Any, Literal

import numpy as np
import pandas as pd

from cytodask.core.stats.driver import check_min_n
from cytodask.core.xp import array_module, is_dask, to_numpy

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


def bin_membership(variable: np.ndarray, edges: Sequence[float], weights: np.ndarray | None) -> np.ndarray:
    """samples × bins weights: ``w`` where ``edges[j] ≤ v < edges[j+1]`` (last bin closed), else 0."""
    e = np.asarray(edges, dtype=np.float64)
    idx = np.searchsorted(e, variable, side="right") - 1
    idx = np.where(variable == e[-1], len(e) - 2, idx)
    inside = (idx >= 0) & (idx < len(e) - 1) & ~np.isnan(variable)
    w = np.ones(variable.shape) if weights is None else np.asarray(weights, dtype=np.float64)
    out = np.zeros((variable.size, len(e) - 1))
    rows = np.flatnonzero(inside & ~np.isnan(w))
    out[rows, idx[rows]] = w[rows]
    return out


def bin_means_block(values: Any, member: Any, *, xp: ModuleType, min_n: int = 3) -> Any:
    """Kernel: features × bins × 4 block of ``mean, n, weight, code``.

    With ``W`` the samples × bins weights and ``M`` the non-NaN indicators,
    ``mean = (V₀ W) / (M W)`` and ``n = M·1[W > 0]``: the weighted mean
    ``Σ wᵢvᵢ / Σ wᵢ`` over the bin's non-missing samples.
    """
    values = values.astype(xp.float64, copy=False)
    member = xp.asarray(member, dtype=xp.float64)
    m = ~xp.isnan(values)
    v0 = xp.where(m, values, 0.0)
    mf = m.astype(xp.float64)
    wsum = mf @ member
    n = mf @ (member > 0).astype(xp.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = (v0 @ member) / wsum
    code = (n < min_n) * 1.0
    return xp.stack([xp.where(code > 0, xp.nan, mean), n, wsum, code], axis=-1)


def _reasons(code: Any, min_n: int) -> np.ndarray:
    return np.where(np.asarray(to_numpy(code)) > 0, f"n<{min_n}", "").astype(object)


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
        return _lazy(values, member, min_n, labels)
    out = _block(values, member, min_n=min_n)
    mean, n, wsum, reason = out[:, :, 0], out[:, :, 1].astype(np.int64), out[:, :, 2], _reasons(out[:, :, 3], min_n)
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


def _lazy(values: Any, member: np.ndarray, min_n: int, labels: list[str]) -> BinnedMeans:
    """Dask graph: one kernel per block of features; the bin matrix is one shared chunk."""
    import dask.array as da

    values = values.rechunk({1: -1})
    meta = array_module(values).empty((0, 0, 0), dtype=np.float64)
    out = da.blockwise(partial(_block, min_n=min_n), "ijs", values, "ik", da.from_array(member, chunks=-1), "kj",
                       new_axes={"s": 4}, concatenate=True, dtype=np.float64, meta=meta)  # fmt: skip
    code = out[:, :, 3].map_blocks(_reasons, min_n=min_n, dtype=object, meta=np.empty((0, 0), dtype=object))
    return BinnedMeans(out[:, :, 0], out[:, :, 1].astype(np.int64), out[:, :, 2], code, labels)


def _block(values: Any, member: Any, *, min_n: int) -> Any:
    xp = array_module(values)
    return bin_means_block(values if values.ndim == 2 else values[None, :], to_numpy(member), xp=xp, min_n=min_n)
