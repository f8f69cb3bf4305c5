"""UMI counts of a synthetic atlas: negative-binomial draws per tile, served as blocks of any size.

A tile (``spec.tile_cells`` cells) is the unit of randomness and is always
generated whole (:mod:`cytodask.demo._nb`), so a block's counts never depend on
how it was cut; one tile is kept while consecutive blocks share it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from numpy.typing import NDArray

from cytodask.demo._nb import Workspace, sample_nb_csr
from cytodask.demo.cells import cell_labels, obs_frame
from cytodask.demo.spec import (
    DEPTH,
    DONOR_SD,
    HIERARCHY,
    L2_TYPES,
    L3_TYPES,
    LIBRARY_SD,
    MEAN_UMIS,
    STREAM_COUNTS,
    STREAM_DONOR_NOISE,
    SyntheticAtlasSpec,
    check_int,
    stream_rng,
)
from cytodask.demo.truth import AtlasModel, atlas_model

GroupMeans = Callable[[Any, NDArray[np.intp], NDArray[np.intp]], NDArray[np.float64]]


def _tile_counts(model: Any, tile: int, workspace: Workspace, group_means: GroupMeans | None = None) -> sp.csr_matrix:
    """Counts of one whole tile (the unit of randomness).

    ``group_means(model, samples, types)`` gives the mean per unit size factor
    of each (sample, type) pair (default: the demo atlas's :func:`_group_means`;
    the synthetic world passes its own model and means).
    """
    spec = model.spec
    t0, t1 = tile * spec.tile_cells, min((tile + 1) * spec.tile_cells, spec.n_cells)
    sample, l3 = cell_labels(model, t0, t1)
    groups, group_of_cell = np.unique(np.stack([sample, l3]), axis=1, return_inverse=True)
    means = (group_means or _group_means)(model, groups[0], groups[1])
    rng = stream_rng(spec, STREAM_COUNTS, tile)
    size_factors = np.exp(LIBRARY_SD * rng.standard_normal(t1 - t0))
    indptr, indices, data = sample_nb_csr(
        rng, means, group_of_cell.ravel(), size_factors, model.r, workspace=workspace
    )
    return sp.csr_matrix((data, indices, indptr), shape=(t1 - t0, spec.n_genes))


def _group_means(model: AtlasModel, samples: NDArray[np.intp], l3s: NDArray[np.intp]) -> NDArray[np.float64]:
    """``mu / s_c = L * lambda_l * pi_k * exp(delta_d) * 2**beta_dl`` for each (sample, L3 type) pair."""
    spec = model.spec
    means = np.empty((samples.shape[0], spec.n_genes))
    for s in np.unique(samples):
        donor_log = stream_rng(spec, STREAM_DONOR_NOISE, int(s)).normal(0.0, DONOR_SD, spec.n_genes)
        for i in np.flatnonzero(samples == s):
            l2 = L2_TYPES.index(HIERARCHY[L3_TYPES[l3s[i]]][0])
            log_mu = model.log_pi[l3s[i]] + donor_log
            for j in np.flatnonzero((model.planted_l2 == l2) & (model.planted_amp[:, s] != 0)):
                log_mu += model.planted_amp[j, s] * model.planted_log[j]
            means[i] = np.exp(log_mu, out=log_mu) * (MEAN_UMIS * DEPTH[L2_TYPES[l2]])
    return means


def _check_range(spec: SyntheticAtlasSpec, start: int, stop: int) -> None:
    if not (0 <= start <= stop <= spec.n_cells):
        raise ValueError(
            f"cells [start={start}, stop={stop}) are out of range: "
            f"need 0 <= start <= stop <= n_cells={spec.n_cells}"
        )


class _TileCache:
    """Generates tiles on demand, keeping the last one (blocks often share it)."""

    def __init__(self, model: Any, group_means: GroupMeans | None = None) -> None:
        self.model = model
        self.group_means = group_means
        self.workspace = Workspace(model.spec.n_genes)
        self.tile = -1
        self.counts: sp.csr_matrix | None = None

    def rows(self, start: int, stop: int) -> sp.csr_matrix:
        t_cells = self.model.spec.tile_cells
        parts = []
        for tile in range(start // t_cells, (stop - 1) // t_cells + 1 if stop > start else 0):
            if tile != self.tile:
                self.tile, self.counts = tile, _tile_counts(self.model, tile, self.workspace, self.group_means)
            t0 = tile * t_cells
            parts.append(self.counts[max(start, t0) - t0 : min(stop, t0 + t_cells) - t0])
        if not parts:
            return sp.csr_matrix((0, self.model.spec.n_genes), dtype=np.int32)
        return _vstack(parts, self.model.spec.n_genes)


def _vstack(parts: list[sp.csr_matrix], n_genes: int) -> sp.csr_matrix:
    """Row-stack CSR parts keeping int32 data and indices."""
    if len(parts) == 1:
        return parts[0]
    nnz = np.cumsum([0] + [p.nnz for p in parts])
    offsets = [p.indptr[1:].astype(np.int64, copy=False) + off for p, off in zip(parts, nnz[:-1], strict=False)]
    indptr = np.concatenate([np.zeros(1, np.int64), *offsets])
    data = np.concatenate([p.data for p in parts])
    indices = np.concatenate([p.indices.astype(np.int32, copy=False) for p in parts])
    return sp.csr_matrix((data, indices, indptr), shape=(len(indptr) - 1, n_genes))


def generate_block(spec: SyntheticAtlasSpec, start: int, stop: int) -> sp.csr_matrix:
    """int32 UMI counts of cells ``[start, stop)`` as CSR (independent of block boundaries)."""
    _check_range(spec, start, stop)
    return _TileCache(atlas_model(spec)).rows(start, stop)


def iter_blocks(
    spec: SyntheticAtlasSpec, batch_size: int
) -> Iterator[tuple[int, int, pd.DataFrame, sp.csr_matrix]]:
    """Yield ``(start, stop, obs_slice, counts)`` for consecutive blocks of ``batch_size`` cells.

    ``counts`` equals ``generate_block(spec, start, stop)`` and ``obs_slice``
    equals ``cell_metadata(spec).iloc[start:stop]``. Memory stays flat: one
    tile and one block are held at a time.
    """
    check_int("batch_size", batch_size, 1, "a positive number of cells per block")
    return _blocks(atlas_model(spec), batch_size)


def _blocks(model: AtlasModel, batch_size: int) -> Iterator[tuple[int, int, pd.DataFrame, sp.csr_matrix]]:
    cache = _TileCache(model)
    n_cells = model.spec.n_cells
    for start in range(0, n_cells, batch_size):
        stop = min(start + batch_size, n_cells)
        yield start, stop, obs_frame(model, start, stop), cache.rows(start, stop)
