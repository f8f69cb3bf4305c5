"""Local H5AD files, read block by block with h5py (never the whole matrix)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import anndata
import h5py
import numpy as np
import pandas as pd
import scipy.sparse as sp

from cytodask.ingest.base import DataSource


class LocalH5ADSource(DataSource):
    """An ``.h5ad`` file's X (or one layer) read in row blocks.

    Parameters
    ----------
    path
        The ``.h5ad`` file.
    layer
        Layer holding the counts (``None`` = X).

    CSR matrices are sliced through their ``indptr``; dense matrices by row
    ranges. CSC-encoded matrices are refused with a fix (row blocks of a CSC
    matrix need a column pass; re-save as CSR).
    """

    def __init__(self, path: str | os.PathLike[str], *, layer: str | None = None) -> None:
        self.path = Path(path)
        self.layer = layer
        if not self.path.exists():
            raise FileNotFoundError(f"input file {self.path} does not exist")
        if not h5py.is_hdf5(self.path):
            raise ValueError(
                f"{self.path} is not an HDF5/.h5ad file (supported here: .h5ad; other formats: see "
                "`cytodask convert --help`)"
            )
        with h5py.File(self.path, "r") as f:
            if "obs" not in f or "var" not in f:
                raise ValueError(f"{self.path} is HDF5 but not AnnData (.h5ad): it has no obs/var groups")
            elem = self._elem(f)
            enc = elem.attrs.get("encoding-type", "array" if isinstance(elem, h5py.Dataset) else "")
            if isinstance(enc, bytes):
                enc = enc.decode()
            self._encoding = str(enc)
            if self._encoding == "csr_matrix":
                self._shape = tuple(int(v) for v in elem.attrs["shape"])
                self._dtype = elem["data"].dtype
                self._nnz = int(elem["indptr"][-1])
            elif self._encoding == "csc_matrix":
                raise ValueError(
                    f"{self._where}: stored as CSC (column-major); blocks of cells need CSR. Re-save with "
                    "`adata.X = adata.X.tocsr()` (or the layer) and write_h5ad again"
                )
            elif isinstance(elem, h5py.Dataset) and elem.ndim == 2:
                self._shape = tuple(int(v) for v in elem.shape)
                self._dtype = elem.dtype
                self._nnz = None
            else:
                raise ValueError(f"{self._where}: unsupported matrix encoding {self._encoding!r}")
        self._obs: pd.DataFrame | None = None
        self._var: pd.DataFrame | None = None

    @property
    def _where(self) -> str:
        return f"{self.path}" + (f" layer {self.layer!r}" if self.layer else " X")

    def _elem(self, f: h5py.File) -> Any:
        if self.layer is None:
            if "X" not in f:
                raise ValueError(f"{self.path} has no X; pass --layer NAME (layers: {self.layers()})")
            return f["X"]
        layers = f.get("layers")
        if layers is None or self.layer not in layers:
            raise ValueError(
                f"{self.path} has no layer {self.layer!r}; layers in the file: {sorted(layers) if layers else []}"
            )
        return layers[self.layer]

    def layers(self) -> list[str]:
        with h5py.File(self.path, "r") as f:
            return sorted(f["layers"]) if "layers" in f else []

    @property
    def name(self) -> str:
        return str(self.path)

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
            with h5py.File(self.path, "r") as f:
                self._obs = anndata.io.read_elem(f["obs"])
        return self._obs

    def var(self) -> pd.DataFrame:
        if self._var is None:
            with h5py.File(self.path, "r") as f:
                self._var = anndata.io.read_elem(f["var"])
        return self._var

    def obs_columns(self) -> list[str]:
        with h5py.File(self.path, "r") as f:
            order = f["obs"].attrs.get("column-order")
        if order is None:
            return list(self.obs().columns)
        return [c.decode() if isinstance(c, bytes) else str(c) for c in order]

    def fingerprint_paths(self) -> dict[str, Path]:
        return {"source": self.path}

    def identity(self) -> dict[str, Any]:
        return {"source": "h5ad", "path": str(self.path.resolve()), "layer": self.layer}

    def read_rows(self, start: int, stop: int) -> sp.csr_matrix:
        n_obs, n_vars = self.shape
        if not 0 <= start <= stop <= n_obs:
            raise IndexError(f"rows [{start}, {stop}) outside 0..{n_obs}")
        with h5py.File(self.path, "r") as f:
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
