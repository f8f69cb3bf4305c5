"""One driver for the inputs of the aggregation functions.

:func:`as_blocks` turns an AnnData (in memory, backed ``.h5ad`` or Dask-backed),
an atlas store path or an opened :class:`~cytodask.ingest.atlas.Atlas` into a
Dask array of row blocks (one chunk along genes) plus obs/var tables, and
says whether the caller handed in something lazy (then results stay lazy).
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anndata
import dask
import dask.array as da
import h5py
import numpy as np
import pandas as pd
import scipy.sparse as sp
import zarr
from dask.highlevelgraph import HighLevelGraph

from cytodask.core.compat import renamed_kwargs
from cytodask.ingest.atlas import Atlas, open_atlas
from cytodask.ingest.base import RAW, anndata_matrix


class BlockInput:
    """Cells × genes as row blocks, with obs and var.

    Attributes
    ----------
    x
        Dask array, chunked along cells only (each chunk one block of cells).
    obs, var
        In-memory tables. An atlas store's obs is read on first use only, so a
        caller that needs the counts alone holds no per-cell table.
    lazy
        The input was lazy (Dask-backed): results should stay lazy too.
    """

    def __init__(self, x: da.Array, obs: pd.DataFrame | Callable[[], pd.DataFrame], var: pd.DataFrame,
                 lazy: bool) -> None:
        self.x, self._obs, self.var, self.lazy = x, obs, var, lazy

    @property
    def obs(self) -> pd.DataFrame:
        if callable(self._obs):
            self._obs = self._obs()
        return self._obs


def _frame(df: Any) -> pd.DataFrame:
    return df if isinstance(df, pd.DataFrame) else df.to_memory()  # anndata's lazy Dataset2D


def read_obs(path: str | os.PathLike[str]) -> pd.DataFrame:
    """obs of an atlas store, every column but without the cell names (a RangeIndex).

    Aggregation needs the label columns only; the cell names are the largest
    part of obs (~70 bytes a cell: ~450 MB for a 6.5M-cell atlas), so they are not read.
    """
    group = zarr.open_group(str(path), mode="r")["obs"]
    columns = list(group.attrs.get("column-order", []))
    n_obs = int(zarr.open_group(str(path), mode="r")["X"].attrs["shape"][0])
    return pd.DataFrame({c: anndata.io.read_elem(group[c]) for c in columns}, index=pd.RangeIndex(n_obs),
                        columns=columns)


def _read_backed(filename: str, key: str, start: int, stop: int) -> Any:
    """Rows ``[start, stop)`` of a backed ``.h5ad`` matrix (opened per task: thread/process safe)."""
    with h5py.File(filename, "r") as f:
        elem = f[key]
        if isinstance(elem, h5py.Dataset):
            return elem[start:stop]
        return anndata.io.sparse_dataset(elem)[start:stop]


def _backed(filename: str, key: str, shape: tuple[int, int], dtype: Any, sparse: bool, batch_size: int) -> da.Array:
    starts = list(range(0, shape[0], batch_size)) or [0]
    parts = []
    for a in starts:
        b = min(shape[0], a + batch_size)
        task = dask.delayed(_read_backed, pure=True)(filename, key, a, b)
        meta = sp.csr_matrix((0, 0), dtype=dtype) if sparse else np.empty((0, 0), dtype=dtype)
        parts.append(da.from_delayed(task, shape=(b - a, shape[1]), dtype=dtype, meta=meta))
    return da.concatenate(parts, axis=0)


def _rows(mat: Any, start: int, stop: int) -> Any:
    """Rows ``[start, stop)`` of an in-memory matrix; a zero-copy view for CSR (SciPy or CuPy)."""
    if not sp.issparse(mat) and not type(mat).__module__.startswith("cupyx"):
        return mat[start:stop]
    a, b = int(mat.indptr[start]), int(mat.indptr[stop])
    return type(mat)((mat.data[a:b], mat.indices[a:b], mat.indptr[start:stop + 1] - a),
                     shape=(stop - start, mat.shape[1]))


def _in_memory(mat: Any, batch_size: int) -> da.Array:
    """An in-memory matrix as a Dask array of row blocks; the matrix sits in the graph once, unhashed."""
    if getattr(mat, "format", "csr") != "csr":
        mat = mat.tocsr()  # row blocks need CSR (one copy)
    name = f"cells-{uuid.uuid4().hex}"
    starts = list(range(0, mat.shape[0], batch_size)) or [0]
    bounds = [(a, min(mat.shape[0], a + batch_size)) for a in starts]
    dsk: dict[Any, Any] = {name + "-source": mat}
    dsk.update({(name, i, 0): (_rows, name + "-source", a, b) for i, (a, b) in enumerate(bounds)})
    chunks = (tuple(b - a for a, b in bounds), (mat.shape[1],))
    return da.Array(HighLevelGraph.from_collections(name, dsk, dependencies=()), name, chunks, meta=_rows(mat, 0, 0))


def check_rows(x: da.Array) -> da.Array:
    """A 2-D cells × genes Dask matrix with known cell chunks, one chunk along genes (rechunked if needed)."""
    if x.ndim != 2:
        raise ValueError(f"expected a 2-D cells × genes matrix, got shape {x.shape}")
    if any(np.isnan(c) for c in x.chunks[0]):
        raise ValueError("the Dask matrix has unknown chunk sizes along cells; call x.compute_chunk_sizes() first")
    return x.rechunk({1: -1}) if x.numblocks[1] > 1 else x


@renamed_kwargs(block_cells="batch_size")
def as_blocks(data: Any, *, layer: str | None = None, batch_size: int = 10_000) -> BlockInput:
    """Normalise ``data`` to a :class:`BlockInput`.

    Parameters
    ----------
    data
        AnnData (in memory, backed, or with Dask ``X``/layers), a path to an
        atlas store (``cytodask convert``) or ``.h5ad`` (read backed), or an
        :class:`~cytodask.ingest.atlas.Atlas`.
    layer
        Use ``layers[layer]`` instead of ``X`` (AnnData only).
    batch_size
        Cells per block for in-memory and backed inputs (atlas stores and Dask
        arrays keep their own blocks).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size} must be ≥ 1")
    if isinstance(data, (str, os.PathLike)):
        path = Path(data)
        if path.suffix == ".h5ad":
            if not path.exists():
                raise FileNotFoundError(f"{path} does not exist")
            return as_blocks(anndata.read_h5ad(path, backed="r"), layer=layer, batch_size=batch_size)
        data = open_atlas(path)
    if isinstance(data, Atlas):
        if layer is not None:
            raise ValueError(f"layer={layer!r}: an atlas store keeps the counts in X; drop layer=, or convert "
                             "the source with `cytodask convert --layer NAME`")
        return BlockInput(data.X, functools.partial(read_obs, data.path), data.var, lazy=False)
    if not isinstance(data, anndata.AnnData):
        raise TypeError(f"data must be an AnnData (in memory, backed or Dask-backed), an atlas store path or an "
                        f"Atlas; got {type(data).__name__}. Wrap arrays as anndata.AnnData(X, obs=obs)")
    mat, var = anndata_matrix(data, layer)  # X, a layer, or layer="raw": .raw.X with .raw.var
    obs, var = _frame(data.obs), _frame(var)
    if isinstance(mat, da.Array):
        return BlockInput(check_rows(mat), obs, var, lazy=True)
    if data.isbacked and (layer is None or (layer == RAW and layer not in data.layers)):
        sparse = not isinstance(mat, h5py.Dataset)
        x = _backed(str(data.filename), "X" if layer is None else "raw/X", mat.shape, mat.dtype, sparse, batch_size)
        return BlockInput(x, obs, var, lazy=False)
    return BlockInput(_in_memory(mat, batch_size), obs, var, lazy=False)
