"""Lazy builders of the streamed checks: Dask collections of cell blocks in, small delayed partials out.

Every builder maps one kernel of :mod:`cytodask.validation.kernels` over the row
blocks of the single-cell activity (and counts), and merges the partials in a
fixed tree (:func:`cytodask.aggregation.graph.tree_reduce`), so the result is
the same for any blocking and memory holds a few blocks at a time. Nothing is
computed here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dask
import dask.array as da
import numpy as np
from dask.delayed import Delayed

from cytodask.aggregation.graph import tree_reduce
from cytodask.core.xp import array_module, to_device, to_numpy
from cytodask.validation import kernels as K

#: Inner bin edges of the median histogram (z-scores; outer bins are open): part of no result, only of speed.
MEDIAN_EDGES = np.linspace(-8.0, 8.0, 65)


def aligned(z: Any, rows: tuple[int, ...]) -> da.Array:
    """``z`` (cells × signatures; NumPy or Dask) as a Dask array with row blocks ``rows``."""
    arr = z if isinstance(z, da.Array) else da.from_array(np.asarray(z), chunks=(rows, -1))
    return arr.rechunk((rows, -1))


def _blocks(x: da.Array, codes: da.Array) -> list[tuple[Delayed, Delayed, int]]:
    """Per row block of ``x``: its block, the block of ``codes`` (rechunked to match) and its first row."""
    starts = np.cumsum((0, *x.chunks[0]))[:-1]
    cb = codes.rechunk((x.chunks[0],)).to_delayed().ravel()
    return [(d, c, int(a)) for d, c, a in zip(x.to_delayed().ravel(), cb, starts, strict=True)]


def _sum(*parts: Any) -> Any:
    return tuple(sum(p[i] for p in parts) for i in range(len(parts[0]))) if isinstance(parts[0], tuple) \
        else sum(parts)


def _concat(*parts: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(np.concatenate([to_numpy(p[i]) for p in parts]) for i in range(len(parts[0])))


def _host(fn: Any) -> Any:
    """A block task: the kernel on the block's array module, its result back on the host."""
    def run(*args: Any, **kw: Any) -> Any:
        out = fn(*args, **kw)
        return tuple(to_numpy(o) for o in out) if isinstance(out, tuple) else to_numpy(out)
    return run


def _xp_codes(block: Any, codes: np.ndarray) -> tuple[Any, Any]:
    xp = array_module(block)
    return xp, xp.asarray(codes)


def _moments_task(block: Any, codes: np.ndarray, n_groups: int) -> tuple[Any, Any]:
    xp, c = _xp_codes(block, codes)
    return K.group_sums_block(xp.asarray(block, dtype=xp.float64), c, n_groups, xp)


def _hist_task(block: Any, codes: np.ndarray, n_groups: int, edges: np.ndarray) -> Any:
    xp, c = _xp_codes(block, codes)
    return K.histogram_block(xp.asarray(block, dtype=xp.float64), c, n_groups, xp.asarray(edges), xp)


