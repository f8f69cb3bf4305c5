"""The ingest interface every source implements.

A :class:`DataSource` exposes its shape and metadata (:meth:`schema`,
:meth:`obs`, :meth:`var`) and random access to rows of counts
(:meth:`read_rows`), always as CSR blocks of cells — never the whole matrix.
The atlas-store conversion (:mod:`cytodask.ingest.conversion`) consumes only this
interface, so H5AD, 10x, Loom, remote and Census sources slot in unchanged.
"""

from __future__ import annotations

import abc
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

SYMBOL_COLUMNS = ("feature_name", "symbol", "gene_symbols", "gene_symbol", "gene_name", "features", "name")


@dataclass(frozen=True)
class Schema:
    """Shape and metadata layout of a source."""

    n_obs: int
    n_vars: int
    obs_columns: dict[str, str]
    var_columns: dict[str, str]
    dtype: str
    symbol_column: str | None


def detect_symbol_column(var: pd.DataFrame) -> str | None:
    """The var column holding gene symbols, if var names are not symbols themselves.

    Returns ``None`` when the index already looks like symbols (not ``ENSG…``).
    """
    index = var.index.astype(str)
    ensembl = index.str.match(r"^ENS[A-Z]*G\d+").mean() > 0.5 if len(index) else False
    if not ensembl:
        return None
    for col in SYMBOL_COLUMNS:
        if col in var.columns:
            return col
    return None


class DataSource(abc.ABC):
    """A readable single-cell count matrix with obs/var tables."""

    @property
    @abc.abstractmethod
    def name(self) -> str:
        """Human-readable identity (path or URL) used in messages."""

    @abc.abstractmethod
    def obs(self) -> pd.DataFrame:
        """Cell metadata (categoricals kept)."""

    @abc.abstractmethod
    def var(self) -> pd.DataFrame:
        """Gene metadata, indexed by var names."""

    @property
    @abc.abstractmethod
    def shape(self) -> tuple[int, int]:
        """(cells, genes)."""

    @property
    @abc.abstractmethod
    def dtype(self) -> np.dtype[Any]:
        """Dtype of the stored values."""

    @abc.abstractmethod
    def read_rows(self, start: int, stop: int) -> sp.csr_matrix:
        """Counts of cells ``[start, stop)`` as CSR (sorted indices)."""

    def obs_columns(self) -> list[str]:
        """Names of the obs columns (sources may answer without reading obs)."""
        return list(self.obs().columns)

    def fingerprint_paths(self) -> dict[str, Path]:
        """Local files whose content the source's data depends on."""
        return {}

    def identity(self) -> dict[str, Any]:
        """Parameters that identify what is read (goes into fingerprints)."""
        return {"source": type(self).__name__, "name": self.name}

    def nnz_hint(self) -> int | None:
        """Total stored values if known cheaply (used to size chunks)."""
        return None

    def schema(self) -> Schema:
        obs, var = self.obs(), self.var()
        n_obs, n_vars = self.shape
        return Schema(
            n_obs=n_obs,
            n_vars=n_vars,
            obs_columns={c: str(t) for c, t in obs.dtypes.items()},
            var_columns={c: str(t) for c, t in var.dtypes.items()},
            dtype=str(self.dtype),
            symbol_column=detect_symbol_column(var),
        )

    def to_store(self, store: str | os.PathLike[str], **kwargs: Any) -> Any:
        """Convert this source into the atlas store at ``store``: :func:`cytodask.ingest.convert` (same keywords).

        ``source.to_store("atlas.zarr", batch_size=10_000)`` is ``convert(source, "atlas.zarr", batch_size=10_000)``:
        resumable, and a no-op for an unchanged source. Returns the conversion's
        :class:`~cytodask.core.runner.StageReport`.
        """
        from cytodask.ingest.conversion import convert

        return convert(self, store, **kwargs)

    def iter_chunks(self, block_cells: int) -> Iterator[tuple[int, int, sp.csr_matrix]]:
        """Yield ``(start, stop, csr)`` blocks of ``block_cells`` cells, in order."""
        n = self.shape[0]
        for start in range(0, n, block_cells):
            stop = min(n, start + block_cells)
            yield start, stop, self.read_rows(start, stop)


