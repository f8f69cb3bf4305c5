"""The single-cell activity as checks 3 and 4 read it: z in row blocks, and per-block label codes.

Two inputs give the same blocks:

* an AnnData of cells × signatures (``X`` NumPy or Dask; its obs in memory), or
* the path of a single-cell activity stage's output (its Zarr group): ``X`` is read
  block by block, and a categorical obs column only as its integer codes, block by
  block, beside ``X`` — no per-cell table (cell names, labels) is held for the run,
  so memory does not grow with the cells. A non-categorical column of a store is read
  whole (that one column); cells flagged ``empty`` are NaN.

Labels are the column's values as strings, sorted, those that occur only (as
``pd.factorize(col.astype(str), sort=True)``); a missing value is the label ``"nan"``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anndata
import dask.array as da
import numpy as np
import pandas as pd
import zarr

CODE = np.int32


@dataclass(frozen=True)
class SingleCells:
    """A single-cell activity: ``z`` (Dask, cells × signatures, float64), ``signatures``, and its label source."""

    z: da.Array
    signatures: pd.Index
    source: Any  # a pd.DataFrame (obs in memory) or a zarr.Group (the store's obs)

    def labels(self, column: str) -> tuple[da.Array, np.ndarray]:
        """Codes of ``column`` (int32, −1 for none; row blocks of ``z``) and its sorted labels."""
        rows = self.z.chunks[0]
        if isinstance(self.source, pd.DataFrame):
            return _factorized(self.source[column], rows)
        elem = self.source[column]
        if elem.attrs.get("encoding-type") != "categorical":
            return _factorized(pd.Series(anndata.io.read_elem(elem)), rows)
        codes = da.from_zarr(elem["codes"]).rechunk((rows,))
        names = np.asarray(pd.Index(anndata.io.read_elem(elem["categories"])).astype(str), dtype=object)
        counts = da.bincount(codes.astype(np.int64) + 1, minlength=len(names) + 1).compute()
        used = np.flatnonzero(counts[1:]) if len(counts) > 1 else np.array([], dtype=np.int64)
        cand = np.concatenate([names[used], ["nan"] if counts[0] else []]).astype(object)
        labels = np.unique(cand.astype(str)).astype(object)
        # remap[c + 1]: label index of category c (c = −1: "nan" when present, else none)
        remap = np.full(len(names) + 1, -1, dtype=CODE)
        remap[used + 1] = np.searchsorted(labels.astype(str), names[used].astype(str))
        if counts[0]:
            remap[0] = np.searchsorted(labels.astype(str), "nan")
        return codes.map_blocks(_remap, remap, dtype=CODE), labels


def _remap(block: np.ndarray, remap: np.ndarray) -> np.ndarray:
    return remap[block.astype(np.int64) + 1]


def _factorized(values: pd.Series, rows: tuple[int, ...]) -> tuple[da.Array, np.ndarray]:
    codes, labels = pd.factorize(values.astype(str), sort=True)
    return da.from_array(codes.astype(CODE), chunks=(rows,)), np.asarray(labels, dtype=object)


def single_cells(single_cell: Any, columns: list[str]) -> SingleCells:
    """``single_cell`` (AnnData or activity-stage path) as :class:`SingleCells`; errors name the fix."""
    if single_cell is None:
        raise ValueError("no single-cell activity given: pass single_cell= (an activity AnnData of cells, or the "
                         "path of an activity stage run on the atlas store)")
    if isinstance(single_cell, (str, os.PathLike)):
        return _from_store(Path(single_cell), columns)
    if not isinstance(single_cell, anndata.AnnData):
        raise TypeError(f"single_cell must be an AnnData of cells × signatures or the path of a single-cell "
                        f"activity stage; got {type(single_cell).__name__}")
    _check_columns(columns, list(single_cell.obs.columns), "single-cell activity obs")
    x = single_cell.X
    z = x if isinstance(x, da.Array) else da.from_array(np.asarray(x), chunks=(max(len(x), 1), -1))
    return SingleCells(z.astype(np.float64), single_cell.var_names.astype(str), single_cell.obs)


def _check_columns(columns: list[str], available: list[str], where: str) -> None:
    missing = [c for c in columns if c not in available]
    if missing:
        raise ValueError(f"{where} lacks {missing}; available: {available}")


def _from_store(path: Path, columns: list[str]) -> SingleCells:
    try:
        root = zarr.open_group(str(path), mode="r")
        obs, x = root["obs"], root["X"]
    except (FileNotFoundError, KeyError, zarr.errors.GroupNotFoundError) as err:
        raise ValueError(f"{path} is not a single-cell activity stage output (a Zarr group with X and obs): "
                         f"{err}; pass the activity stage's folder (e.g. ResultStore(...).stage_path('sc'))") from err
    _check_columns(columns, list(obs.attrs.get("column-order", [])), f"single-cell activity obs at {path}")
    var = anndata.io.read_elem(root["var"])
    z = da.from_zarr(x).astype(np.float64)
    if "empty" in obs:
        empty = da.from_zarr(obs["empty"]).rechunk((z.chunks[0],))
        z = da.where(empty[:, None], np.nan, z)
    return SingleCells(z, var.index.astype(str), obs)
