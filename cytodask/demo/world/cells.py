"""Cells of a world atlas: ``obs``, the hidden per-cell truth, and counts served as blocks.

Cells are drawn with the demo atlas's tile machinery
(:func:`cytodask.demo.cells.cell_labels`, :class:`cytodask.demo.counts._TileCache`),
so a block's labels and counts never depend on how the atlas was cut.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import scipy.sparse as sp
from numpy.typing import NDArray

from cytodask.demo.cells import cell_labels
from cytodask.demo.counts import _TileCache
from cytodask.demo.spec import check_int
from cytodask.demo.world.model import WorldModel, group_means, world_model
from cytodask.demo.world.spec import WorldSpec


def _index(start: int, stop: int) -> pd.Index:
    return pd.Index([f"cell_{i:09d}" for i in range(start + 1, stop + 1)])


def obs_frame(model: WorldModel, start: int, stop: int) -> pd.DataFrame:
    """``obs`` of cells ``[start, stop)``: the sample-level columns, then the label columns (coarse to fine).

    String columns are categoricals listing every level of the atlas (the same
    in every block); numbers stay numbers.
    """
    sample, kind = cell_labels(model, start, stop)
    d = model.design
    columns: dict[str, object] = {}
    for column in d.samples.columns:
        values = d.samples[column]
        if pd.api.types.is_numeric_dtype(values):
            columns[column] = values.to_numpy()[sample]
        else:
            categories = list(dict.fromkeys(values))
            codes = pd.Categorical(values, categories=categories).codes
            columns[column] = pd.Categorical.from_codes(codes[sample], categories=categories)
    for column in d.label_columns:
        categories = list(dict.fromkeys(d.types[column]))
        codes = pd.Categorical(d.types[column], categories=categories).codes
        columns[column] = pd.Categorical.from_codes(codes[kind], categories=categories)
    return pd.DataFrame(columns, index=_index(start, stop))


def hidden_frame(model: WorldModel, start: int, stop: int) -> pd.DataFrame:
    """Per-cell truths no label reveals: ``exhausted`` (bool), ``caf_subtype`` (str, "" if not a CAF)."""
    _, kind = cell_labels(model, start, stop)
    types = model.design.types
    return pd.DataFrame({"exhausted": types["exhausted"].to_numpy(dtype=bool)[kind],
                         "caf_subtype": types["caf_subtype"].to_numpy(dtype=object)[kind]},
                        index=_index(start, stop))


def internal_types(spec: WorldSpec, start: int = 0, stop: int | None = None) -> NDArray[np.intp]:
    """Internal type index of cells ``[start, stop)`` (rows of the design's type table)."""
    model = world_model(spec)
    return cell_labels(model, start, spec.n_cells if stop is None else stop)[1]


def cell_metadata(spec: WorldSpec) -> pd.DataFrame:
    """``obs`` of every cell of ``spec`` (O(n_cells) memory; the writer streams it instead)."""
    return obs_frame(world_model(spec), 0, spec.n_cells)


def truth_cells(spec: WorldSpec) -> pd.DataFrame:
    """The per-cell hidden truth of every cell (``truth_cells.csv``)."""
    return hidden_frame(world_model(spec), 0, spec.n_cells)


def generate_block(spec: WorldSpec, start: int, stop: int) -> sp.csr_matrix:
    """int32 UMI counts of cells ``[start, stop)`` as CSR (independent of block boundaries)."""
    if not (0 <= start <= stop <= spec.n_cells):
        raise ValueError(f"cells [start={start}, stop={stop}) are out of range: "
                         f"need 0 <= start <= stop <= n_cells={spec.n_cells}")
    return _TileCache(world_model(spec), group_means).rows(start, stop)


def iter_blocks(spec: WorldSpec, batch_size: int) -> Iterator[tuple[int, int, pd.DataFrame, sp.csr_matrix]]:
    """``(start, stop, obs_slice, counts)`` for consecutive blocks; one tile and one block in memory."""
    check_int("batch_size", batch_size, 1, "a positive number of cells per block")
    model = world_model(spec)
    cache = _TileCache(model, group_means)
    for start in range(0, spec.n_cells, batch_size):
        stop = min(start + batch_size, spec.n_cells)
        yield start, stop, obs_frame(model, start, stop), cache.rows(start, stop)