RAW = "raw"  # layer="raw": AnnData's .raw.X with .raw.var (scanpy's place for the raw counts)


def anndata_matrix(adata: Any, layer: str | None) -> tuple[Any, pd.DataFrame]:
    """The matrix an AnnData's ``layer=`` names, and its var table.

    ``None``: ``X``; a layer name: ``layers[name]``; ``"raw"`` (when no layer has that name):
    ``adata.raw.X`` with ``adata.raw.var`` (its genes may differ from ``var``). Errors name the
    argument ``layer=`` and list what the AnnData holds.
    """
    holds = f"available layers: {list(adata.layers)}" + (
        "; adata.raw holds counts too (layer='raw')" if getattr(adata, "raw", None) is not None else "")
    if layer is None:
        if adata.X is None:
            raise ValueError(f"the AnnData has no X; pass layer= naming the counts ({holds})")
        return adata.X, adata.var
    if layer in adata.layers:
        return adata.layers[layer], adata.var
    if layer == RAW and getattr(adata, "raw", None) is not None:
        return adata.raw.X, adata.raw.var
    raise ValueError(f"layer {layer!r} does not exist; {holds}; use layer=None for X"
                     + ("" if layer != RAW else " (layer='raw' reads adata.raw, which this AnnData has not)"))


COUNT_MODES = ("strict", "warn", "off")


def check_counts(
    block: sp.csr_matrix, *, where: str, layers: Callable[[], list[str]] | None = None, mode: str = "strict",
    first_row: int = 0, layer: str | None = None,
) -> str | None:
    """Check that ``block`` holds raw counts.

    NaN/inf and negative values always raise (no count-based step can use
    them). Non-integer values raise under ``mode="strict"``; under
    ``"warn"`` the message is returned for the caller to warn once; under
    ``"off"`` nothing is checked. Messages name the place, the cells (rows
    counted from ``first_row``), the matrix read (``layer``, default X) and the fix.
    """
    if mode not in COUNT_MODES:
        raise ValueError(f"counts={mode!r}: expected one of {COUNT_MODES}")
    data = block.data
    if mode == "off" or data.size == 0:
        return None
    matrix = f"layer {layer!r}" if layer else "X"

    def bad_cells(mask: np.ndarray) -> str:
        rows = np.unique(np.searchsorted(block.indptr, np.flatnonzero(mask), side="right") - 1) + first_row
        more = f" and {rows.size - 5} more" if rows.size > 5 else ""
        return f"{rows.size} cell(s) (rows {rows[:5].tolist()}{more})"

    def fix() -> str:
        names = layers() if layers else None
        hint = f" (layers in this file: {names})" if names else ""
        return ("fix those cells in the input, or pass layer=NAME (command line: --layer NAME) with the raw "
                f"counts{hint}")

    if np.issubdtype(data.dtype, np.floating) and not np.isfinite(data).all():
        raise ValueError(f"{where}: {matrix} holds NaN or infinite values in {bad_cells(~np.isfinite(data))}; "
                         f"counts must be finite: {fix()}")
    if (data < 0).any():
        raise ValueError(
            f"{where}: {matrix} holds negative values (min {data.min():g}) in {bad_cells(data < 0)}, so it is "
            f"not raw counts (scaled or batch-corrected data?): {fix()}"
        )
    if np.issubdtype(data.dtype, np.floating) and not np.all(np.mod(data, 1) == 0):
        names = layers() if layers else None  # asked only when there is something to report
        hint = f"; layers in this file: {names}" if names else ""
        msg = (
            f"{where}: the matrix holds non-integer values (e.g. {data[np.mod(data, 1) != 0][0]:g}), so it "
            f"looks normalized, but raw counts are needed; pass layer=NAME (command line: --layer NAME) with the "
            f"raw-count layer, or layer='raw' for AnnData's .raw{hint}"
        )
        if mode == "strict":
            raise ValueError(msg)
        return msg
    return None
