"""The ``search_index`` stage: one index of everything the rebuilds produced, plus the package data.

Spec::

    [[stages]]
    name = "search_index"
    type = "search_index"
    inputs = ["activity_l2"]            # stages of this rebuild to index (optional)
    atlas = "cima"                      # this rebuild's atlas (its crosswalk maps the labels)
    atlases = [{name = "inflammation", results = "../results/inflammation"}]   # other rebuilds (optional)

The index (``entities.parquet``, ``keys.parquet``, ``index.json``: :mod:`cytodask.search.index`) is
written into the stage's data folder; ``cytodask search QUERY --index <results>/stages/search_index``
reads it. The fingerprint covers the manifests of every stage indexed.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dask
import pandas as pd

from cytodask.core.atomic import fsync_tree
from cytodask.core.integrity import tree_files
from cytodask.core.registry import register_stage
from cytodask.core.report import ReportSection
from cytodask.core.stage import ExportOptions, ExportTable, Stage, StageContext
from cytodask.core.store import StageState

EXPORT_COLUMNS = ("name", "type", "aliases", "parents", "appears")


def _block(state: StageState, fingerprint: str, atlases: list[dict[str, Any]], genes: bool,
           signature_dir: str | None = None) -> dict[str, Any]:
    import shutil

    from cytodask.search.index import build_index

    index = build_index(atlases=atlases, genes=genes, signature_dir=signature_dir)
    if state.path.exists():
        shutil.rmtree(state.path)
    index.save(state.path)
    files = fsync_tree(state.path) if state.fsync else sorted(tree_files(state.path))
    state.record_block(0, fingerprint, {"block": 0, "entities": int(len(index.entities)),
                                        "names": index.n_names}, files=files)
    return {"block": 0}


def read_entities(path: Path, options: ExportOptions) -> pd.DataFrame:
    """The ``search_entities`` export: one row per entity, lists joined with ``"; "``."""
    ent = pd.read_parquet(Path(path) / "entities.parquet")
    for col in ("aliases", "parents", "appears"):
        ent[col] = ["; ".join(v) for v in ent[col]]
    return ent


@register_stage("search_index")
class SearchIndexStage(Stage):
    """Build the search index (ANALYSES.md §7) from rebuild outputs and package data.

    Parameters
    ----------
    atlas
        Name of this rebuild's atlas (``cima``, ``inflammation``, ``scatlas``, ``census`` use their
        shipped crosswalk for the cell-type labels); default ``"this"``.
    atlases
        Other rebuilds: ``[{name, results}, ...]`` (relative ``results`` resolve against the spec).
    genes
        Index every gene symbol with its aliases (package data; ~27,000 genes, ~67,000 aliases).
    signature_dir
        A folder holding ``SecAct.tsv.gz`` (else ``$CYTODASK_SIGNATURE_DIR`` or the signature cache): its
        signatures are indexed when the matrix is found (never downloaded for the index); the file is an
        input of the fingerprint, so the index is rebuilt when it appears.
    """

    version = "1"
    analysis = "search_index"

    def __init__(self, name: str, *, inputs: tuple[str, ...] = (), atlas: str = "this",
                 atlases: list[dict[str, Any]] | None = None, genes: bool = True,
                 signature_dir: str | None = None) -> None:
        super().__init__(name, inputs=inputs)
        self.atlas, self.atlases, self.genes = atlas, [dict(a) for a in atlases or []], bool(genes)
        self.signature_dir = signature_dir
        for i, a in enumerate(self.atlases):
            if not a.get("name") or not a.get("results"):
                raise ValueError(f"atlases[{i}] needs name and results, e.g. {{name = \"cima\", results = "
                                 f"\"../results/cima\"}}; got {a}")

    @classmethod
    def from_spec(cls, name: str, options: dict[str, Any], ctx: Any) -> Stage:
        atlases = []
        for a in options.get("atlases", []) or []:
            a = dict(a)
            if isinstance(a.get("results"), str) and not Path(a["results"]).expanduser().is_absolute():
                a["results"] = str((Path(ctx.spec_path).parent / a["results"]).resolve())
            atlases.append(a)
        folder = options.get("signature_dir")
        if isinstance(folder, str) and not Path(folder).expanduser().is_absolute():
            options = {**options, "signature_dir": str((Path(ctx.spec_path).parent / folder).resolve())}
        return cls(name, **{**options, "atlases": atlases})

    def params(self) -> dict[str, Any]:
        return {"atlas": self.atlas, "atlases": self.atlases, "genes": self.genes}

    def external_inputs(self) -> dict[str, Path]:
        from cytodask.search.entities import local_secact

        files = super().external_inputs()
        secact = local_secact(self.signature_dir)
        if secact is not None:
            files["SecAct"] = secact
        for a in self.atlases:
            for manifest in sorted((Path(a["results"]) / "stages").glob("*/manifest.json")):
                files[f"{a['name']}.{manifest.parent.name}"] = manifest
        return files

    def export_tables(self) -> list[ExportTable]:
        return [ExportTable("search_entities", read_entities, EXPORT_COLUMNS,
                            "every searchable entity with its aliases, parents and where it appears")]

    def report_sections(self, data: Path, options: Mapping[str, Any]) -> list[ReportSection]:
        ent = pd.read_parquet(Path(data) / "entities.parquet", columns=["type"])
        counts = ent["type"].value_counts().sort_index().rename_axis("type").reset_index(name="entities")
        return [ReportSection(title="Search index", caption=f"{len(ent)} entities; query them with "
                              f"`cytodask search QUERY --index {Path(data).parent}`", table=counts,
                              ident="search-index")]

    def plan(self, ctx: StageContext) -> int:
        return 1

    def block_tasks(self, ctx: StageContext, blocks: list[int]) -> list[Any]:
        atlases = list(self.atlases)
        if self.inputs:
            root = Path(ctx.state.meta_dir).parent.parent  # this rebuild's result store
            atlases.insert(0, {"name": self.atlas, "results": str(root), "stages": list(self.inputs)})
        return [dask.delayed(_block, pure=True)(ctx.state, ctx.fingerprint, atlases, self.genes,
                                                self.signature_dir,
                                                dask_key_name=f"search_index-{ctx.name}-{ctx.fingerprint[:8]}")]

    def finalize(self, ctx: StageContext) -> dict[str, Any]:
        ent = pd.read_parquet(Path(ctx.path) / "entities.parquet", columns=["type"])
        return {"entities": int(len(ent)), **{f"n_{k}": int(v) for k, v in ent["type"].value_counts().items()}}
