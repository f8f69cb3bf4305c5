"""Validation of an activity stage as a stage: the seven checks and the quality score in one table group.

One block: :func:`cytodask.validation.validate` over the pseudobulk activity (the
first input), its pseudobulk (``expression``), and when named the single-cell
activity (``single_cell``, streamed block by block, never loaded whole) and the
atlas store (``cells``). Each check's table is an element of the stage's Zarr
group; the quality table is the main ``table``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anndata
import dask
import numpy as np
import zarr

from cytodask.core.atomic import fsync_tree
from cytodask.core.integrity import tree_files
from cytodask.core.registry import register_stage
from cytodask.core.stage import ExportTable, PipelinePlan, Stage, StageContext
from cytodask.core.store import StageState
from cytodask.core.tables import read_table, write_table
from cytodask.validation.api.validate import CHECKS


def _block(state: StageState, fingerprint: str, paths: dict[str, str | None], options: dict[str, Any]) -> dict:
    from cytodask.validation import validate

    result = validate(anndata.read_zarr(paths["activity"]), anndata.read_zarr(paths["expression"]),
                      single_cell=paths["single_cell"], cells=paths["cells"],
                      compute=functools.partial(dask.compute, scheduler="sync"), **options)
    summary = result.summary
    summary.attrs["skipped"] = dict(result.skipped)
    root = write_table(state.path, summary)
    for name, table in {**result.tables, **result.extra}.items():
        write_table(root, table, name=name)
    files = fsync_tree(state.path) if state.fsync else sorted(tree_files(state.path))
    state.record_block(0, fingerprint, {"block": 0, "rows": int(len(summary))}, files=files)
    return {"block": 0}


@register_stage("validation")
class ValidationStage(Stage):
    """Validate the activity of the first input (ANALYSES.md §2): seven checks and a quality score.

    Parameters
    ----------
    inputs
        The pseudobulk activity stage first, then the stages named below.
    expression
        The pseudobulk stage the activity was computed from (its ``counts`` layer).
    single_cell
        A single-cell activity stage (activity on the atlas store); checks 3 and 4. ``None``:
        those checks are NaN with the reason.
    cells
        The atlas store stage (``convert``): producer-expressing cells (check 4), gene
        detection (check 6), bootstrap of cells (check 7).
    sample_col, cell_type_col
        obs columns of the pseudobulk groups (and of the cells).
    signature
        The activity's signature (default: the upstream activity stage's).
    checks, weights, cell_type_map, atlas, expectations, min_samples, max_cells, n_boot, n_folds, seed, top_k
        As :func:`cytodask.validation.validate`; ``expectations`` is a CSV path (default: the shipped table).
    """

    version = "1"
    analysis = "validation"
    path_params = ("expectations",)

    def __init__(self, name: str, *, inputs: tuple[str, ...], expression: str, sample_col: str = "sample",
                 cell_type_col: str | None = None, single_cell: str | None = None, cells: str | None = None,
                 signature: str | None = None, checks: list[str] | None = None,
                 weights: dict[str, float] | None = None, cell_type_map: dict[str, str] | None = None,
                 atlas: str | None = None, expectations: str | None = None, min_samples: int = 3,
                 max_cells: int = 5000, n_boot: int = 10, n_folds: int = 5, seed: int = 0, top_k: int = 3) -> None:
        super().__init__(name, inputs=inputs)
        for key, stage in (("expression", expression), ("single_cell", single_cell), ("cells", cells)):
            if stage is not None and stage not in self.inputs:
                raise ValueError(f"stage {name!r}: {key} = {stage!r} is not among its inputs {list(self.inputs)}; "
                                 f"add it to inputs")
        bad = [c for c in (checks or []) if c not in CHECKS]
        if bad:
            raise ValueError(f"stage {name!r}: checks {bad} are not validation checks; choose from {list(CHECKS)}")
        self.expression, self.single_cell, self.cells = expression, single_cell, cells
        self.sample_col, self.cell_type_col, self.signature = sample_col, cell_type_col, signature
        self.checks = list(checks or CHECKS)
        self.weights, self.cell_type_map, self.atlas = weights, cell_type_map, atlas
        self.expectations = Path(expectations) if expectations else None
        self.min_samples, self.max_cells, self.n_boot = int(min_samples), int(max_cells), int(n_boot)
        self.n_folds, self.seed, self.top_k = int(n_folds), int(seed), int(top_k)

    def params(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("expression", "single_cell", "cells", "sample_col", "cell_type_col",
                                              "signature", "checks", "weights", "cell_type_map", "atlas",
                                              "min_samples", "max_cells", "n_boot", "n_folds", "seed", "top_k")}

    # -- declarations (registry) ------------------------------------------------------------------
    def obs_columns(self) -> list[str]:
        return [c for c in (self.sample_col, self.cell_type_col) if c]

    def export_tables(self) -> list[ExportTable]:
        from cytodask.validation.export import export_tables

        return export_tables()

    def report_sections(self, data: Path, options: Mapping[str, Any]) -> list[Any]:
        from cytodask.validation.report import validation_sections

        return validation_sections(data)

    @classmethod
    def pipeline_stage(cls, plan: PipelinePlan) -> dict[str, Any] | None:
        """Validate ``plan.activity`` against its pseudobulk and the atlas store (no single-cell activity)."""
        pseudobulk = f"pseudobulk_{plan.level or 'sample'}"  # the name Pipeline gives it
        return {"inputs": [plan.activity, pseudobulk, "convert"], "expression": pseudobulk, "cells": "convert",
                "sample_col": plan.sample, "cell_type_col": plan.level,
                **{k: plan.options[k] for k in ("cell_type_map", "atlas", "n_boot", "max_cells")
                   if plan.options.get(k) is not None}}

    def _signature(self) -> Any:
        up = self.upstream.get(self.inputs[0])
        return self.signature or getattr(up, "signature", None) or "CytoSig"

    def plan(self, ctx: StageContext) -> int:
        obs = anndata.io.read_elem(zarr.open_group(str(ctx.input(self.inputs[0])), mode="r")["obs"])
        missing = [c for c in self.obs_columns() if c not in obs.columns]
        if missing:
            raise ValueError(f"stage {self.name!r}: column(s) {missing} are not in the samples of "
                             f"{self.inputs[0]!r}; available: {list(obs.columns)}")
        return 1

    def block_tasks(self, ctx: StageContext, blocks: list[int]) -> list[Any]:
        paths = {"activity": str(ctx.input(self.inputs[0])), "expression": str(ctx.input(self.expression)),
                 "single_cell": str(ctx.input(self.single_cell)) if self.single_cell else None,
                 "cells": str(ctx.input(self.cells)) if self.cells else None}
        options = {"sample_col": self.sample_col, "cell_type_col": self.cell_type_col,
                   "signature": self._signature(), "checks": self.checks, "weights": self.weights,
                   "cell_type_map": self.cell_type_map, "atlas": self.atlas,
                   "expectations": str(self.expectations) if self.expectations else None,
                   "min_samples": self.min_samples, "max_cells": self.max_cells, "n_boot": self.n_boot,
                   "n_folds": self.n_folds, "seed": self.seed, "top_k": self.top_k}
        return [dask.delayed(_block, pure=True)(ctx.state, ctx.fingerprint, paths, options,
                                                dask_key_name=f"validation-{ctx.name}-{ctx.fingerprint[:8]}")]

    def finalize(self, ctx: StageContext) -> dict[str, Any]:
        table = read_table(ctx.path)
        overall = table[table["signature"] == "(overall)"]
        score = float(overall["quality_score"].iloc[0]) if len(overall) else float("nan")
        return {"rows": int(len(table)), "overall_quality": None if np.isnan(score) else round(score, 4),
                "skipped": dict(table.attrs.get("skipped", {}))}
