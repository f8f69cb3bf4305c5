"""Benjamini–Hochberg false discovery rate, NaN-aware, within families."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

from cytodask.core.xp import array_module, reverse_cummin, to_numpy


def bh_rows(p: Any, xp: ModuleType) -> Any:
    """BH-adjusted p-values of each row of a 2-D block; NaN stays NaN and is not counted.

    With the ``m`` non-NaN p-values of a row sorted, ``p₍₁₎ ≤ … ≤ p₍ₘ₎``,
    ``q₍ᵢ₎ = min(1, min_{j ≥ i} p₍ⱼ₎ / (j/m))`` (Benjamini & Hochberg 1995),
    computed as ``statsmodels.stats.multitest.multipletests(method="fdr_bh")``
    does (division by ``j/m``, reverse cumulative minimum, clip at 1).
    """
    p = p.astype(xp.float64, copy=False)
    rows, m = p.shape
    if rows == 0 or m == 0:
        return p.copy()
    valid = ~xp.isnan(p)
    n = valid.sum(axis=-1)[:, None]
    order = xp.argsort(p, axis=-1)  # NaN last
    ps = xp.take_along_axis(p, order, axis=-1)
    rank = xp.arange(1, m + 1, dtype=xp.float64)[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        raw = ps / (rank / n)
    raw = xp.where(rank <= n, raw, xp.inf)
    q = xp.minimum(reverse_cummin(raw, xp), 1.0)
    out = xp.empty(rows * m, dtype=xp.float64)
    out[(order + (xp.arange(rows) * m)[:, None]).ravel()] = q.ravel()
    return xp.where(valid, out.reshape(rows, m), xp.nan)


def _bh_families(p: Any, labels: Any, xp: ModuleType) -> Any:
    """BH within each label of ``labels`` (1-D, same length as ``p``): one padded 2-D call."""
    codes, _ = pd.factorize(np.asarray(to_numpy(labels)).ravel(), use_na_sentinel=False)
    if codes.size != p.size:
        raise ValueError(f"families has {codes.size} labels for {p.size} p-values; give one label per p-value")
    if codes.size == 0:
        return p.astype(xp.float64)
    order = np.argsort(codes, kind="stable")
    counts = np.bincount(codes)
    col_sorted = np.arange(codes.size) - (np.cumsum(counts) - counts)[codes[order]]
    col = np.empty_like(col_sorted)
    col[order] = col_sorted
    rows, cols = xp.asarray(codes), xp.asarray(col)
    grid = xp.full((counts.size, int(counts.max())), xp.nan)
    grid[rows, cols] = p
    return bh_rows(grid, xp)[rows, cols]


def _check_range(p: Any, xp: ModuleType) -> None:
    bad = (p < 0) | (p > 1)
    if bool(bad.any()):
        raise ValueError("p-values must lie in [0, 1] (NaN allowed); got values outside that range")


def _fdr_array(p: Any, axis: int | None, families: Any, xp: ModuleType) -> Any:
    p = xp.asarray(p, dtype=xp.float64)
    _check_range(p, xp)
    if families is not None:
        return _bh_families(p.ravel(), families, xp).reshape(p.shape)
    if axis is None:
        return bh_rows(p.reshape(1, -1), xp).reshape(p.shape)
    moved = xp.moveaxis(p, axis, -1)
    q = bh_rows(moved.reshape(-1, moved.shape[-1]), xp).reshape(moved.shape)
    return xp.moveaxis(q, -1, axis)


def _fdr_block(block: Any, axis: int | None) -> Any:
    return _fdr_array(block, axis, None, array_module(block))


def fdr_bh(p: Any, *, axis: int | None = None, families: Any = None) -> Any:
    """Benjamini–Hochberg q-values (adjusted p-values), NaN-aware.

    Parameters
    ----------
    p
        p-values in [0, 1]: NumPy/CuPy array, pandas Series/DataFrame or Dask
        array. NaNs stay NaN and do not count in the number of tests ``m``.
    axis
        ``None`` (default): all p-values form one family. An integer: each
        slice along ``axis`` is its own family (e.g. ``axis=0`` of a features ×
        strata matrix adjusts each stratum's column separately).
    families
        Labels, one per p-value (same shape), naming the family of each; BH
        runs within each family. Needs ``axis=None``.

    Returns
    -------
    q-values of the same kind and shape as ``p``.

    Notes
    -----
    Within a family equal to ``statsmodels.stats.multitest.multipletests(p,
    method="fdr_bh")[1]`` on its non-NaN p-values; see :func:`bh_rows`.
    """
    if families is not None and axis is not None:
        raise ValueError("give either axis= or families=, not both; families= labels every p-value")
    if isinstance(p, pd.Series):
        fam = families.reindex(p.index) if isinstance(families, pd.Series) else families
        return pd.Series(_fdr_array(p.to_numpy(dtype=float), None, fam, np), index=p.index, name=p.name)
    if isinstance(p, pd.DataFrame):
        fam = families.to_numpy() if isinstance(families, pd.DataFrame) else families
        q = _fdr_array(p.to_numpy(dtype=float), axis, fam, np)
        return pd.DataFrame(q, index=p.index, columns=p.columns)
    if type(p).__module__.startswith("dask.array"):
        if families is not None:
            raise TypeError("families= is not supported for Dask p-values; compute them first (p.compute())")
        meta = array_module(p).empty((0,) * p.ndim, dtype=np.float64)
        p = p.rechunk(-1 if axis is None else {axis % p.ndim: -1})
        return p.map_blocks(_fdr_block, axis=axis, dtype=np.float64, meta=meta)
    return _fdr_array(p, axis, families, array_module(p))
