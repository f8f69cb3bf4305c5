"""Cancer stage types, one per analysis of ANALYSES.md §4 (each writes named tables; see :mod:`.export`).

- ``tumor_vs_adjacent`` (input: pseudobulk activity), ``cancer_type_specificity`` (pseudobulk activity);
- ``immune_infiltration`` (inputs: the atlas store, pseudobulk activity);
- ``t_cell_exhaustion`` and ``caf_subtypes`` (inputs: the atlas store, single-cell activity over it):
  expression and activity are streamed block by block through Dask.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anndata
import pandas as pd

from cytodask.cancer import api
from cytodask.cancer.export import TABLES
from cytodask.core.registry import register_stage
from cytodask.core.stage import StageContext
from cytodask.organ.tablestage import TablesStage, lazy_cells, read_obs


class _CancerStage(TablesStage):
    def __init__(self, name: str, *, inputs: tuple[str, ...], **options: Any) -> None:
        super().__init__(name, inputs=inputs)
        self.options = options

    def params(self) -> dict[str, Any]:
        return dict(self.options)

    def obs_columns(self) -> list[str]:
        return [v for k, v in self.options.items() if k.endswith("_col") and isinstance(v, str)]

    def report_sections(self, data: Path, options: Mapping[str, Any]) -> list[Any]:
        from cytodask.cancer import report

        return getattr(report, f"{self.type_name}_sections")(data)


@register_stage("tumor_vs_adjacent")
class TumorVsAdjacentStage(_CancerStage):
    """Paired tumour − adjacent activity per cell type, per cancer type and pooled (:func:`.tumor_vs_adjacent`)."""

    analysis = "tumor_vs_adjacent"
    TABLES = TABLES["tumor_vs_adjacent"]

    def __init__(self, name: str, *, inputs: tuple[str, ...], tissue_col: str = "tissue", donor_col: str = "donorID",
                 cell_type_col: str = "cellType1", tumor: str = "Tumor", adjacent: str = "Adjacent",
                 cancer_type_col: str | None = "cancerType", min_pairs: int = 3) -> None:
        super().__init__(name, inputs=inputs, tissue_col=tissue_col, donor_col=donor_col, cell_type_col=cell_type_col,
                         tumor=tumor, adjacent=adjacent, cancer_type_col=cancer_type_col, min_pairs=min_pairs)

    def tables(self, ctx: StageContext) -> dict[str, pd.DataFrame]:
        act = anndata.read_zarr(ctx.input(self.inputs[0]))
        return {"tumor_vs_adjacent": api.tumor_vs_adjacent(act, **self.options)}


@register_stage("cancer_type_specificity")
class CancerTypeStage(_CancerStage):
    """Mean activity per cancer type over tumour samples, z-specificity, gap, Kruskal–Wallis q."""

    analysis = "cancer_type"
    TABLES = TABLES["cancer_type_specificity"]

    def __init__(self, name: str, *, inputs: tuple[str, ...], cancer_type_col: str = "cancerType",
                 sample_col: str = "sampleID", tissue_col: str | None = "tissue", tumor: str = "Tumor",
                 cell_type_col: str | None = None, min_samples: int = 2) -> None:
        super().__init__(name, inputs=inputs, cancer_type_col=cancer_type_col, sample_col=sample_col,
                         tissue_col=tissue_col, tumor=tumor, cell_type_col=cell_type_col, min_samples=min_samples)

    def tables(self, ctx: StageContext) -> dict[str, pd.DataFrame]:
        act = anndata.read_zarr(ctx.input(self.inputs[0]))
        return {"specificity": api.cancer_type_specificity(act, **self.options)}


@register_stage("immune_infiltration")
class InfiltrationStage(_CancerStage):
    """Immune and subtype fractions of tumour samples (atlas obs), per cancer type, and their Spearman with activity.

    Inputs: the atlas store (cell counts) and a pseudobulk activity stage
    (per ``activity_cell_type_col`` and sample).
    """

    analysis = "infiltration"
    TABLES = TABLES["immune_infiltration"]

    def __init__(self, name: str, *, inputs: tuple[str, ...], sample_col: str = "sampleID",
                 cell_type_col: str = "subCluster", tissue_col: str | None = "tissue", tumor: str = "Tumor",
                 cancer_type_col: str | None = "cancerType", activity_cell_type_col: str | None = "cellType1",
                 atlas: str | None = None, cell_type_map: dict[str, str] | None = None, min_n: int = 5) -> None:
        super().__init__(name, inputs=inputs, sample_col=sample_col, cell_type_col=cell_type_col,
                         tissue_col=tissue_col, tumor=tumor, cancer_type_col=cancer_type_col,
                         activity_cell_type_col=activity_cell_type_col, atlas=atlas,
                         cell_type_map=dict(cell_type_map or {}), min_n=min_n)

    def tables(self, ctx: StageContext) -> dict[str, pd.DataFrame]:
        o = self.options
        if len(self.inputs) != 2:
            raise ValueError(f"stage {self.name!r}: inputs must be [atlas store stage, activity stage]; got "
                             f"{list(self.inputs)}")
        samples = api.immune_infiltration(read_obs(ctx.input(self.inputs[0])), sample_col=o["sample_col"],
                                          cell_type_col=o["cell_type_col"], tissue_col=o["tissue_col"],
                                          tumor=o["tumor"], cancer_type_col=o["cancer_type_col"],
                                          cell_type_map=o["cell_type_map"] or None, atlas=o["atlas"])
        act = anndata.read_zarr(ctx.input(self.inputs[1]))
        if o["tissue_col"] and o["tissue_col"] in act.obs:
            act = act[(act.obs[o["tissue_col"]].astype(str) == o["tumor"]).to_numpy()].copy()
        corr = api.infiltration_correlation(act, samples, sample_col=o["sample_col"],
                                            cell_type_col=o["activity_cell_type_col"], min_n=o["min_n"])
        return {"samples": samples, "summary": api.infiltration_summary(samples), "correlation": corr}


class _CellStage(_CancerStage):
    """Inputs: the atlas store (counts) and single-cell activity over it; both read as lazy row blocks."""

    def cells(self, ctx: StageContext) -> tuple[anndata.AnnData, anndata.AnnData]:
        if len(self.inputs) != 2:
            raise ValueError(f"stage {self.name!r}: inputs must be [atlas store stage, single-cell activity stage]; "
                             f"got {list(self.inputs)}")
        return lazy_cells(ctx.input(self.inputs[0])), lazy_cells(ctx.input(self.inputs[1]))

    def score_options(self) -> dict[str, Any]:
        keys = ("normalize", "ctrl_size", "n_bins", "random_state", "gene_symbols", "backend", "atlas")
        out = {k: self.options[k] for k in keys}
        out["cell_type_map"] = self.options["cell_type_map"] or None
        return out


@register_stage("t_cell_exhaustion")
class ExhaustionStage(_CellStage):
    """CD8 T exhaustion scored from expression per cell; exhausted vs other CD8 T activity, paired over donors."""

    analysis = "exhaustion"
    TABLES = TABLES["t_cell_exhaustion"]

    def __init__(self, name: str, *, inputs: tuple[str, ...], cell_type_col: str = "cellType1",
                 donor_col: str = "donorID", sample_col: str = "sampleID", target: str = "CD8 T",
                 markers: list[str] | None = None, threshold: float = api.EXHAUSTION_THRESHOLD,
                 normalize: str = "log1p", ctrl_size: int = 50, n_bins: int = 25, random_state: int = 0,
                 gene_symbols: str | None = None, backend: str | None = None, atlas: str | None = None,
                 cell_type_map: dict[str, str] | None = None, min_cells: int = 5, min_pairs: int = 3) -> None:
        super().__init__(name, inputs=inputs, cell_type_col=cell_type_col, donor_col=donor_col,
                         sample_col=sample_col, target=target, markers=list(markers or api.EXHAUSTION_MARKERS),
                         threshold=float(threshold), normalize=normalize, ctrl_size=ctrl_size, n_bins=n_bins,
                         random_state=random_state, gene_symbols=gene_symbols, backend=backend, atlas=atlas,
                         cell_type_map=dict(cell_type_map or {}), min_cells=min_cells, min_pairs=min_pairs)

    def tables(self, ctx: StageContext) -> dict[str, pd.DataFrame]:
        o = self.options
        expr, act = self.cells(ctx)
        cells = api.exhaustion_scores(expr, cell_type_col=o["cell_type_col"], target=o["target"],
                                      markers=o["markers"], threshold=o["threshold"], **self.score_options())
        table = api.exhausted_vs_other(act, cells, donor_col=o["donor_col"], min_cells=o["min_cells"],
                                       min_pairs=o["min_pairs"])
        donors = pd.DataFrame(table.attrs.pop("donors"))
        meta = expr.obs.loc[cells.index, [o["donor_col"], o["sample_col"]]].astype(str)
        cells = cells.assign(donor=meta[o["donor_col"]].to_numpy(), sample=meta[o["sample_col"]].to_numpy())
        cells = cells.rename_axis("cell").reset_index()[["cell", "donor", "sample", "cell_type", "score", "exhausted"]]
        cells.attrs = {"threshold": o["threshold"], "markers": o["markers"]}
        return {"comparison": table, "cells": cells, "donors": donors}


@register_stage("caf_subtypes")
class CafStage(_CellStage):
    """Fibroblasts scored on myCAF, iCAF and apCAF markers; proportions; activity per subtype (Kruskal–Wallis)."""

    analysis = "caf"
    TABLES = TABLES["caf_subtypes"]

    def __init__(self, name: str, *, inputs: tuple[str, ...], cell_type_col: str = "cellType1",
                 sample_col: str = "sampleID", cancer_type_col: str | None = "cancerType", target: str = "Fibroblast",
                 threshold: float = api.CAF_THRESHOLD, normalize: str = "log1p", ctrl_size: int = 50,
                 n_bins: int = 25, random_state: int = 0, gene_symbols: str | None = None, backend: str | None = None,
                 atlas: str | None = None, cell_type_map: dict[str, str] | None = None, min_cells: int = 3) -> None:
        super().__init__(name, inputs=inputs, cell_type_col=cell_type_col, sample_col=sample_col,
                         cancer_type_col=cancer_type_col, target=target, threshold=float(threshold),
                         normalize=normalize, ctrl_size=ctrl_size, n_bins=n_bins, random_state=random_state,
                         gene_symbols=gene_symbols, backend=backend, atlas=atlas,
                         cell_type_map=dict(cell_type_map or {}), min_cells=min_cells)

    def tables(self, ctx: StageContext) -> dict[str, pd.DataFrame]:
        o = self.options
        expr, act = self.cells(ctx)
        cells = api.caf_subtypes(expr, cell_type_col=o["cell_type_col"], target=o["target"],
                                 threshold=o["threshold"], **self.score_options())
        table = api.caf_activity(act, cells, sample_col=o["sample_col"], min_cells=o["min_cells"])
        props = api.caf_proportions(cells, expr.obs, sample_col=o["sample_col"],
                                    cancer_type_col=o["cancer_type_col"])
        cells.attrs = {}
        cells = cells.rename_axis("cell").reset_index()
        return {"activity": table, "cells": cells, "proportions": props}
