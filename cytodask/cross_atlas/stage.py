"""The ``cross_atlas`` stage: reads the result stores of several atlas rebuilds (one block).

Spec (``graphs/cross_atlas.toml``)::

    [[stages]]
    name = "cross_atlas"
    type = "cross_atlas"
    atlases = [
      {name = "cima", results = "../results/cima", activity = "activity_l2", cell_type = "cell_type_l2",
       sample = "sample", correlation = "age_bmi"},
      ...]

Its fingerprint covers the manifests of the stages it reads (an atlas rebuild that recomputes them
makes this stage stale; one that skips them leaves it up to date). The tables (``TABLES``) are
elements of the stage's Zarr group, each read with :func:`cytodask.core.tables.read_table`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import dask
import pandas as pd
import zarr

from cytodask.core.atomic import fsync_tree
from cytodask.core.integrity import tree_files
from cytodask.core.registry import register_stage
from cytodask.core.stage import ExportTable, Stage, StageContext
from cytodask.core.store import StageState
from cytodask.core.tables import read_table, write_table
from cytodask.cross_atlas.inputs import check_atlases, stage_dir


def _block(state: StageState, fingerprint: str, atlases: list[dict[str, str]], crosswalk: str | None,
           min_types: int, alpha: float, level: str) -> dict[str, Any]:
    from cytodask.cross_atlas.api import cross_atlas_tables
    from cytodask.cross_atlas.inputs import correlation_effects, long_activities

    long, mapping = long_activities(atlases, extra=crosswalk)
    corr = {a["name"]: read_table(stage_dir(a, a["correlation"])) for a in atlases if a.get("correlation")}
    effects = correlation_effects(corr, mapping, {a["name"]: a["cell_type"] for a in atlases}) if corr else None
    tables = cross_atlas_tables(long, mapping, effects, min_types=min_types, alpha=alpha, level=level)
    root = zarr.open_group(str(state.path), mode="w", zarr_format=3)
    for name, table in tables.items():
        write_table(root, table, name=name)
    files = fsync_tree(state.path) if state.fsync else sorted(tree_files(state.path))
    state.record_block(0, fingerprint, {"block": 0, "rows": {k: int(len(v)) for k, v in tables.items()}}, files=files)
    return {"block": 0}


def read_element(path: Path, options: Any, *, name: str, columns: tuple[str, ...] = ()) -> pd.DataFrame:
    """Export reader of one cross-atlas table (no rows, same columns, when the stage had no input for it:
    ``meta`` and ``sign_consistency`` need correlation stages)."""
    try:
        return read_table(path, name)
    except FileNotFoundError:
        return pd.DataFrame(columns=list(columns))


@register_stage("cross_atlas")
class CrossAtlasStage(Stage):
    """Cell-type mapping, ComBat, Kendall's W, consistency and meta-analysis across atlas rebuilds.

    Parameters
    ----------
    atlases
        One table per atlas: ``name, results, activity, cell_type, sample`` and optionally
        ``correlation`` and ``crosswalk`` (:mod:`cytodask.cross_atlas.inputs`). Relative ``results``
        resolve against the spec's folder.
    crosswalk
        A CSV (``label, common``) of the user's own label mappings, tried before the shipped ones.
    min_types
        Fewest shared common types for a W or a profile correlation.
    alpha
        Significance level of the sign-consistency count and the meta-analysis CI (``1 − alpha``).
    level
        ``"shared"``: compare every type at the deepest common type all atlases have (``Memory CD8 T``
        of one atlas and ``CD8 T`` of another meet as ``CD8 T``); ``"fine"``: as mapped.
    """

    version = "1"
    analysis = "cross_atlas"
    path_params = ("crosswalk",)

    def __init__(self, name: str, *, inputs: tuple[str, ...] = (), atlases: list[dict[str, str]],
                 crosswalk: str | None = None, min_types: int = 3, alpha: float = 0.05,
                 level: Literal["shared", "fine"] = "shared") -> None:
        super().__init__(name, inputs=inputs)
        check_atlases(atlases)
        if level not in ("shared", "fine"):
            raise ValueError(f"level={level!r}: use 'shared' or 'fine'")
        self.atlases = [dict(a) for a in atlases]
        self.crosswalk, self.min_types, self.alpha, self.level = crosswalk, int(min_types), float(alpha), level

    @classmethod
    def from_spec(cls, name: str, options: dict[str, Any], ctx: Any) -> Stage:
        atlases = []
        for a in options.get("atlases", []):
            a = dict(a)
            if isinstance(a.get("results"), str) and not Path(a["results"]).expanduser().is_absolute():
                a["results"] = str((Path(ctx.spec_path).parent / a["results"]).resolve())
            atlases.append(a)
        return cls(name, **{**options, "atlases": atlases})

    def params(self) -> dict[str, Any]:
        return {"atlases": self.atlases, "min_types": self.min_types, "alpha": self.alpha, "level": self.level}

    def external_inputs(self) -> dict[str, Path]:
        files = super().external_inputs()
        for a in self.atlases:
            for key in ("activity", "correlation"):
                if a.get(key):
                    files[f"{a['name']}.{key}"] = Path(a["results"]) / "stages" / a[key] / "manifest.json"
        return files

    def export_tables(self) -> list[ExportTable]:
        from cytodask.cross_atlas.export import EXPORTS

        return [ExportTable(f"cross_atlas_{name}", functools.partial(read_element, name=name, columns=cols), cols,
                            text)
                for name, (cols, text) in EXPORTS.items()]

    def report_sections(self, data: Path, options: Mapping[str, Any]) -> list[Any]:
        from cytodask.cross_atlas.report import sections

        return sections(data)

    def plan(self, ctx: StageContext) -> int:
        for a in self.atlases:
            stage_dir(a, a["activity"])
            if a.get("correlation"):
                stage_dir(a, a["correlation"])
        return 1

    def block_tasks(self, ctx: StageContext, blocks: list[int]) -> list[Any]:
        return [dask.delayed(_block, pure=True)(ctx.state, ctx.fingerprint, self.atlases, self.crosswalk,
                                                self.min_types, self.alpha, self.level,
                                                dask_key_name=f"cross_atlas-{ctx.name}-{ctx.fingerprint[:8]}")]

    def finalize(self, ctx: StageContext) -> dict[str, Any]:
        conserved = read_table(ctx.path, "conserved")
        mapping = read_table(ctx.path, "mapping")
        return {"signatures": int(len(conserved)), "conserved_q05": int((conserved["qvalue"] < 0.05).sum()),
                "unmapped_labels": int((mapping["source"] == "unmapped").sum())}
