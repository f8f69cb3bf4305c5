"""H5AD files, read block by block with h5py (never the whole matrix).

:class:`_H5ADReader` holds the reading; :class:`LocalH5ADSource` opens a local
file, :class:`~cytodask.ingest.remote.RemoteH5ADSource` a URL read by byte ranges.
"""

from __future__ import annotations

import abc
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import anndata
import h5py
import numpy as np
import pandas as pd
import scipy.sparse as sp

from cytodask.ingest.base import RAW, DataSource
from cytodask.ingest.rowsort import RowSpill, Triples, csc_triples


class _H5ADReader(DataSource):
    """An AnnData HDF5 file's X (or one layer) read in row blocks, however the file is opened.

    Subclasses set ``self.layer``, implement :meth:`_open` and ``name``, and
    call :meth:`_inspect` at the end of ``__init__``; messages name the file by
    ``name``.

    CSR matrices are sliced through their ``indptr``; dense matrices by row
    ranges. CSC-encoded matrices (genes contiguous) are read once, in slices
    of ``csc_chunk_nnz`` values, into a row spill on disk under ``spill_dir``
    (:class:`~cytodask.ingest.rowsort.RowSpill`, about ``(8 + itemsize) · nnz``
    bytes) on the first :meth:`read_rows`; blocks of cells are then assembled
    from it. The spill lives as long as the source object, so a killed
    conversion that resumes repeats that O(nnz) pass.
    """

    layer: str | None
    spill_dir: str | os.PathLike[str] | None = None
    csc_chunk_nnz: int = 1 << 22
    _spill: RowSpill | None = None

    @abc.abstractmethod
    def _open(self) -> AbstractContextManager[h5py.File]:
        """The file open for reading, as a context manager (whether exiting closes it is the subclass's choice)."""

    def _inspect(self) -> None:
        """Read the matrix encoding, shape, dtype and nnz; raise with a fix when it cannot be read in row blocks."""
        with self._open() as f:
            if "obs" not in f or "var" not in f:
                raise ValueError(f"{self.name} is HDF5 but not AnnData (.h5ad): it has no obs/var groups")
            elem = self._elem(f)
            enc = elem.attrs.get("encoding-type", "array" if isinstance(elem, h5py.Dataset) else "")
            if isinstance(enc, bytes):
                enc = enc.decode()
            self._encoding = str(enc)
            if self._encoding in ("csr_matrix", "csc_matrix"):
                self._shape = tuple(int(v) for v in elem.attrs["shape"])
                self._dtype = elem["data"].dtype
                self._nnz = int(elem["indptr"][-1])
            elif isinstance(elem, h5py.Dataset) and elem.ndim == 2:
                self._shape = tuple(int(v) for v in elem.shape)
                self._dtype = elem.dtype
                self._nnz = None
            else:
                raise ValueError(f"{self._where}: unsupported matrix encoding {self._encoding!r}")
        if self._encoding == "csc_matrix":
            if self.csc_chunk_nnz < 1:
                raise ValueError(f"csc_chunk_nnz={self.csc_chunk_nnz}: must be ≥ 1")
            self._spill = RowSpill(self._csc_stream, self.shape, self.dtype, nnz_hint=self._nnz,
                                   spill_dir=self.spill_dir, name=self._where)
        self._obs: pd.DataFrame | None = None
        self._var: pd.DataFrame | None = None

    @property
    def _where(self) -> str:
        return f"{self.name}" + (f" layer {self.layer!r}" if self.layer else " X")

    def _elem(self, f: h5py.File) -> Any:
        if self.layer is None:
            if "X" not in f:
                raise ValueError(f"{self.name} has no X; pass layer= naming the counts (command line: --layer "
                                 f"NAME; layers: {self.layers()})")
            return f["X"]
        layers = f.get("layers")
        if layers is not None and self.layer in layers:
            return layers[self.layer]
        if self._is_raw(f):
            return f["raw"]["X"]
        raw = "; the file has raw/X too (layer='raw')" if "raw" in f and "X" in f["raw"] else ""
        raise ValueError(
            f"{self.name} has no layer {self.layer!r}; layers in the file: {sorted(layers) if layers else []}{raw}; "
            "pass layer= one of them, layer='raw' for AnnData's .raw (command line: --layer NAME), or layer=None for X"
        )

    def _is_raw(self, f: h5py.File) -> bool:
        """``layer="raw"`` and no layer has that name: AnnData's ``.raw`` (``raw/X`` with ``raw/var``)."""
        layers = f.get("layers")
        return (self.layer == RAW and not (layers is not None and RAW in layers)
                and "raw" in f and "X" in f["raw"] and "var" in f["raw"])

    def layers(self) -> list[str]:
        with self._open() as f:
            return sorted(f["layers"]) if "layers" in f else []

    @property
    def shape(self) -> tuple[int, int]:
        return self._shape  # type: ignore[return-value]

    @property
    def dtype(self) -> np.dtype[Any]:
        return np.dtype(self._dtype)

    def nnz_hint(self) -> int | None:
        return self._nnz

    def obs(self) -> pd.DataFrame:
        if self._obs is None:
            with self._open() as f:
                self._obs = anndata.io.read_elem(f["obs"])
        return self._obs

    def var(self) -> pd.DataFrame:
        if self._var is None:
            with self._open() as f:  # layer="raw": the genes of raw/X (raw/var), which may differ from var
                self._var = anndata.io.read_elem(f["raw"]["var"] if self._is_raw(f) else f["var"])
        return self._var

    def obs_columns(self) -> list[str]:
        with self._open() as f:
            order = f["obs"].attrs.get("column-order")
        if order is None:
            return list(self.obs().columns)
        return [c.decode() if isinstance(c, bytes) else str(c) for c in order]

    def _csc_stream(self) -> Iterator[Triples]:
        """Non-zeros of the CSC matrix as (cell, gene, value) chunks, read in bounded slices."""
        with self._open() as f:
            elem = self._elem(f)
            indices, data = elem["indices"], elem["data"]
            yield from csc_triples(elem["indptr"][:], lambda a, b: (indices[a:b], data[a:b]),
                                   chunk_nnz=int(self.csc_chunk_nnz))

    def close(self) -> None:
        """Remove the row spill of a CSC matrix, if one was built (a later read rebuilds it)."""
        if self._spill is not None:
            self._spill.close()

    def read_rows(self, start: int, stop: int) -> sp.csr_matrix:
        n_obs, n_vars = self.shape
        if not 0 <= start <= stop <= n_obs:
            raise IndexError(f"rows [{start}, {stop}) outside 0..{n_obs}")
        if self._spill is not None:
            return self._spill.read_rows(start, stop)
        with self._open() as f:
            elem = self._elem(f)
            if self._encoding == "csr_matrix":
                indptr = elem["indptr"][start : stop + 1].astype(np.int64)
                a, b = int(indptr[0]), int(indptr[-1])
                data = elem["data"][a:b]
                indices = elem["indices"][a:b]
                m = sp.csr_matrix((data, indices, indptr - a), shape=(stop - start, n_vars))
            else:
                m = sp.csr_matrix(elem[start:stop])
        if not m.has_sorted_indices:
            m.sort_indices()
        return m


