"""Loom files (HDF5: a dense genes × cells ``/matrix``, ``/layers``, ``/row_attrs``, ``/col_attrs``).

Blocks of cells are column slices of the dense matrix, read a bounded number
of columns at a time and turned into CSR of cells × genes, so no more than
:data:`MAX_DENSE_BYTES` of dense values are held at once.
"""

from __future__ import annotations

import html
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd
import scipy.sparse as sp
from natsort import natsorted

from cytodask.ingest.base import DataSource

MAX_DENSE_BYTES = 1 << 26
"""Dense values read per slice (64 MiB); a block of cells is assembled from such slices."""


@contextmanager
def _h5(path: Path) -> Iterator[h5py.File]:
    try:
        with h5py.File(path, "r") as f:
            yield f
    except OSError as err:
        raise ValueError(f"{path} looks truncated or corrupt ({err}); re-copy or re-export it") from None


def _decode(values: np.ndarray) -> np.ndarray:
    """Loom string attributes (bytes, XML-escaped by loompy) as Python strings; other types unchanged."""
    if values.dtype.kind not in "SO":
        return values
    return np.array(
        [html.unescape(v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)) for v in values], dtype=object
    )


def _categorize(frame: pd.DataFrame) -> pd.DataFrame:
    """String columns with repeated values become categoricals, naturally sorted (as ``strings_to_categoricals``)."""
    for col in frame.columns:
        if pd.api.types.infer_dtype(frame[col]) == "string":
            c = pd.Categorical(frame[col])
            if len(c.categories) < len(c):
                frame[col] = c.reorder_categories(natsorted(c.categories))
    return frame


class LoomSource(DataSource):
    """A Loom file's ``/matrix`` (or one layer) read in blocks of cells.

    Parameters
    ----------
    path
        The ``.loom`` file.
    layer
        Name under ``/layers`` holding the counts (``None`` or ``""``: ``/matrix``).

    Notes
    -----
    ``var`` is indexed by the ``Accession`` row attribute when it is present
    and unique, else by ``Gene`` (else ``0..n-1``); ``Gene`` is kept as the
    ``gene_symbols`` column. ``obs`` is indexed by ``CellID`` (else
    ``obs_names``, else ``0..n-1``). The other one-dimensional attributes
    become columns; string columns with repeated values become categoricals.
    Multi-dimensional attributes (embeddings) are not read. Values keep the
    stored dtype.
    """

    def __init__(self, path: str | os.PathLike[str], *, layer: str | None = None) -> None:
        self.path = Path(path)
        self.layer = layer or None
        if not self.path.exists():
            raise FileNotFoundError(f"Loom file {self.path} does not exist")
        if not h5py.is_hdf5(self.path):
            raise ValueError(f"{self.path} is not an HDF5/Loom file, or it is truncated or corrupt; re-copy it")
        with _h5(self.path) as f:
            m = f.get("matrix")
            if not isinstance(m, h5py.Dataset) or m.ndim != 2:
                raise ValueError(
                    f"{self.path} has no 2-D /matrix dataset, so it is not a Loom file (top-level keys: "
                    f"{sorted(f)[:10]}); for .h5ad use the H5AD source, for Cell Ranger .h5 the 10x source"
                )
            ds = self._dataset(f)
            if ds.shape != m.shape:
                raise ValueError(f"{self._where}: shape {ds.shape} differs from /matrix {m.shape}; the file is corrupt")
            n_genes, n_cells = (int(v) for v in ds.shape)
            self._dtype = ds.dtype
            self._col_chunk = int(ds.chunks[1]) if ds.chunks else 1
        self._shape = (n_cells, n_genes)
        self._obs: pd.DataFrame | None = None
        self._var: pd.DataFrame | None = None

    @property
    def _where(self) -> str:
        return f"{self.path}" + (f" layer {self.layer!r}" if self.layer else " /matrix")

    def _dataset(self, f: h5py.File) -> h5py.Dataset:
        if self.layer is None:
            return f["matrix"]
        layers = f.get("layers")
        if layers is None or self.layer not in layers:
            raise ValueError(f"{self.path} has no layer {self.layer!r}; layers in the file: {self.layers()} "
                             "(no layer: /matrix)")
        return layers[self.layer]

    def layers(self) -> list[str]:
        """Names under ``/layers`` (the main matrix is ``/matrix``, layer ``None``)."""
        with _h5(self.path) as f:
            return sorted(f["layers"]) if "layers" in f else []

    def _attrs(self, group: str, n: int) -> dict[str, np.ndarray]:
        with _h5(self.path) as f:
            g = f.get(group)
            if g is None:
                return {}
            return {k: _decode(d[:]) for k, d in g.items()
                    if isinstance(d, h5py.Dataset) and d.ndim == 1 and d.shape[0] == n}

    @staticmethod
    def _frame(attrs: dict[str, np.ndarray], index: np.ndarray | None, n: int) -> pd.DataFrame:
        names = pd.Index((np.arange(n) if index is None else index).astype(str), dtype=object)
        return _categorize(pd.DataFrame(attrs, index=names))

    # -- DataSource --------------------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return str(self.path)

    @property
    def shape(self) -> tuple[int, int]:
        return self._shape

    @property
    def dtype(self) -> np.dtype[Any]:
        return np.dtype(self._dtype)

    def obs(self) -> pd.DataFrame:
        if self._obs is None:
            attrs = self._attrs("col_attrs", self._shape[0])
            key = next((k for k in ("CellID", "obs_names") if k in attrs), None)
            self._obs = self._frame(attrs, attrs.pop(key) if key else None, self._shape[0])
        return self._obs

    def var(self) -> pd.DataFrame:
        if self._var is None:
            attrs = self._attrs("row_attrs", self._shape[1])
            if "Accession" in attrs and pd.Index(attrs["Accession"]).is_unique:
                index = attrs.pop("Accession")
            else:
                index = attrs.get("Gene", attrs.pop("var_names", None))
            attrs = {("gene_symbols" if k == "Gene" else k): v for k, v in attrs.items()}  # Gene stays a column
            self._var = self._frame(attrs, index, self._shape[1])
        return self._var

    def fingerprint_paths(self) -> dict[str, Path]:
        return {"source": self.path}

    def identity(self) -> dict[str, Any]:
        return {"source": "loom", "path": str(self.path.resolve()), "layer": self.layer}

    def read_rows(self, start: int, stop: int) -> sp.csr_matrix:
        n_cells, n_genes = self._shape
        if not 0 <= start <= stop <= n_cells:
            raise IndexError(f"rows [{start}, {stop}) outside 0..{n_cells}")
        per_slice = max(1, MAX_DENSE_BYTES // max(1, n_genes * self.dtype.itemsize))
        if per_slice > self._col_chunk:  # whole HDF5 chunks per read
            per_slice -= per_slice % self._col_chunk
        parts = []
        with _h5(self.path) as f:
            ds = self._dataset(f)
            for a in range(start, stop, per_slice):
                parts.append(sp.csr_matrix(ds[:, a : min(stop, a + per_slice)].T))
        if not parts:
            return sp.csr_matrix((0, n_genes), dtype=self.dtype)
        m = parts[0] if len(parts) == 1 else sp.csr_matrix(sp.vstack(parts, format="csr"))
        m.sort_indices()
        return m
