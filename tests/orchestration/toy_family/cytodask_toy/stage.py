"""The toy family's stage: declared through the registry's hooks only."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anndata
import dask
import pandas as pd

from cytodask.core.persist import persist_table
from cytodask.core.report import ReportSection
from cytodask.core.stage import ExportOptions, ExportTable, PipelinePlan, Stage, StageContext
from cytodask.core.tables import read_table
from cytodask_toy.api import COLUMNS, signature_spread


def _block(state: Any, fingerprint: str, src: str, min_samples: int) -> dict[str, Any]:
    return persist_table(state, fingerprint, signature_spread(anndata.read_zarr(src), min_samples=min_samples))


def read_spread(path: Path, options: ExportOptions) -> pd.DataFrame:
    return read_table(path)


class SignatureSpreadStage(Stage):
    """Per-signature mean and sd of activity across samples (one block)."""

    analysis = "signature_spread"

    def __init__(self, name: str, *, inputs: tuple[str, ...], min_samples: int = 2) -> None:
        super().__init__(name, inputs=inputs)
        self.min_samples = int(min_samples)

    def params(self) -> dict[str, Any]:
        return {"min_samples": self.min_samples}

    @classmethod
    def pipeline_stage(cls, plan: PipelinePlan) -> dict[str, Any]:
        return {"inputs": [plan.activity], "min_samples": int(plan.options.get("min_samples", 2))}

    def export_tables(self) -> list[ExportTable]:
        return [ExportTable("signature_spread", read_spread, COLUMNS, "mean and sd of activity per signature")]

    def report_sections(self, data: Path, options: Mapping[str, Any]) -> list[ReportSection]:
        table = read_table(data).sort_values("sd", ascending=False, kind="stable").head(5)
        return [ReportSection(title="Most variable signatures", caption=f"top {len(table)} by sd",
                              table=table.reset_index(drop=True), ident="spread")]

    def plan(self, ctx: StageContext) -> int:
        return 1

    def block_tasks(self, ctx: StageContext, blocks: list[int]) -> list[Any]:
        return [dask.delayed(_block, pure=True)(ctx.state, ctx.fingerprint, str(ctx.input(self.inputs[0])),
                                                self.min_samples, dask_key_name=f"spread-{ctx.fingerprint[:8]}")]