class LocalH5ADSource(_H5ADReader):
    """An ``.h5ad`` file's X (or one layer) read in row blocks.

    Parameters
    ----------
    path
        The ``.h5ad`` file.
    layer
        Layer holding the counts (``None`` = X; ``"raw"`` = AnnData's ``.raw``: ``raw/X`` with
        ``raw/var``, unless a layer is named ``raw``).
    spill_dir
        Where a CSC-encoded matrix is re-blocked by rows (default: the system
        temporary directory).
    csc_chunk_nnz
        Values read per slice of a CSC-encoded matrix (bounds the memory of that pass).

    Each read opens the file anew (cheap locally; nothing is held open).
    """

    def __init__(self, path: str | os.PathLike[str], *, layer: str | None = None,
                 spill_dir: str | os.PathLike[str] | None = None, csc_chunk_nnz: int = 1 << 22) -> None:
        self.path = Path(path)
        self.layer = layer
        self.spill_dir = spill_dir
        self.csc_chunk_nnz = csc_chunk_nnz
        if not self.path.exists():
            raise FileNotFoundError(f"input file {self.path} does not exist")
        if not h5py.is_hdf5(self.path):
            raise ValueError(
                f"{self.path} is not an HDF5/.h5ad file (supported here: .h5ad; other formats: see "
                "`cytodask convert --help`)"
            )
        self._inspect()

    def _open(self) -> h5py.File:
        return h5py.File(self.path, "r")

    @property
    def name(self) -> str:
        return str(self.path)

    def fingerprint_paths(self) -> dict[str, Path]:
        return {"source": self.path}

    def identity(self) -> dict[str, Any]:
        return {"source": "h5ad", "path": str(self.path.resolve()), "layer": self.layer}
