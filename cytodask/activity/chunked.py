"""Sparse in-memory input in fixed chunks of cells on the CPU thread pool (used by :func:`~cytodask.activity.infer`).

Two passes over chunks of cells (:func:`chunk_rows`), each chunk an independent
task on :func:`~cytodask.core.backend.ordered_map`:

1. :func:`normalised_chunks`: library sizes, the common genes, normalisation
   and each chunk's gene sums (the gene-mean pass);
2. the ridge per chunk (analytic), or one block for the permutation test,
   whose threads already run over permutation batches.

The chunk size depends on the number of cells only and partial sums are
added in order, so results do not depend on the number of threads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from cytodask.core.backend import ordered_map

from .preprocess import empty_samples, gene_sum_partial, library_size, normalise

CHUNK_ROWS = 2048  # most cells per chunk
MIN_CHUNKS = 8  # fewer cells are cut into this many chunks (of at least MIN_ROWS) so every thread has work
MIN_ROWS = 64


def chunk_rows(n_cells: int) -> int:
    """Cells per chunk: a function of the number of cells only, never of the threads."""
    return int(min(CHUNK_ROWS, max(MIN_ROWS, -(-n_cells // MIN_CHUNKS))))


@dataclass(frozen=True)
class Chunk:
    """Cells ``[start, stop)``: normalised common-gene CSR, library sizes (counts), empty flags, gene-mean partial.

    ``gene_sum`` and ``n_valid`` sum the normalised values per gene and count the
    non-empty cells over the chunk's centring cells (all, or the controls).
    """

    start: int
    stop: int
    norm: sp.csr_matrix
    totals: np.ndarray | None
    empty: np.ndarray
    gene_sum: np.ndarray
    n_valid: int


def row_view(mat: sp.csr_matrix, start: int, stop: int) -> sp.csr_matrix:
    """Rows ``[start, stop)`` of a CSR matrix sharing its value and index arrays (no copy)."""
    a, b = int(mat.indptr[start]), int(mat.indptr[stop])
    view = sp.csr_matrix((stop - start, mat.shape[1]), dtype=mat.dtype)
    # assigned after construction: the constructor copies views of much larger arrays (SciPy's _prune_array)
    view.data, view.indices, view.indptr = mat.data[a:b], mat.indices[a:b], mat.indptr[start : stop + 1] - a
    return view


def normalised_chunks(mat: sp.csr_matrix, genes: np.ndarray, *, input_kind: str, scale: float, threads: int,
                      control: np.ndarray | None = None, rows_per_chunk: int | None = None) -> list[Chunk]:
    """Pass 1: every chunk restricted to the common ``genes`` (positions), normalised, with its gene sums.

    ``control``: positions of the cells the genes are centred on (None: all cells).
    """
    step = chunk_rows(mat.shape[0]) if rows_per_chunk is None else rows_per_chunk
    keep = None
    if control is not None:
        keep = np.zeros(mat.shape[0], dtype=bool)
        keep[control] = True

    def one(start: int) -> Chunk:
        stop = min(start + step, mat.shape[0])
        rows = row_view(mat, start, stop)
        totals = library_size(rows, axis=1) if input_kind == "counts" else None
        block = rows[:, genes]  # a fresh copy, normalised in place
        empty = empty_samples(block, totals, input_kind)
        norm = normalise(block, totals, input_kind, scale, copy=False)
        if keep is None:
            gene_sum, n_valid = gene_sum_partial(norm, ~empty)
        else:
            gene_sum, n_valid = gene_sum_partial(norm[keep[start:stop]], ~empty[keep[start:stop]])
        return Chunk(start, stop, norm, totals, empty, gene_sum, n_valid)

    return list(ordered_map(one, range(0, mat.shape[0], step), threads))


def gene_sums(chunks: list[Chunk]) -> tuple[np.ndarray, int]:
    """Sum of normalised expression per gene and the number of non-empty centring cells, over all chunks."""
    total = np.zeros(chunks[0].norm.shape[1])
    for ch in chunks:  # in order: the sums do not depend on the threads
        total += ch.gene_sum
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
    parts = list(ordered_map(fn, chunks, threads))
    return tuple(np.concatenate([p[i] for p in parts], axis=-1) for i in range(len(parts[0])))
