"""Binned-means kernels: the mean of each feature within bins of a per-sample variable (age, BMI, …)."""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np

from cytodask.core.xp import array_module, to_numpy


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


def bin_means_rows(values: Any, member: Any, *, min_n: int) -> Any:
    """:func:`bin_means_block` in the array module of ``values`` (a 1-D ``values`` is one feature)."""
    xp = array_module(values)
    return bin_means_block(values if values.ndim == 2 else values[None, :], to_numpy(member), xp=xp, min_n=min_n)


def bin_reasons(code: Any, min_n: int) -> np.ndarray:
    """Host reason strings of a block of codes: ``"n<{min_n}"`` where the bin has too few samples, else ``""``."""
    return np.where(np.asarray(to_numpy(code)) > 0, f"n<{min_n}", "").astype(object)
