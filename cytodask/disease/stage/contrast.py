"""The disease-vs-healthy stage: one block per disease (its cell types are the kernel blocks), BH in finalize.

Each block reads the activity, tests its disease against the (study-matched)
healthy controls in every cell type with the shared rank kernels, writes its
rows as table ``part_<i>`` and records itself, so a killed run recomputes only
the diseases without a record. ``finalize`` (idempotent) joins the parts and
adjusts every p-value of the table together (BH over disease × cell type ×
signature), writing ``table``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import anndata
import dask
import numpy as np
import pandas as pd
import zarr

from cytodask.core.atomic import fsync_tree
from cytodask.core.integrity import tree_files
from cytodask.core.registry import register_stage
from cytodask.core.stage import ExportTable, Stage, StageContext
from cytodask.core.tables import read_table, write_table
from cytodask.disease.api.contrast import contrast_blocks, contrast_rows, finish_contrast, prepare_contrast
from cytodask.disease.api.inputs import HEALTHY, healthy_mask
from cytodask.disease.stage.base import check_obs, read_obs


def _part(ctx: StageContext, index: int, disease: str, src: str, params: dict[str, Any]) -> dict[str, Any]:
    opts = {k: params[k] for k in ("disease_col", "sample_col", "cell_type_col", "healthy", "study_col",
                                   "patient_col", "layer")}
    data = prepare_contrast(anndata.read_zarr(src), **opts)
    blocks = contrast_blocks(data, min_n=params["min_n"], diseases=[disease])
    frames = [contrast_rows(data, b, test=params["test"], min_n=params["min_n"]) for b in blocks]
    name = f"part_{index:05d}"
    write_table(zarr.open_group(str(ctx.path), mode="a"), finish_contrast(frames).drop(columns="qvalue"), name=name)
    files = fsync_tree(ctx.path / name) if ctx.fsync else sorted(tree_files(ctx.path / name))
    return ctx.record(index, {"disease": disease, "rows": sum(len(f) for f in frames)}, files=files)


@register_stage("disease_vs_healthy")
class DiseaseVsHealthyStage(Stage):
    """Every disease vs healthy controls within each cell type (:func:`cytodask.disease.disease_vs_healthy`).

    Parameters
    ----------
    disease_col, sample_col, cell_type_col
        obs columns of the activity samples: condition, sample (the unit), cell type.
    healthy
        Healthy labels, matched case-insensitively (default healthy, normal, control).
    study_col
        Study column: controls from the disease's own studies (``control_scope``).
    patient_col
        Patient column: the samples of one patient (timepoints) are averaged
        into one unit per cell type (``None``: each sample is a unit).
    test
        ``"wilcoxon"`` or ``"welch"``.
    min_n
        Smallest group tested (NaN with a reason below it).
    layer
        ``"X"`` (activity z) or another layer of the activity AnnData.
    """

    version = "1"
    analysis = "disease_vs_healthy"

    def __init__(self, name: str, *, inputs: tuple[str, ...], disease_col: str = "disease",
                 sample_col: str = "sampleID", cell_type_col: str = "Level2", healthy: list[str] | None = None,
                 study_col: str | None = None, patient_col: str | None = None,
                 test: Literal["wilcoxon", "welch"] = "wilcoxon", min_n: int = 3, layer: str = "X") -> None:
        super().__init__(name, inputs=inputs)
        if test not in ("wilcoxon", "welch"):
            raise ValueError(f"stage {name!r}: test={test!r}; use 'wilcoxon' or 'welch'")
        self.disease_col, self.sample_col, self.cell_type_col = disease_col, sample_col, cell_type_col
        self.healthy = list(healthy or HEALTHY)
        self.study_col, self.patient_col = study_col, patient_col
        self.test, self.min_n, self.layer = test, int(min_n), layer
        self._diseases: list[str] = []

    def params(self) -> dict[str, Any]:
        return {"disease_col": self.disease_col, "sample_col": self.sample_col, "cell_type_col": self.cell_type_col,
                "healthy": self.healthy, "study_col": self.study_col, "patient_col": self.patient_col,
                "test": self.test, "min_n": self.min_n, "layer": self.layer}

    def obs_columns(self) -> list[str]:
        return [c for c in (self.disease_col, self.sample_col, self.cell_type_col, self.study_col, self.patient_col)
                if c]

    def groups(self) -> list[str]:
        return [self.cell_type_col]

    def export_tables(self) -> list[ExportTable]:
        from cytodask.disease.export import contrast_export

        return [contrast_export()]

    def report_sections(self, data: Path, options: Mapping[str, Any]) -> list[Any]:
        from cytodask.disease.report import volcano_sections

        return volcano_sections(data)

    def diseases(self, obs: pd.DataFrame) -> list[str]:
        """Disease labels (every non-healthy value of ``disease_col``), sorted: one block each."""
        if "empty" in obs.columns:
            obs = obs[~obs["empty"].to_numpy(dtype=bool)]
        labels = obs[self.disease_col]
        sick = ~healthy_mask(labels, self.healthy) & labels.notna().to_numpy()
        return sorted(set(labels[sick].astype(str)))

    def plan(self, ctx: StageContext) -> int:
        obs = read_obs(ctx.input(self.inputs[0]))
        check_obs(self.name, self.inputs[0], obs, self.obs_columns())
        if not healthy_mask(obs[self.disease_col], self.healthy).any():
            raise ValueError(f"stage {self.name!r}: no {self.disease_col!r} value matches the healthy labels "
                             f"{self.healthy} (case-insensitive); values: "
                             f"{sorted(obs[self.disease_col].dropna().astype(str).unique())[:20]}; set healthy = [...]")
        self._diseases = self.diseases(obs)
        if not self._diseases:
            raise ValueError(f"stage {self.name!r}: every sample is healthy in {self.disease_col!r}; "
                             "nothing to compare")
        zarr.open_group(str(ctx.path), mode="a", zarr_format=3)
        return len(self._diseases)

    def block_tasks(self, ctx: StageContext, blocks: list[int]) -> list[Any]:
        src, params = str(ctx.input(self.inputs[0])), self.params()
        return [dask.delayed(_part, pure=True)(ctx, i, self._diseases[i], src, params,
                                               dask_key_name=f"disease-{ctx.name}-{i}-{ctx.fingerprint[:8]}")
                for i in blocks]

    def finalize(self, ctx: StageContext) -> dict[str, Any]:
        root = zarr.open_group(str(ctx.path), mode="a")
        parts = sorted(k for k in root.keys() if k.startswith("part_"))[: len(self._diseases) or None]
        table = finish_contrast([read_table(root, p) for p in parts])
        write_table(root, table, name="table")
        if ctx.fsync:
            fsync_tree(ctx.path / "table")
        q = table["qvalue"].to_numpy(dtype=np.float64)
        fallback = table.loc[table["control_scope"] == "all_healthy_fallback", ["disease", "cell_type"]]
        n_fallback = int(fallback.drop_duplicates().shape[0])
        notices = [f"{n_fallback} (disease x cell type) block(s) had too few study-matched healthy controls and "
                   "used all healthy samples of the cell type (control_scope = all_healthy_fallback)"]
        notices = notices if n_fallback else []
        return {"rows": int(len(table)), "diseases": int(table["disease"].nunique()),
                "significant_q05": int(np.sum(q < 0.05)), "fallback_blocks": n_fallback, "notices": notices}
