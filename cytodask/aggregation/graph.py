"""Lazy Dask graphs of aggregation: block partials → ordered tree merge → layers.

Builders here only build: nothing is computed. Each block of cells becomes one
task (:func:`~cytodask.aggregation.kernels.partials.block_partial`), merged per gene
chunk in a tree of fixed shape (``split_every`` children, in block order), so
the result is deterministic for a given block layout and memory stays
bounded by a few block partials plus the (groups × gene chunk) result.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import pairwise
from typing import Any

import dask
import dask.array as da
import numpy as np
from dask.delayed import Delayed

from cytodask.aggregation.kernels import Normalize, normalize_sums
from cytodask.aggregation.kernels.partials import (
    block_partial,
    finish_layers,
    merge_ordered,
    merge_width,
    slice_genes,
)
from cytodask.core.backend import array_module


def _partial(block: Any, codes: np.ndarray, stats: tuple[str, ...]) -> dict[str, Any]:
    return block_partial(block, codes, stats, array_module(block))


def _merge(*parts: dict[str, Any]) -> dict[str, Any]:
    return merge_ordered(parts, array_module(parts[0]["sum"]))


def _finish(root: dict[str, Any], kept: np.ndarray, stats: tuple[str, ...]) -> dict[str, Any]:
    rows = np.searchsorted(root["groups"], kept)
    if not np.array_equal(root["groups"][np.minimum(rows, root["groups"].size - 1)], kept):
        raise RuntimeError("merged partials miss groups that have cells; the group codes and blocks disagree")
    return finish_layers(root, rows, stats, array_module(root["sum"]))


def tree_reduce(parts: Sequence[Delayed], merge: Callable[..., Any], *, split_every: int = 8) -> Delayed:
    """Reduce ``parts`` with ``merge(*children)`` in a fixed tree, keeping their order."""
    if split_every < 2:
        raise ValueError(f"split_every={split_every} must be ≥ 2")
    level = list(parts)
    while len(level) > 1:
        level = [dask.delayed(merge, pure=True)(*level[i:i + split_every])
                 for i in range(0, len(level), split_every)]
    return level[0]


def block_codes(x: da.Array, codes: np.ndarray) -> list[np.ndarray]:
    """``codes`` cut at the row-block boundaries of ``x``."""
    bounds = np.cumsum((0, *x.chunks[0]))
    return [codes[a:b] for a, b in pairwise(bounds)]


def aggregate_layers(x: da.Array, codes: np.ndarray, kept: np.ndarray, stats: tuple[str, ...],
                     *, split_every: int = 8) -> dict[str, da.Array]:
    """Lazy per-group layers (``counts``, and ``mean``/``var``/``count_nonzero`` as asked).

    Parameters
    ----------
    x
        Cells × genes, chunked along cells only.
    codes
        Group id of every cell (``-1`` dropped); host NumPy, length ``x.shape[0]``.
    kept
        Sorted group ids to output (rows of the layers, in this order).
    stats
        Canonical statistics (see :func:`~cytodask.aggregation.kernels.check_stats`).
    """
    n_groups = int(codes.max()) + 1 if codes.size else 0
    n_vars = x.shape[1]
    width = merge_width(n_vars, n_groups, stats)
    blocks = x.to_delayed().ravel()
    part = dask.delayed(_partial, pure=True)
    parts = [part(b, c, stats) for b, c in zip(blocks, block_codes(x, codes), strict=True)]
    xp = array_module(x)
    dtypes = {"counts": np.float64, "mean": np.float64, "var": np.float64, "count_nonzero": np.int64}
    cols: dict[str, list[da.Array]] = {k: [] for k in dtypes if k == "counts" or k in stats}
    for g0 in range(0, n_vars, width):
        g1 = min(n_vars, g0 + width)
        leaves = parts if (g0, g1) == (0, n_vars) else [dask.delayed(slice_genes, pure=True)(p, g0, g1)
                                                        for p in parts]
        done = dask.delayed(_finish, pure=True)(tree_reduce(leaves, _merge, split_every=split_every), kept, stats)
        for key, parts_of_key in cols.items():
            meta = xp.empty((0, 0), dtype=dtypes[key])
            parts_of_key.append(da.from_delayed(done[key], shape=(kept.size, g1 - g0), dtype=dtypes[key], meta=meta))
    return {k: da.concatenate(v, axis=1) for k, v in cols.items()}


def _normalize_block(counts: Any, totals: Any, method: Normalize) -> Any:
    xp = array_module(counts)
    return normalize_sums(counts, totals.ravel(), method, xp).astype(xp.float32)


def normalized(counts: da.Array, method: Normalize) -> da.Array:
    """X = normalized sums (float32), lazily: totals over all genes, then the formula per chunk."""
    totals = counts.sum(axis=1, keepdims=True)
    return da.map_blocks(_normalize_block, counts, totals, method, dtype=np.float32,
                         meta=array_module(counts).empty((0, 0), dtype=np.float32))