def _median_task(block: Any, codes: np.ndarray, edges: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple:
    xp, c = _xp_codes(block, codes)
    return K.median_bin_values_block(xp.asarray(block, dtype=xp.float64), c, xp.asarray(edges), xp.asarray(lo),
                                     xp.asarray(hi), xp)


def group_moments(z: da.Array, codes: da.Array, n_groups: int) -> Delayed:
    """Delayed ``(count, sum)`` per group × signature of the non-NaN single-cell values."""
    parts = [dask.delayed(_host(_moments_task), pure=True)(d, c, n_groups) for d, c, _ in _blocks(z, codes)]
    return tree_reduce(parts, _sum)


def group_medians(z: da.Array, codes: da.Array, n_groups: int, *, compute: Any) -> np.ndarray:
    """Exact median per group × signature in two passes over the blocks (histogram, then the median bins).

    ``compute`` computes delayed objects (e.g. ``dask.compute`` or a stage context's ``compute``).
    """
    blocks = _blocks(z, codes)
    hist = tree_reduce([dask.delayed(_host(_hist_task), pure=True)(d, c, n_groups, MEDIAN_EDGES)
                        for d, c, _ in blocks], _sum)
    (hist,) = compute(hist)
    lo, hi, offset, n = K.median_ranks(hist, np)
    parts = [dask.delayed(_host(_median_task), pure=True)(d, c, MEDIAN_EDGES, lo, hi) for d, c, _ in blocks]
    (vals,) = compute(tree_reduce(parts, _concat))
    return K.median_from_bins(vals[0], vals[1], offset, n, np)


def _auc_task(block: Any, counts: Any, codes: np.ndarray, positions: np.ndarray, start: int, k: int,
              seed: int, thresholds: np.ndarray | None) -> tuple:
    xp, c = _xp_codes(block, codes)
    z = xp.asarray(block, dtype=xp.float64)
    expressed = K.producer_flags_block(to_device(counts, xp), xp.asarray(positions), xp)
    bound = None if thresholds is None else xp.asarray(thresholds)
    return K.auc_candidates_block(z, expressed, c, start, k, seed, xp, thresholds=bound)


def _split_task(block: Any, counts: Any, codes: np.ndarray, positions: np.ndarray, n_groups: int) -> tuple:
    xp, c = _xp_codes(block, codes)
    z = xp.asarray(block, dtype=xp.float64)
    expressed = K.producer_flags_block(to_device(counts, xp), xp.asarray(positions), xp)
    return (*K.group_sums_block(z, c, n_groups, xp), *K.group_sums_block(xp.where(expressed, z, xp.nan), c,
                                                                         n_groups, xp))


def _smallest(k: int) -> Any:
    def merge(*parts: tuple[Any, ...]) -> tuple[Any, ...]:
        return K.smallest_keys(*_concat(*parts), k, np)
    return merge


def auc_candidates(z: da.Array, counts: da.Array, codes: da.Array, positions: Sequence[int], *, k: int,
                   seed: int, thresholds: np.ndarray | None = None) -> Delayed:
    """Delayed ``(group id, key, value)`` of the check-4 subsample: ≤ ``k`` cells per (type, signature, expressed).

    ``counts`` (cells × genes, CSR or dense blocks) must have the row blocks of ``z``;
    ``positions`` the column of each signature's producer gene (−1: absent, never expressed);
    ``thresholds`` per group id (:func:`~cytodask.validation.kernels.subsample_thresholds`) keep
    each block's part, and so every merge, near ``k`` per group in all rather than ``k`` per block.
    """
    pos = np.asarray(positions, dtype=np.int64)
    parts = [dask.delayed(_host(_auc_task), pure=True)(d, m, c, pos, a, k, seed, thresholds)
             for (d, c, a), m in zip(_blocks(z, codes), counts.to_delayed().ravel(), strict=True)]
    return tree_reduce(parts, _smallest(k))


def expressed_moments(z: da.Array, counts: da.Array, codes: da.Array, positions: Sequence[int],
                      n_groups: int) -> Delayed:
    """Delayed ``(count, sum)`` per cell type × signature over all cells, then over producer-expressing cells."""
    pos = np.asarray(positions, dtype=np.int64)
    parts = [dask.delayed(_host(_split_task), pure=True)(d, m, c, pos, n_groups)
             for (d, c, _), m in zip(_blocks(z, codes), counts.to_delayed().ravel(), strict=True)]
    return tree_reduce(parts, _sum)


def _nonzero_task(block: Any) -> Any:
    return K.nonzero_counts_block(block, array_module(block))


def nonzero_cells(counts: da.Array) -> Delayed:
    """Delayed number of cells with a count > 0 per gene."""
    return tree_reduce([dask.delayed(_host(_nonzero_task), pure=True)(d) for d in counts.to_delayed().ravel()], _sum)
