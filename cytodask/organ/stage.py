"""Organ stage types: ``organ_specificity`` (profiles, specificity, profile correlation) and ``organ_composition``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anndata
import pandas as pd

from cytodask.core.registry import register_stage
from cytodask.core.stage import StageContext
from cytodask.organ.api import (
    COMPOSITION_COLUMNS,
    PROFILE_COLUMNS,
    SPECIFICITY_COLUMNS,
    composition,
    organ_profiles,
    profile_correlation,
    specificity,
)
from cytodask.organ.tablestage import TablesStage, read_obs


@register_stage("organ_specificity")
class OrganSpecificityStage(TablesStage):
    """Organ profiles, specificity (z, gap, Kruskal–Wallis q) and the Spearman matrix of profiles.

    Input: an activity stage over pseudobulks carrying ``organ_col`` and
    ``sample_col`` (e.g. by ``["organ", "cellType1", "sampleID"]``). Samples
    of ``tissue_col`` other than ``normal`` are left out when ``tissue_col``
    is set (scAtlas normal organs).
    """

    analysis = "organ"
    TABLES = {
        "specificity": (("signature", "organ", *SPECIFICITY_COLUMNS[2:]),
                        "z-specificity, gap and Kruskal-Wallis q of each signature per organ (samples as unit)"),
        "profiles": (PROFILE_COLUMNS, "mean and sd of activity per organ and signature, ranked within the organ"),
        "correlation": (("organ",), "Spearman correlation of organ mean profiles (organs x organs)"),
    }

    def __init__(self, name: str, *, inputs: tuple[str, ...], organ_col: str = "organ",
                 sample_col: str = "sampleID", tissue_col: str | None = None, normal: str = "Normal",
                 min_samples: int = 2) -> None:
        super().__init__(name, inputs=inputs)
        self.organ_col, self.sample_col, self.tissue_col = organ_col, sample_col, tissue_col
        self.normal, self.min_samples = normal, min_samples

    def params(self) -> dict[str, Any]:
        return {"organ_col": self.organ_col, "sample_col": self.sample_col, "tissue_col": self.tissue_col,
                "normal": self.normal, "min_samples": self.min_samples}

    def obs_columns(self) -> list[str]:
        return [self.organ_col, self.sample_col] + ([self.tissue_col] if self.tissue_col else [])

    def tables(self, ctx: StageContext) -> dict[str, pd.DataFrame]:
        act = anndata.read_zarr(ctx.input(self.inputs[0]))
        if self.tissue_col:
            act = act[(act.obs[self.tissue_col].astype(str) == self.normal).to_numpy()].copy()
        spec = specificity(act, organ_col=self.organ_col, sample_col=self.sample_col, min_samples=self.min_samples)
        prof = organ_profiles(act, organ_col=self.organ_col, sample_col=self.sample_col)
        corr = profile_correlation(prof).rename_axis(index="organ", columns=None).reset_index()
        return {"specificity": spec, "profiles": prof, "correlation": corr}

    def report_sections(self, data: Path, options: Mapping[str, Any]) -> list[Any]:
        from cytodask.organ.report import specificity_sections

        return specificity_sections(data)


@register_stage("organ_composition")
class OrganCompositionStage(TablesStage):
    """Cell-type composition per organ from the atlas obs (count weighted), entropy and enrichment tests."""

    analysis = "organ_composition"
    TABLES = {"composition": (COMPOSITION_COLUMNS, "cell-type proportions per organ, Shannon entropy, "
                                                   "enrichment vs all organs tested over samples")}

    def __init__(self, name: str, *, inputs: tuple[str, ...], organ_col: str = "organ", sample_col: str = "sampleID",
                 cell_type_col: str = "cellType1", tissue_col: str | None = None, normal: str = "Normal",
                 min_samples: int = 3) -> None:
        super().__init__(name, inputs=inputs)
        self.organ_col, self.sample_col, self.cell_type_col = organ_col, sample_col, cell_type_col
        self.tissue_col, self.normal, self.min_samples = tissue_col, normal, min_samples

    def params(self) -> dict[str, Any]:
        return {"organ_col": self.organ_col, "sample_col": self.sample_col, "cell_type_col": self.cell_type_col,
                "tissue_col": self.tissue_col, "normal": self.normal, "min_samples": self.min_samples}

    def obs_columns(self) -> list[str]:
        return [self.organ_col, self.sample_col, self.cell_type_col] + ([self.tissue_col] if self.tissue_col else [])

    def tables(self, ctx: StageContext) -> dict[str, pd.DataFrame]:
        obs = read_obs(ctx.input(self.inputs[0]))
        if self.tissue_col:
            obs = obs[obs[self.tissue_col].astype(str) == self.normal]
        return {"composition": composition(obs, organ_col=self.organ_col, sample_col=self.sample_col,
                                           cell_type_col=self.cell_type_col, min_samples=self.min_samples)}

    def report_sections(self, data: Path, options: Mapping[str, Any]) -> list[Any]:
        from cytodask.organ.report import composition_sections

        return composition_sections(data)
