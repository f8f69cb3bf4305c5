"""The atlas store: AnnData's Zarr layout, X as CSR read lazily in cell blocks.

``anndata.read_zarr(STORE)`` opens a store with obs/var intact. Layout::

    STORE/zarr.json            encoding-type "anndata"; attrs["cytodask"] = block layout
    STORE/obs, STORE/var       AnnData dataframes (categoricals kept)
    STORE/X/indptr             int64 (n_obs + 1,), chunks of `block_cells` cells
    STORE/X/data, X/indices    (nnz,), chunks of `chunk_nnz` values (≤ 2**20, see convert.CHUNK_NNZ_MAX)

Block ``b`` is cells ``[b·B, (b+1)·B)``: its indptr lies in exactly one
indptr chunk and its values in the ≈1–2 data chunks starting at
``indptr[b·B]``. CSR values of a block are contiguous, so one block is read
as one range and never as the whole matrix.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import anndata
import dask.array as da
import numpy as np
import pandas as pd
import scipy.sparse as sp
import zarr
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph

from cytodask.core.anndata_zarr import layers_group, write_frame_parts
from cytodask.core.backend import Backend, resolve_backend
from cytodask.core.xp import CUPY_SPARSE_KINDS

ATTR = "cytodask"


def create_store(
    path: str | os.PathLike[str],
    *,
    obs: pd.DataFrame,
    var: pd.DataFrame,
    dtype: np.dtype[Any],
    block_cells: int,
    chunk_nnz: int,
    info: dict[str, Any],
) -> zarr.Group:
    """Create an empty atlas store (obs, var, resizable CSR X); overwrites what is there."""
    root = zarr.open_group(str(path), mode="a", zarr_format=3)
    for key in ("obs", "var", "X", "uns", "obsm", "varm", "obsp", "varp", "layers"):
        if key in root:
            del root[key]
    write_frame_parts(root, obs=obs, var=var)
    layers_group(root)
    n_obs, n_vars = len(obs), len(var)
    x = root.create_group("X")
    x.attrs.update({"encoding-type": "csr_matrix", "encoding-version": "0.1.0", "shape": [n_obs, n_vars]})
    x.create_array("data", shape=(0,), chunks=(chunk_nnz,), dtype=dtype)
    x.create_array("indices", shape=(0,), chunks=(chunk_nnz,), dtype=np.int32)
    indptr = x.create_array("indptr", shape=(n_obs + 1,), chunks=(block_cells,), dtype=np.int64)
    indptr[0:1] = np.zeros(1, dtype=np.int64)
    root.attrs[ATTR] = {
        "block_cells": int(block_cells),
        "n_blocks": math.ceil(n_obs / block_cells) if n_obs else 0,
        "chunk_nnz": int(chunk_nnz),
        **info,
    }
    return root


def _read_block(path: str, start: int, stop: int, n_vars: int) -> sp.csr_matrix:
    x = zarr.open_group(path, mode="r")["X"]
    indptr = x["indptr"][start : stop + 1]
    a, b = int(indptr[0]), int(indptr[-1])
    data = x["data"][a:b]
    indices = x["indices"][a:b]
    return sp.csr_matrix((data, indices, indptr - a), shape=(stop - start, n_vars))


def device_dtype(dtype: Any) -> np.dtype[Any]:
    """The value dtype of a store's blocks on the GPU: as stored when cupyx's sparse matrices take it, else float32.

    ``cupyx.scipy.sparse`` matrices hold only bool, float32, float64, complex64 and complex128
    values (CuPy 13 and 14: ``_compressed_sparse_matrix.__init__`` raises on others), while count
    stores are int32 (demo, 10x). Counts below 2**24 are exact in float32; every aggregation and
    activity kernel sums in float64.
    """
    dt = np.dtype(dtype)
    return dt if dt.char in CUPY_SPARSE_KINDS else np.dtype(np.float32)


def _to_cupy_csr(block: sp.csr_matrix, dtype: np.dtype[Any] | None = None) -> Any:
    """A host CSR block on the GPU, its values cast on the host first when CuPy cannot hold them."""
    import cupyx.scipy.sparse as cpsp

    dtype = device_dtype(block.dtype) if dtype is None else dtype
    if block.dtype != dtype:
        block = block.astype(dtype)
    return cpsp.csr_matrix(block)


def device_block(block: sp.csr_matrix, backend: str) -> Any:
    """A host block where ``backend`` computes: itself for ``"numpy"``, a CuPy CSR for ``"cupy"``.

    ``"auto"`` (no run chose a backend: :func:`~cytodask.core.backend.run_backend`) is resolved here,
    as the other stages' block tasks do: CuPy where this worker sees a GPU. Called inside the task, on
    the worker, so the client (e.g. a SLURM login node) needs no GPU.
    """
    if backend == "auto":
        backend = "numpy" if resolve_backend("auto") is np else "cupy"
    return _to_cupy_csr(block) if backend == "cupy" else block


@dataclass
class Atlas:
    """An opened atlas store: lazy X plus obs/var tables.

    Use :func:`open_atlas`.
    """

    path: Path
    n_obs: int
    n_vars: int
    block_cells: int
    dtype: np.dtype[Any]
    info: dict[str, Any]

    @property
    def n_blocks(self) -> int:
        return math.ceil(self.n_obs / self.block_cells) if self.n_obs else 0

    def block_bounds(self, b: int) -> tuple[int, int]:
        """Cells ``[start, stop)`` of block ``b``."""
        return b * self.block_cells, min(self.n_obs, (b + 1) * self.block_cells)

    @cached_property
    def obs(self) -> pd.DataFrame:
        return anndata.io.read_elem(zarr.open_group(str(self.path), mode="r")["obs"])

    @cached_property
    def var(self) -> pd.DataFrame:
        return anndata.io.read_elem(zarr.open_group(str(self.path), mode="r")["var"])

    def read_block(self, b: int) -> sp.csr_matrix:
        """Block ``b`` as a SciPy CSR matrix (eager)."""
        start, stop = self.block_bounds(b)
        return _read_block(str(self.path), start, stop, self.n_vars)

    def to_dask(self, backend: Backend = "numpy") -> da.Array:
        """X as a Dask array of CSR blocks, one chunk per block of cells.

        ``backend="cupy"`` gives CuPy CSR blocks (each block is read on the host
        and moved to the GPU of the worker that computes it); integer values are cast
        to float32 on the host first (:func:`device_dtype`), and the meta says so.
        """
        name = "atlas-X-" + tokenize(str(self.path.resolve()), self.n_obs, self.n_vars, self.block_cells, self.info)
        dsk = {
            (name, b, 0): (_read_block, str(self.path), *self.block_bounds(b), self.n_vars)
            for b in range(self.n_blocks)
        }
        chunks = (tuple(self.block_bounds(b)[1] - self.block_bounds(b)[0] for b in range(self.n_blocks)),
                  (self.n_vars,))
        meta = sp.csr_matrix((0, 0), dtype=self.dtype)
        x = da.Array(HighLevelGraph.from_collections(name, dsk, dependencies=()), name, chunks, meta=meta)
        xp = resolve_backend(backend)
        if xp is not np:
            import cupyx.scipy.sparse as cpsp

            dtype = device_dtype(self.dtype)
            x = x.map_blocks(_to_cupy_csr, dtype, dtype=dtype, meta=cpsp.csr_matrix((0, 0), dtype=dtype))
        return x

    @property
    def X(self) -> da.Array:
        """Lazy X with SciPy CSR blocks."""
        return self.to_dask("numpy")


def open_atlas(path: str | os.PathLike[str]) -> Atlas:
    """Open an atlas store written by ``cytodask convert``.

    Raises ``ValueError`` naming the fix when ``path`` is not a complete store.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"atlas store {path} does not exist; create it with `cytodask convert INPUT {path}`")
    try:
        root = zarr.open_group(str(path), mode="r")
    except Exception as e:
        raise ValueError(f"{path} is not a Zarr store: {e}") from None
    info = dict(root.attrs.get(ATTR, {}))
    if not info or "X" not in root:
        raise ValueError(f"{path} is not a cytodask atlas store (no X / block layout); convert it first")
    if info.get("failed"):
        raise ValueError(
            f"atlas store {path} is incomplete: its conversion stopped on bad input data ({info['failed']}); "
            "running convert again will stop the same way: fix the input (or pass --layer with the raw counts, "
            "or --allow-non-counts) and convert again"
        )
    if not info.get("complete", False):
        raise ValueError(
            f"atlas store {path} is incomplete (a conversion was interrupted); run `cytodask convert` "
            "again to resume it"
        )
    shape = root["X"].attrs["shape"]
    return Atlas(
        path=path,
        n_obs=int(shape[0]),
        n_vars=int(shape[1]),
        block_cells=int(info["block_cells"]),
        dtype=np.dtype(root["X"]["data"].dtype),
        info=info,
    )
