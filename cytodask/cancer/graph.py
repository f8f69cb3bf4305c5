"""Lazy builders of the cancer family: the kernels mapped over blocks of cells, never computed here.

Expression and single-cell activity are read as blocks of rows (a Dask array's
row chunks, the atlas store's blocks of cells, or slices of an in-memory
matrix); each block task runs a kernel of :mod:`cytodask.cancer.kernels` with
the block's array module (NumPy, or CuPy with ``backend="cupy"``) and returns
host arrays: per-gene sums, per-cell scores, per-group sums.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dask
import dask.array as da
import numpy as np

from cytodask.cancer.kernels import gene_sums_block, group_sums_block, set_scores_block
from cytodask.core.xp import array_module, is_dask, to_device, to_numpy


def _module(block: Any, backend: str | None) -> Any:
    if backend == "cupy":
        import cupy

        return cupy
    return array_module(block)


def row_blocks(x: Any, batch_size: int) -> list[tuple[int, int, Any]]:
    """``(start, stop, block)`` of the rows of ``x``: Delayed row chunks of a Dask array, else slices."""
    if is_dask(x):
        x = x.rechunk({1: -1}) if x.ndim == 2 else x
        bounds = np.concatenate([[0], np.cumsum(x.chunks[0])]).astype(int)
        parts = x.to_delayed().reshape(len(x.chunks[0]), -1)[:, 0]
        return [(int(a), int(b), p) for a, b, p in zip(bounds[:-1], bounds[1:], parts, strict=True)]
    n = x.shape[0]
    return [(a, min(n, a + batch_size), x[a : min(n, a + batch_size)]) for a in range(0, n, batch_size)]


def _gene_sums(block: Any, rows: np.ndarray, normalize: str, backend: str | None) -> tuple[np.ndarray, int]:
    xp = _module(block, backend)
    if not rows.any():
        return np.zeros(block.shape[1]), 0
    s, n = gene_sums_block(to_device(block, xp), xp.asarray(rows), normalize, xp)
    return np.asarray(to_numpy(s)), n


def _merge_sums(parts: Sequence[tuple[np.ndarray, int]]) -> tuple[np.ndarray, int]:
    return np.sum([p[0] for p in parts], axis=0), int(sum(p[1] for p in parts))


def gene_means_graph(blocks: list[tuple[int, int, Any]], mask: np.ndarray, *, normalize: str,
                     backend: str | None = None) -> Any:
    """Delayed ``(gene sums, n cells)`` over the cells of ``mask`` (one partial per block, summed)."""
    parts = [dask.delayed(_gene_sums, pure=True)(b, mask[a:z], normalize, backend) for a, z, b in blocks]
    return dask.delayed(_merge_sums, pure=True)(parts)


def _scores(block: Any, rows: np.ndarray, sets: Any, normalize: str, backend: str | None) -> np.ndarray:
    xp = _module(block, backend)
    if not rows.any():
        return np.zeros((0, len(sets)))
    sets_dev = [(xp.asarray(g), xp.asarray(c)) for g, c in sets]
    return np.asarray(to_numpy(set_scores_block(to_device(block, xp), xp.asarray(rows), sets_dev, normalize, xp)))


def scores_graph(blocks: list[tuple[int, int, Any]], mask: np.ndarray, sets: list[tuple[np.ndarray, np.ndarray]],
                 *, normalize: str, backend: str | None = None) -> da.Array:
    """Lazy cells × sets scores of the cells of ``mask`` (in row order), one task per block."""
    shared = dask.delayed(sets, pure=True)  # one graph key for the index arrays
    parts = [da.from_delayed(dask.delayed(_scores, pure=True)(b, mask[a:z], shared, normalize, backend),
                             shape=(int(mask[a:z].sum()), len(sets)), dtype=np.float64)
             for a, z, b in blocks]
    return da.concatenate(parts, axis=0) if parts else da.zeros((0, len(sets)))


def _group_sums(block: Any, codes: np.ndarray, n_groups: int, backend: str | None) -> tuple[np.ndarray, np.ndarray]:
    xp = _module(block, backend)
    keep = codes >= 0
    if not keep.any():
        return np.zeros((n_groups, block.shape[1])), np.zeros(n_groups)
    sub = to_device(np.asarray(block)[keep] if xp is np else block[xp.asarray(keep)], xp)
    s, n = group_sums_block(sub, xp.asarray(codes[keep]), n_groups, xp)
    return np.asarray(to_numpy(s)), np.asarray(to_numpy(n))


def _merge_groups(parts: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    return np.sum([p[0] for p in parts], axis=0), np.sum([p[1] for p in parts], axis=0)


def group_means_graph(blocks: list[tuple[int, int, Any]], codes: np.ndarray, n_groups: int,
                      *, backend: str | None = None) -> Any:
    """Delayed ``(sums, counts)`` per group of the rows of ``blocks`` (codes: group per row, −1 none)."""
    parts = [dask.delayed(_group_sums, pure=True)(b, codes[a:z], n_groups, backend) for a, z, b in blocks]
    return dask.delayed(_merge_groups, pure=True)(parts)
