"""Export stage: AnnData (.h5ad, .zarr) and Parquet/CSV tables, each written atomically.

Files go to ``ROOT/exports/<stage name>/``; each is written to a temporary
name and renamed into place, so a reader (the web atlas loader) never sees a
half-written export.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import anndata
import dask
import h5py
import zarr

from cytodask.core.atomic import atomic_path
from cytodask.core.stage import Stage, StageContext
from cytodask.core.store import StageState
from cytodask.differential.stage import read_table
from cytodask.export.tables import activity_by_cell_type, differential_export

FORMATS = ("h5ad", "zarr", "parquet", "csv", "json")


def _export(state: StageState, fingerprint: str, out_dir: str, activity: str, differential: str | None,
            correlation: str | None, cell_type: str, signature_type: str, strata: list[str],
            formats: list[str]) -> dict[str, Any]:
    out = Path(out_dir)
    files: list[str] = []
    src = zarr.open_group(activity, mode="r")
    if "h5ad" in formats:
        with atomic_path(out / "activity.h5ad", fsync=state.fsync) as tmp:
            stream_h5ad(src, tmp)
        files.append("activity.h5ad")
    if "zarr" in formats:
        with atomic_path(out / "activity.zarr", fsync=state.fsync) as tmp:
            shutil.copytree(activity, tmp)  # already AnnData's Zarr layout: copy file by file
        files.append("activity.zarr")
    obs = anndata.io.read_elem(src["obs"])
    signatures = anndata.io.read_elem(src["var"]).index
    tables = {"activity_by_cell_type": activity_by_cell_type(obs, signatures, src["X"], cell_type, signature_type)}
    if differential:
        tables["differential"] = differential_export(read_table(differential), strata)
    if correlation:
        tables["correlations"] = read_table(correlation).drop(columns=["reason"], errors="ignore")
    for name, df in tables.items():
        for fmt in ("parquet", "csv"):
            if fmt in formats:
                with atomic_path(out / f"{name}.{fmt}", fsync=state.fsync) as tmp:
                    df.to_parquet(tmp, index=False) if fmt == "parquet" else df.to_csv(tmp, index=False)
                files.append(f"{name}.{fmt}")
    if "json" in formats:  # visualisation JSON for the web atlas: a heatmap matrix and records per table
        by_ct = tables["activity_by_cell_type"]
        heat = by_ct.pivot(index="cell_type", columns="signature", values="mean_activity")
        doc = {"signature_type": signature_type, "cell_types": heat.index.tolist(),
               "signatures": heat.columns.tolist(), "mean_activity": heat.round(4).to_numpy().tolist()}
        _write_json(out / "activity_heatmap.json", doc, state.fsync)
        files.append("activity_heatmap.json")
        for name, df in tables.items():
            if name != "activity_by_cell_type":
                _write_json(out / f"{name}.json", {"columns": list(df.columns),
                                                   "records": json.loads(df.to_json(orient="records"))}, state.fsync)
                files.append(f"{name}.json")
    root = zarr.open_group(str(state.path), mode="w", zarr_format=3)
    root.attrs["files"] = [str(out / f) for f in files]
    state.record_block(0, fingerprint, {"block": 0, "files": files})
    return {"block": 0}


def stream_h5ad(src: zarr.Group, dest: Path, *, chunk_rows: int = 65_536) -> None:
    """Write the dense AnnData Zarr group ``src`` as ``.h5ad``, copying X and layers by row chunks.

    Memory holds one chunk of rows (plus obs/var), whatever the number of cells.
    """
    with h5py.File(dest, "w") as f:
        f.attrs["encoding-type"] = "anndata"
        f.attrs["encoding-version"] = "0.1.0"
        for key in ("obs", "var", "uns", "obsm", "varm", "obsp", "varp"):
            anndata.io.write_elem(f, key, anndata.io.read_elem(src[key]) if key in src else {})
        layers = f.create_group("layers")
        layers.attrs["encoding-type"] = "dict"
        layers.attrs["encoding-version"] = "0.1.0"
        arrays = [("X", src["X"])] + [(f"layers/{k}", v) for k, v in src["layers"].arrays()] if "layers" in src \
            else [("X", src["X"])]
        for name, arr in arrays:
            rows = max(1, min(arr.shape[0], chunk_rows))
            chunks = (rows, arr.shape[1]) if arr.shape[0] else None
            ds = f.create_dataset(name, shape=arr.shape, dtype=arr.dtype, chunks=chunks)
            ds.attrs["encoding-type"] = "array"
            ds.attrs["encoding-version"] = "0.2.0"
            for a in range(0, arr.shape[0], rows):
                ds[a : a + rows] = arr[a : a + rows]


def _write_json(path: Path, doc: Any, fsync: bool) -> None:
    with atomic_path(path, fsync=fsync) as tmp:
        tmp.write_text(json.dumps(_clean(doc), allow_nan=False))


def _clean(o: Any) -> Any:
    """NaN/inf → null (JSON has no NaN; browsers reject it)."""
    if isinstance(o, float):
        return o if o == o and abs(o) != float("inf") else None
    if isinstance(o, list):
        return [_clean(v) for v in o]
    if isinstance(o, dict):
        return {k: _clean(v) for k, v in o.items()}
    return o


class ExportStage(Stage):
    """Write the activity AnnData and the result tables for the web atlas.

    Parameters
    ----------
    inputs
        The activity stage first, then the stages named by ``differential`` / ``correlation``.
    differential, correlation
        Names of a differential and a correlation stage among ``inputs`` (optional).
    cell_type
        obs column of the activity samples used for the by-cell-type table.
    signature_type
        Label for the tables (``CytoSig``, ``SecAct``).
    strata
        Stratum columns to keep in the differential table.
    formats
        Any of ``h5ad``, ``zarr``, ``parquet``, ``csv``, ``json`` (visualisation JSON:
        ``activity_heatmap.json`` = cell types × signatures matrix, and one
        ``{columns, records}`` file per table; NaN written as ``null``).
    """

    version = "1"

    def __init__(self, name: str, *, inputs: tuple[str, ...], cell_type: str, signature_type: str = "CytoSig",
                 differential: str | None = None, correlation: str | None = None,
                 strata: list[str] | None = None, formats: list[str] | None = None) -> None:
        super().__init__(name, inputs=inputs)
        named = [n for n in (differential, correlation) if n]
        stray = [n for n in named if n not in inputs[1:]]
        if not inputs or stray:
            raise ValueError(f"stage {name!r}: inputs must be the activity stage followed by the stages named in "
                             f"differential/correlation; {stray} not among inputs {list(inputs)}")
        self.differential, self.correlation = differential, correlation
        formats = list(formats or ["h5ad", "parquet"])
        bad = [f for f in formats if f not in FORMATS]
        if bad:
            raise ValueError(f"stage {name!r}: unknown format(s) {bad}; choose from {list(FORMATS)}")
        self.cell_type, self.signature_type = cell_type, signature_type
        self.strata, self.formats = list(strata or []), formats

    def params(self) -> dict[str, Any]:
        return {"cell_type": self.cell_type, "signature_type": self.signature_type, "strata": self.strata,
                "formats": self.formats, "differential": self.differential, "correlation": self.correlation}

    def out_dir(self, ctx: StageContext) -> Path:
        return ctx.state.meta_dir.parent.parent / "exports" / self.name

    def plan(self, ctx: StageContext) -> int:
        return 1

    def block_tasks(self, ctx: StageContext, blocks: list[int]) -> list[Any]:
        diff = str(ctx.input(self.differential)) if self.differential else None
        corr = str(ctx.input(self.correlation)) if self.correlation else None
        return [dask.delayed(_export, pure=True)(
            ctx.state, ctx.fingerprint, str(self.out_dir(ctx)), str(ctx.input(self.inputs[0])), diff, corr,
            self.cell_type, self.signature_type, self.strata, self.formats,
            dask_key_name=f"export-{ctx.name}-{ctx.fingerprint[:8]}")]

    def finalize(self, ctx: StageContext) -> dict[str, Any]:
        files = zarr.open_group(str(ctx.path), mode="r").attrs["files"]
        return {"directory": str(self.out_dir(ctx)), "files": list(files)}
