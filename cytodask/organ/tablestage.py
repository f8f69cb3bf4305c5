"""A stage whose result is a few named tables: run once on the client (its graphs go to the cluster).

Shared by the organ and cancer stage types. The stage computes a dict of
DataFrames in :meth:`TablesStage.tables` (streaming the atlas store or the
single-cell activity through Dask where it needs cells), writes each as an
element of its Zarr group (:func:`cytodask.core.tables.write_table`), makes
them durable and records the block, so a killed run recomputes the stage and
a finished one is skipped.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, ClassVar

import anndata
import dask.array as da
import pandas as pd
import zarr

from cytodask.core.atomic import fsync_tree
from cytodask.core.integrity import tree_files
from cytodask.core.stage import ExportOptions, ExportTable, Stage, StageContext
from cytodask.core.tables import read_table, write_table


def persist_tables(ctx: StageContext, tables: dict[str, pd.DataFrame]) -> dict[str, Any]:
    """Write every table into the stage's group (the first as ``table``), make them durable, record block 0."""
    root = zarr.open_group(str(ctx.path), mode="w", zarr_format=3)
    for name, table in tables.items():
        write_table(root, table, name=name)
    files = fsync_tree(ctx.path) if ctx.fsync else sorted(tree_files(ctx.path))
    return ctx.record(0, {"rows": {k: int(len(v)) for k, v in tables.items()}}, files=files)


def read_named(path: Path, options: ExportOptions, *, name: str) -> pd.DataFrame:
    """Export reader of table ``name`` of a tables stage."""
    return read_table(path, name)


def read_obs(path: str | Path) -> pd.DataFrame:
    """The obs of an AnnData Zarr store (the atlas store or an activity stage), without its matrix."""
    return anndata.io.read_elem(zarr.open_group(str(path), mode="r")["obs"])


def lazy_cells(path: str | Path) -> anndata.AnnData:
    """An AnnData over a store whose X is a lazy Dask array of row blocks (CSR or dense; never loaded whole).

    The atlas store's CSR matrix is read block by block (its blocks of cells);
    a dense X (single-cell activity) is read by its Zarr chunks of rows.
    """
    from cytodask.activity.stage import store_rows

    root = zarr.open_group(str(path), mode="r")
    obs, var = read_obs(path), anndata.io.read_elem(root["var"])
    x = root["X"]
    if isinstance(x, zarr.Group):
        n_rows, n_genes = (int(n) for n in x.attrs["shape"])
        rows = int(dict(root.attrs.get("cytodask", {})).get("block_cells", 10_000))
        lazy = store_rows(str(path), "X", n_rows, n_genes, rows, True)
    else:
        lazy = da.from_zarr(x)
    return anndata.AnnData(lazy, obs=obs, var=var)


class TablesStage(Stage):
    """Base of a stage writing named tables (declared in :attr:`TABLES`: name → (columns, description))."""

    where = "client"
    TABLES: ClassVar[dict[str, tuple[tuple[str, ...], str]]] = {}
    #: Export file stem of each table (default: ``<stage type>_<table>``; the first table: the stage type).
    def export_name(self, table: str) -> str:
        first = next(iter(self.TABLES))
        return self.type_name if table == first else f"{self.type_name}_{table}"

    def tables(self, ctx: StageContext) -> dict[str, pd.DataFrame]:  # pragma: no cover - abstract
        raise NotImplementedError

    def export_tables(self) -> list[ExportTable]:
        out = []
        for i, (name, (columns, description)) in enumerate(self.TABLES.items()):
            out.append(ExportTable(self.export_name(name), functools.partial(read_named, name="table" if i == 0
                                                                              else name), columns, description))
        return out

    def plan(self, ctx: StageContext) -> int:
        return 1

    def run_block(self, ctx: StageContext, index: int) -> dict[str, Any]:
        computed = self.tables(ctx)
        names = list(self.TABLES)
        ordered = {("table" if i == 0 else n): computed[n] for i, n in enumerate(names)}
        return persist_tables(ctx, ordered)

    def finalize(self, ctx: StageContext) -> dict[str, Any]:
        first = read_table(ctx.path)
        info: dict[str, Any] = {"rows": int(len(first))}
        if "qvalue" in first.columns:
            info["significant_q05"] = int((first["qvalue"] < 0.05).sum())
        return info
