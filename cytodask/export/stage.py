"""Export stage: every input stage's AnnData output and declared tables, for the web atlas.

The export stage knows no family. Each input stage declares what it exports
(:meth:`cytodask.core.stage.Stage.export_tables`, ``exports_anndata``); the
export writes, for each, the requested formats (``.h5ad``/``.zarr`` for AnnData,
Parquet/CSV and strict JSON — NaN → null — for tables) into
``ROOT/exports/<stage name>/``.

The export directory holds exactly the files of its last complete run:
files are written into a fresh version directory ``exports/.versions/<name>@…``
with a ``manifest.json`` (stage, fingerprints, time, files with their sizes
and SHA-256, table schemas), and ``exports/<name>`` is a symbolic link switched
to it atomically (``os.replace``); older versions are removed afterwards. A
reader never sees a half-written export, a dropped format leaves no old file
behind, and a failed rerun leaves the previous complete export in place.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anndata
import dask
import h5py
import zarr

from cytodask.core.atomic import atomic_path, fsync_path, fsync_tree, read_json, remove_tree
from cytodask.core.registry import register_stage
from cytodask.core.stage import ExportOptions, ExportTable, Stage, StageContext
from cytodask.core.store import StageState

FORMATS = ("h5ad", "zarr", "parquet", "csv", "json")
VERSIONS = ".versions"


@dataclass(frozen=True)
class _Item:
    """One input stage as the export task sees it (picklable)."""

    stage: str
    type_name: str
    data: str
    anndata: bool
    tables: tuple[ExportTable, ...]


def _stems(items: list[_Item]) -> list[dict[str, str]]:
    """File stem per (item, output): the plain name, or ``<stage>.<name>`` where two inputs share a name."""
    names = [[("anndata", it.type_name)] * it.anndata + [(t.name, t.name) for t in it.tables] for it in items]
    flat = [n for group in names for _, n in group]
    return [{key: (n if flat.count(n) == 1 else f"{it.stage}.{n}") for key, n in group}
            for it, group in zip(items, names, strict=True)]


def _export(state: StageState, fingerprint: str, exports: str, name: str, items: list[_Item],
            options: ExportOptions, formats: list[str], inputs: dict[str, str]) -> dict[str, Any]:
    exports_dir = Path(exports)
    version = exports_dir / VERSIONS / f"{name}@{fingerprint[:16]}"
    remove_tree(version)  # a half-written version of a killed run
    version.mkdir(parents=True)
    files: list[str] = []
    tables: dict[str, Any] = {}
    for item, stems in zip(items, _stems(items), strict=True):
        if item.anndata:
            files += _write_anndata(Path(item.data), version, stems["anndata"], formats)
        for table in item.tables:
            df = table.read(Path(item.data), options)
            stem = stems[table.name]
            missing = [c for c in table.columns if c not in df.columns]
            if missing:
                raise ValueError(f"stage {item.stage!r}: table {table.name!r} lacks its declared columns {missing}")
            files += _write_table(df, version, stem, formats, table)
            tables[stem] = {"stage": item.stage, "columns": list(df.columns), "rows": int(len(df)),
                            "description": table.description}
    manifest = {"stage": name, "fingerprint": fingerprint, "inputs": inputs, "formats": formats,
                "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
                "files": {f: _describe(version / f) for f in sorted(files)}, "tables": tables}
    _write_json(version / "manifest.json", manifest, state.fsync)
    if state.fsync:  # every file durable before the link points readers at them
        fsync_tree(version)
    switch(exports_dir / name, version)
    root = zarr.open_group(str(state.path), mode="w", zarr_format=3)
    root.attrs["files"] = [str(exports_dir / name / f) for f in files]
    state.record_block(0, fingerprint, {"block": 0, "files": files})
    return {"block": 0}


def _write_anndata(data: Path, out: Path, stem: str, formats: list[str]) -> list[str]:
    files = []
    if "h5ad" in formats:
        stream_h5ad(zarr.open_group(str(data), mode="r"), out / f"{stem}.h5ad")
        files.append(f"{stem}.h5ad")
    if "zarr" in formats:
        shutil.copytree(data, out / f"{stem}.zarr")  # already AnnData's Zarr layout: copy file by file
        files.append(f"{stem}.zarr")
    return files


def _write_table(df: Any, out: Path, stem: str, formats: list[str], table: ExportTable) -> list[str]:
    files = []
    if "parquet" in formats:
        df.to_parquet(out / f"{stem}.parquet", index=False)
        files.append(f"{stem}.parquet")
    if "csv" in formats:
        df.to_csv(out / f"{stem}.csv", index=False)
        files.append(f"{stem}.csv")
    if "json" in formats:
        if table.json_view is not None:  # a view shaped for the web atlas (e.g. a heatmap matrix)
            view, make = table.json_view
            doc, fname = make(df), f"{stem.removesuffix(table.name)}{view}.json"
        else:
            doc, fname = {"columns": list(df.columns), "records": json.loads(df.to_json(orient="records"))}, \
                f"{stem}.json"
        _write_json(out / fname, doc, False)
        files.append(fname)
    return files


def _describe(path: Path) -> dict[str, Any]:
    if path.is_dir():
        size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        return {"bytes": size}
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return {"bytes": path.stat().st_size, "sha256": digest.hexdigest()}


def switch(link: Path, version: Path) -> None:
    """Point ``link`` at ``version`` atomically, then remove the versions it no longer points at.

    An ``exports/<name>`` that is a real directory (written by an older cytodask)
    is moved aside first; that one-time move is the only non-atomic step.
    """
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.exists() and not link.is_symlink():
        legacy = link.parent / VERSIONS / f"{link.name}@legacy-{os.getpid()}"
        os.replace(link, legacy)
    for stale in link.parent.glob(f".{link.name}.*.link"):  # of a run killed between its two steps
        stale.unlink(missing_ok=True)
    tmp = link.parent / f".{link.name}.{os.getpid()}.link"
    tmp.symlink_to(os.path.relpath(version, link.parent))
    os.replace(tmp, link)
    fsync_path(link.parent)
    for old in (link.parent / VERSIONS).glob(f"{link.name}@*"):
        if old != version:
            remove_tree(old)


def export_manifest(exports_dir: str | os.PathLike[str], name: str) -> dict[str, Any] | None:
    """The manifest of the current export ``name`` (``None`` if it was never completed)."""
    return read_json(Path(exports_dir) / name / "manifest.json")


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


@register_stage("export")
class ExportStage(Stage):
    """Write every input stage's AnnData output and declared tables for the web atlas.

    Parameters
    ----------
    inputs
        Stages to export (any registered type; each declares what it exports).
    cell_type
        obs column of the activity samples for by-cell-type tables (default: each
        activity stage's first grouping column, e.g. the pseudobulk's cell type);
        ``false`` when the samples are whole samples (a pseudobulk by sample only):
        the tables then have one cell type, ``"all"``, not the sample IDs.
    signature_type
        Label replacing the stages' own signature name in the tables.
    formats
        Any of ``h5ad``, ``zarr``, ``parquet``, ``csv``, ``json`` (strict JSON:
        ``{columns, records}`` per table, or the table's own view such as
        ``activity_heatmap.json``; NaN written as ``null``).
    differential, correlation, strata
        Deprecated (every input's tables are exported; a differential stage knows
        its strata): accepted with a warning for one release.
    """

    version = "2"

    def __init__(self, name: str, *, inputs: tuple[str, ...], cell_type: str | bool | None = None,
                 signature_type: str | None = None, formats: list[str] | None = None,
                 differential: str | None = None, correlation: str | None = None,
                 strata: list[str] | None = None) -> None:
        super().__init__(name, inputs=inputs)
        if not inputs:
            raise ValueError(f"stage {name!r}: an export needs inputs (the stages whose results it writes)")
        old = {k: v for k, v in (("differential", differential), ("correlation", correlation),
                                 ("strata", strata)) if v}
        stray = [v for k, v in old.items() if k != "strata" and v not in inputs]
        if stray:
            raise ValueError(f"stage {name!r}: {stray} not among inputs {list(inputs)}; list every stage to "
                             f"export in inputs")
        if old:
            warnings.warn(f"export stage {name!r}: {sorted(old)} are deprecated and ignored (every input's "
                          f"tables are exported; a differential stage knows its strata); remove them from the spec",
                          DeprecationWarning, stacklevel=2)
        formats = list(formats or ["h5ad", "parquet"])
        bad = [f for f in formats if f not in FORMATS]
        if bad:
            raise ValueError(f"stage {name!r}: unknown format(s) {bad}; choose from {list(FORMATS)}")
        if cell_type is True:
            raise ValueError(f"stage {name!r}: cell_type = true is not a column; give the obs column of the cell "
                             "type, or false when the samples are whole samples (no cell type)")
        self.cell_type, self.signature_type, self.formats = cell_type, signature_type, formats

    def params(self) -> dict[str, Any]:
        return {"cell_type": self.cell_type, "signature_type": self.signature_type, "formats": self.formats,
                "exports": {i: [t.name for t in self._stage(i).export_tables()] for i in self.inputs}}

    def _stage(self, name: str) -> Stage:
        try:
            return self.upstream[name]
        except KeyError:
            raise ValueError(f"stage {self.name!r}: input {name!r} is not bound; build the stages with a spec "
                             f"or call bind() with the rebuild's stages") from None

    def out_dir(self, ctx: StageContext) -> Path:
        return ctx.state.meta_dir.parent.parent / "exports" / self.name

    def plan(self, ctx: StageContext) -> int:
        for i in self.inputs:
            self._stage(i)
        return 1

    def block_tasks(self, ctx: StageContext, blocks: list[int]) -> list[Any]:
        items = []
        for i in self.inputs:
            st = self._stage(i)
            items.append(_Item(i, st.type_name or type(st).__name__, str(ctx.input(i)), st.exports_anndata,
                               tuple(st.export_tables())))
        inputs = {i: (ctx.state.meta_dir.parent / i / "manifest.json") for i in self.inputs}
        fps = {i: (read_json(p) or {}).get("fingerprint", "") for i, p in inputs.items()}
        options = ExportOptions(cell_type=self.cell_type, signature_type=self.signature_type)
        return [dask.delayed(_export, pure=True)(
            ctx.state, ctx.fingerprint, str(self.out_dir(ctx).parent), self.name, items, options, self.formats,
            fps, dask_key_name=f"export-{ctx.name}-{ctx.fingerprint[:8]}")]

    def finalize(self, ctx: StageContext) -> dict[str, Any]:
        files = zarr.open_group(str(ctx.path), mode="r").attrs["files"]
        return {"directory": str(self.out_dir(ctx)), "files": list(files)}
