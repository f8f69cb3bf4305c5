"""In-memory execution of the activity block kernels (used by :func:`~cytodask.activity.api.infer`).

Two passes over chunks of cells (:func:`chunk_rows`), each chunk an independent
task on :func:`~cytodask.core.backend.ordered_map`, running the kernels of
:mod:`~cytodask.activity.kernels` that the lazy graph and the stage run on their blocks:

1. :func:`normalized_chunks`: :func:`~cytodask.activity.kernels.prepare_block`
   and :func:`~cytodask.activity.kernels.gene_mean_partial` per chunk (kept in
   memory, so nothing is normalized twice), merged by :func:`~cytodask.activity.kernels.gene_means`;
2. :func:`~cytodask.activity.kernels.activity_block` per chunk (analytic), or on
   one stacked block for the permutation test, whose threads run over permutation batches.

Sparse NumPy input is cut into chunks; dense and CuPy input is one chunk (BLAS
and the device parallelise within it). The chunk size depends on the number of
cells only and partials are added in order, so results do not depend on the threads.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
import scipy.sparse as sp

from cytodask.core import spmm
from cytodask.core.backend import is_sparse, ordered_map, to_device

from .kernels import InputKind, gene_mean_partial, gene_means, prepare_block, prepared_activity
from .ridge import Method, RidgeStats

CHUNK_ROWS = 2048  # most cells per chunk
MIN_CHUNKS = 8  # fewer cells are cut into this many chunks (of at least MIN_ROWS) so every thread has work
MIN_ROWS = 64


def chunk_rows(n_cells: int) -> int:
    """Cells per chunk: a function of the number of cells only, never of the threads."""
    return int(min(CHUNK_ROWS, max(MIN_ROWS, -(-n_cells // MIN_CHUNKS))))


@dataclass(frozen=True)
class Chunk:
    """Cells ``[start, stop)``: normalized common genes, library sizes (counts), empty flags, gene-mean partial.

    ``gene_sum`` and ``n_valid`` sum the normalized values per gene and count the
    non-empty cells over the chunk's centring cells (all, or the controls).
    """

    start: int
    stop: int
    norm: Any
    totals: Any | None
    empty: Any
    gene_sum: Any
    n_valid: int


def row_view(mat: sp.csr_matrix, start: int, stop: int) -> sp.csr_matrix:
    """Rows ``[start, stop)`` of a CSR matrix sharing its value and index arrays (no copy)."""
    a, b = int(mat.indptr[start]), int(mat.indptr[stop])
    view = sp.csr_matrix((stop - start, mat.shape[1]), dtype=mat.dtype)
    # assigned after construction: the constructor copies views of much larger arrays (SciPy's _prune_array)
    view.data, view.indices, view.indptr = mat.data[a:b], mat.indices[a:b], mat.indptr[start : stop + 1] - a
    return view


def normalized_chunks(mat: Any, genes: np.ndarray, *, input_kind: InputKind, scale: float, threads: int,
                      control: np.ndarray | None = None, rows_per_chunk: int | None = None,
                      xp: ModuleType = np) -> list[Chunk]:
    """Pass 1: every chunk restricted to the common ``genes`` (positions), normalized, with its gene sums.

    ``control``: positions of the cells the genes are centred on (None: all cells).
    """
    n = mat.shape[0]
    step = n if rows_per_chunk is None and not (xp is np and is_sparse(mat)) else rows_per_chunk or chunk_rows(n)
    keep = None
    if control is not None:
        keep = np.zeros(n, dtype=bool)
        keep[control] = True

    def one(start: int) -> Chunk:
        stop = min(start + step, n)
        rows = row_view(mat, start, stop) if is_sparse(mat) else mat[start:stop]
        p = prepare_block(rows, genes, input_kind=input_kind, scale=scale, xp=xp)
        gene_sum, n_valid = gene_mean_partial(p, None if keep is None else keep[start:stop], xp=xp)
        return Chunk(start, stop, p.norm, p.totals, p.empty, gene_sum, n_valid)

    starts = range(0, n, max(step, 1))
    return list(ordered_map(one, starts, threads if len(starts) > 1 else 1))


def gene_sums(chunks: list[Chunk]) -> tuple[Any, int]:
    """Sum of normalized expression per gene and the number of non-empty centring cells, over all chunks."""
    total = chunks[0].gene_sum
    for ch in chunks[1:]:  # in order: the sums do not depend on the threads
        total = total + ch.gene_sum
    return total, sum(ch.n_valid for ch in chunks)


def stacked(chunks: list[Chunk]) -> Chunk:
    """All chunks as one (for the permutation test)."""
    if len(chunks) == 1:
        return chunks[0]
    totals = None if chunks[0].totals is None else np.concatenate([c.totals for c in chunks])
    gene_sum, n_valid = gene_sums(chunks)
    return Chunk(0, chunks[-1].stop, sp.vstack([c.norm for c in chunks], format="csr"), totals,
                 np.concatenate([c.empty for c in chunks]), gene_sum, n_valid)


def map_chunks(fn: Any, chunks: list[Chunk], threads: int) -> Any:
    """``fn(chunk)`` -> a tuple of k x cells arrays per chunk, joined along the cells in order."""
    if len(chunks) == 1:  # one block (dense, CuPy): BLAS or the device parallelise inside it
        return fn(chunks[0])
    parts = list(ordered_map(fn, chunks, threads))
    return tuple(np.concatenate([p[i] for p in parts], axis=-1) for i in range(len(parts[0])))


def run_in_memory(mat: Any, T: Any, genes: np.ndarray, *, control: np.ndarray | None, input_kind: InputKind,
                  scale: float, method: Method, perm_table: np.ndarray | None, batch_size: int | None,
                  threads: int, xp: ModuleType = np) -> tuple[RidgeStats, Any, bool]:
    """Both passes over an in-memory samples x genes matrix: ``(k x samples stats, empty flags, centred)``."""
    chunks = normalized_chunks(mat, genes, input_kind=input_kind, scale=scale, threads=threads, control=control,
                               xp=xp)
    gene_mean = None
    if input_kind != "differential":
        gene_mean = gene_means(((c.gene_sum, c.n_valid) for c in chunks), mat.shape[0], control=control is not None)
    common: dict[str, Any] = {"gene_mean": gene_mean, "input_kind": input_kind, "scale": scale, "xp": xp}
    if xp is np and is_sparse(mat):
        common["compiled"] = method == "permutation" or spmm.worth_compiling(
            float(sum(ch.norm.nnz for ch in chunks)) * T.shape[0])
    if method == "analytic":
        def one(ch: Chunk) -> tuple[Any, ...]:
            stats, empty = prepared_activity(T, ch, method="analytic", **common)
            return (*stats, empty)

        *parts, empty = map_chunks(one, chunks, threads)
        return RidgeStats(*parts), empty, gene_mean is not None
    whole = stacked(chunks)  # one block: the threads run over permutation batches
    del chunks  # the chunks' copies go; only the stacked block stays
    stats, empty = prepared_activity(T, whole, method="permutation", perm_table=to_device(perm_table, xp),
                                     batch_size=batch_size, threads=threads, **common)
    return stats, empty, gene_mean is not None
