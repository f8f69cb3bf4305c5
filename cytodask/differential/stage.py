"""Differential activity (e.g. disease vs healthy within each cell type) as a stage.

One block: the whole activity matrix of an upstream activity stage (samples ×
signatures — pseudobulk-sized, small) goes through
:func:`cytodask.differential.differential_table` in one batched call over all
strata. The tidy table is stored as an AnnData-encoded dataframe ``table`` in
the stage's Zarr group (read it with :func:`read_table`).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import anndata
import dask
import numpy as np
import pandas as pd
import zarr

from cytodask.core.persist import persist_table
from cytodask.core.registry import register_stage
from cytodask.core.stage import ExportTable, PipelinePlan, Stage, StageContext
from cytodask.core.store import StageState
from cytodask.core.tables import read_table


def _block(state: StageState, fingerprint: str, src: str, layer: str, group_col: str, group1: str,
           group2: str, strata: list[str], test: str) -> dict[str, Any]:
    from cytodask.differential import differential_table

    adata = anndata.read_zarr(src)
    values = adata.layers[layer] if layer != "X" else adata.X
    frame = pd.DataFrame(np.asarray(values), index=adata.obs_names, columns=adata.var_names)
    obs = adata.obs.copy()
    if "empty" in obs.columns:  # samples without counts carry no information
        keep = ~obs["empty"].to_numpy(dtype=bool)
        frame, obs = frame[keep], obs[keep]
    table = differential_table(frame, obs, group_col=group_col, group1=group1, group2=group2,
                               strata=strata, test=test)
    return persist_table(state, fingerprint, table)


CONDITION_COLUMNS = ("disease", "condition", "status")
CONTROL_LEVELS = ("healthy", "Healthy", "normal", "Normal", "control", "Control", "HC")


@register_stage("differential")
class DifferentialStage(Stage):
    """Compare ``group1`` vs ``group2`` of ``group_col`` within each stratum.

    Parameters
    ----------
    group_col, group1, group2
        obs column of the upstream samples and its two levels (e.g. ``disease``:
        ``disease`` vs ``healthy``).
    strata
        obs columns to stratify by (e.g. ``["cell_type_l2"]``).
    layer
        ``"X"`` (activity z-scores) or ``"beta"``.
    test
        ``"wilcoxon"`` (rank-sum) or ``"ttest"`` (Welch).
    """

    version = "2"  # 2: the table names features `signature` (was `feature`)
    analysis = "differential"
    analysis_aliases = ("disease_differential",)

    def __init__(self, name: str, *, inputs: tuple[str, ...], group_col: str, group1: str, group2: str,
                 strata: list[str] | None = None, layer: str = "X",
                 test: Literal["wilcoxon", "ttest"] = "wilcoxon") -> None:
        super().__init__(name, inputs=inputs)
        if test not in ("wilcoxon", "ttest"):
            raise ValueError(f"test={test!r}: use 'wilcoxon' or 'ttest'")
        self.group_col, self.group1, self.group2 = group_col, str(group1), str(group2)
        self.strata, self.layer, self.test = list(strata or []), layer, test

    # -- declarations (registry) ------------------------------------------------------------------
    def obs_columns(self) -> list[str]:
        return [self.group_col, *self.strata]

    def export_tables(self) -> list[ExportTable]:
        from cytodask.differential.export import DIFFERENTIAL_COLUMNS, read_differential

        return [ExportTable("differential", functools.partial(read_differential, strata=self.strata),
                            tuple(DIFFERENTIAL_COLUMNS),
                            f"{self.group1} vs {self.group2} of {self.group_col} per signature and stratum")]

    def report_sections(self, data: Path, options: Mapping[str, Any]) -> list[Any]:
        from cytodask.differential.report import read_volcano_sections

        return read_volcano_sections(data)

    @classmethod
    def pipeline_stage(cls, plan: PipelinePlan) -> dict[str, Any] | None:
        """``group1`` vs ``group2`` of ``group_col`` within the aggregation level (detected when not given:
        a disease/condition column, its healthy/control level as ``group2`` and its first other level)."""
        condition = plan.column("group_col", CONDITION_COLUMNS, "group_col (condition)")
        levels = sorted(plan.obs()[condition].dropna().astype(str).unique())
        control = plan.options.get("group2") or next((c for c in CONTROL_LEVELS if c in levels), None)
        if control is None or control not in levels:
            raise ValueError(f"group2 (control) level {control!r} not in {condition!r} levels {levels}; "
                             f"pass group2=")
        case = plan.options.get("group1") or next((lv for lv in levels if lv != control), None)
        if case is None or case not in levels:
            raise ValueError(f"group1 (case) level {case!r} not in {condition!r} levels {levels}; pass group1=")
        plan.needs(condition)
        return {"inputs": [plan.activity], "group_col": condition, "group1": case, "group2": control,
                "strata": [plan.level] if plan.level else []}

    def params(self) -> dict[str, Any]:
        return {"group_col": self.group_col, "group1": self.group1, "group2": self.group2,
                "strata": self.strata, "layer": self.layer, "test": self.test}

    def plan(self, ctx: StageContext) -> int:
        src = ctx.input(self.inputs[0])
        obs = anndata.io.read_elem(zarr.open_group(str(src), mode="r")["obs"])
        missing = [c for c in [self.group_col, *self.strata] if c not in obs.columns]
        if missing:
            raise ValueError(
                f"stage {self.name!r}: column(s) {missing} are not in the samples of {self.inputs[0]!r}; "
                f"available: {list(obs.columns)} (carry per-sample columns through the pseudobulk stage)"
            )
        levels = set(obs[self.group_col].astype(str))
        absent = [g for g in (self.group1, self.group2) if g not in levels]
        if absent:
            raise ValueError(f"stage {self.name!r}: {self.group_col!r} has no level(s) {absent}; "
                             f"levels: {sorted(levels)}")
        return 1

    def block_tasks(self, ctx: StageContext, blocks: list[int]) -> list[Any]:
        return [dask.delayed(_block, pure=True)(
            ctx.state, ctx.fingerprint, str(ctx.input(self.inputs[0])), self.layer, self.group_col,
            self.group1, self.group2, self.strata, self.test,
            dask_key_name=f"differential-{ctx.name}-{ctx.fingerprint[:8]}")]

    def finalize(self, ctx: StageContext) -> dict[str, Any]:
        table = read_table(ctx.path)
        sig = table[table["qvalue"] < 0.05] if "qvalue" in table else table.iloc[:0]
        return {"rows": int(len(table)), "significant_q05": int(len(sig))}
