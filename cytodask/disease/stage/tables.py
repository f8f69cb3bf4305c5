"""One-block disease stages: profiles, driving populations, conserved programs, longitudinal change."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import anndata
import pandas as pd

from cytodask.core.registry import register_stage
from cytodask.core.stage import ExportTable
from cytodask.core.tables import read_table
from cytodask.disease.api.inputs import HEALTHY
from cytodask.disease.stage.base import TableStage


def profiles_tables(src: str, **params: Any) -> dict[str, pd.DataFrame]:
    from cytodask.disease.api.profiles import disease_profiles

    return {"table": disease_profiles(anndata.read_zarr(src), **params)}


def drivers_tables(src: str, **params: Any) -> dict[str, pd.DataFrame]:
    from cytodask.disease.api.summaries import driving_populations

    return {"table": driving_populations(read_table(src), **params)}


def conserved_tables(src: str, **params: Any) -> dict[str, pd.DataFrame]:
    from cytodask.disease.api.summaries import conserved_programs

    return {"table": conserved_programs(read_table(src), **params)}


def longitudinal_tables(src: str, **params: Any) -> dict[str, pd.DataFrame]:
    from cytodask.disease.api.longitudinal import longitudinal_change

    return {"table": longitudinal_change(anndata.read_zarr(src), **params)}


class _ActivityColumns(TableStage):
    def __init__(self, name: str, *, inputs: tuple[str, ...], disease_col: str = "disease",
                 sample_col: str = "sampleID", cell_type_col: str = "Level2") -> None:
        super().__init__(name, inputs=inputs)
        self.disease_col, self.sample_col, self.cell_type_col = disease_col, sample_col, cell_type_col

    def groups(self) -> list[str]:
        return [self.cell_type_col]


@register_stage("disease_profiles")
class DiseaseProfilesStage(_ActivityColumns):
    """Mean, sd, median activity, n samples and n cells per disease × cell type × signature."""

    compute = profiles_tables

    def __init__(self, name: str, *, inputs: tuple[str, ...], disease_col: str = "disease",
                 sample_col: str = "sampleID", cell_type_col: str = "Level2", healthy: list[str] | None = None,
                 layer: str = "X") -> None:
        super().__init__(name, inputs=inputs, disease_col=disease_col, sample_col=sample_col,
                         cell_type_col=cell_type_col)
        self.healthy, self.layer = list(healthy or HEALTHY), layer

    def params(self) -> dict[str, Any]:
        return {"disease_col": self.disease_col, "sample_col": self.sample_col, "cell_type_col": self.cell_type_col,
                "healthy": self.healthy, "layer": self.layer}

    def needed_columns(self) -> list[str | None]:
        return [self.disease_col, self.sample_col, self.cell_type_col]

    def export_tables(self) -> list[ExportTable]:
        from cytodask.disease.export import profiles_export

        return [profiles_export()]


@register_stage("disease_drivers")
class DiseaseDriversStage(TableStage):
    """Driving populations per disease × cell type from a ``disease_vs_healthy`` stage (its input)."""

    compute = drivers_tables

    def __init__(self, name: str, *, inputs: tuple[str, ...], alpha: float = 0.05,
                 min_abs_diff: float = 0.5) -> None:
        super().__init__(name, inputs=inputs)
        self.alpha, self.min_abs_diff = float(alpha), float(min_abs_diff)

    def params(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "min_abs_diff": self.min_abs_diff}

    def export_tables(self) -> list[ExportTable]:
        from cytodask.disease.export import drivers_export

        return [drivers_export()]

    def report_sections(self, data: Path, options: Mapping[str, Any]) -> list[Any]:
        from cytodask.disease.report import driver_heatmap_section

        return driver_heatmap_section(data)


@register_stage("disease_conserved")
class DiseaseConservedStage(TableStage):
    """Conserved programs per signature × cell type from a ``disease_vs_healthy`` stage (its input)."""

    compute = conserved_tables

    def __init__(self, name: str, *, inputs: tuple[str, ...], alpha: float = 0.05, min_diseases: int = 3,
                 pooled: bool = True) -> None:
        super().__init__(name, inputs=inputs)
        self.alpha, self.min_diseases, self.pooled = float(alpha), int(min_diseases), bool(pooled)

    def params(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "min_diseases": self.min_diseases, "pooled": self.pooled}

    def export_tables(self) -> list[ExportTable]:
        from cytodask.disease.export import conserved_export

        return [conserved_export()]

    def report_sections(self, data: Path, options: Mapping[str, Any]) -> list[Any]:
        from cytodask.disease.report import conserved_section

        return conserved_section(data)


@register_stage("disease_longitudinal")
class DiseaseLongitudinalStage(_ActivityColumns):
    """Paired change over timepoints within patients (:func:`cytodask.disease.longitudinal_change`)."""

    compute = longitudinal_tables

    def __init__(self, name: str, *, inputs: tuple[str, ...], patient_col: str = "patientID",
                 timepoint_col: str = "timepoint", sample_col: str = "sampleID", cell_type_col: str = "Level2",
                 disease_col: str | None = "disease", method: Literal["wilcoxon", "mixedlm"] = "wilcoxon",
                 min_n: int = 3, layer: str = "X") -> None:
        super().__init__(name, inputs=inputs, disease_col=disease_col or "", sample_col=sample_col,
                         cell_type_col=cell_type_col)
        if method not in ("wilcoxon", "mixedlm"):
            raise ValueError(f"stage {name!r}: method={method!r}; use 'wilcoxon' or 'mixedlm'")
        self.patient_col, self.timepoint_col, self.method = patient_col, timepoint_col, method
        self.disease_col, self.min_n, self.layer = disease_col, int(min_n), layer

    def params(self) -> dict[str, Any]:
        return {"patient_col": self.patient_col, "timepoint_col": self.timepoint_col, "sample_col": self.sample_col,
                "cell_type_col": self.cell_type_col, "disease_col": self.disease_col, "method": self.method,
                "min_n": self.min_n, "layer": self.layer}

    def needed_columns(self) -> list[str | None]:
        return [self.patient_col, self.timepoint_col, self.sample_col, self.cell_type_col, self.disease_col]

    def export_tables(self) -> list[ExportTable]:
        from cytodask.disease.export import longitudinal_export

        return [longitudinal_export()]

    def report_sections(self, data: Path, options: Mapping[str, Any]) -> list[Any]:
        from cytodask.disease.report import longitudinal_section

        return longitudinal_section(data)

    def finalize(self, ctx: Any) -> dict[str, Any]:
        table = read_table(ctx.path)
        has = bool(table["has_longitudinal"].any()) if len(table) else False
        return {"rows": int(len(table)), "has_longitudinal": has,
                "notices": [] if has else [f"no longitudinal analysis: {table['reason'].iloc[0]}"]}
