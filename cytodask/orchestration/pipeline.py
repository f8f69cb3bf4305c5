"""``Pipeline``: run the rebuild stages for one uploaded dataset from Python.

``process_submission`` / ``process`` build the same stages a spec declares
(convert → pseudobulk per aggregation level → activity per signature →
differential / correlation → export) from a few arguments, run them through
the result store (so a second call with the same inputs is a no-op and an
interrupted call resumes), and return the results in memory.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anndata
import pandas as pd

from cytodask.core.config import Config
from cytodask.core.runner import StageReport
from cytodask.ingest.base import DataSource
from cytodask.ingest.h5ad import LocalH5ADSource
from cytodask.orchestration.spec import Spec

ANALYSES = ("activity", "differential", "disease_differential", "correlation")
_SAMPLE = ("sample", "sampleID", "sample_id", "donorID", "donor", "donor_id")
_CONDITION = ("disease", "condition", "status")
_CONTROL = ("healthy", "Healthy", "normal", "Normal", "control", "Control", "HC")


@dataclass
class PipelineResults:
    """What a :class:`Pipeline` run produced: stage reports, output paths and tables."""

    output_dir: Path
    reports: list[StageReport]
    activity: dict[str, anndata.AnnData] = field(default_factory=dict)
    differential: dict[str, pd.DataFrame] = field(default_factory=dict)
    correlation: dict[str, pd.DataFrame] = field(default_factory=dict)

    @property
    def exports(self) -> Path:
        return self.output_dir / "exports"


def _find(columns: list[str], wanted: str | None, candidates: tuple[str, ...], what: str) -> str:
    if wanted is not None:
        if wanted not in columns:
            raise ValueError(f"{what} column {wanted!r} is not in obs; available: {columns}")
        return wanted
    for c in candidates:
        if c in columns:
            return c
    raise ValueError(f"no {what} column found (looked for {list(candidates)}); pass {what}=... "
                     f"naming one of {columns}")


def _level_column(level: str, columns: list[str]) -> str | None:
    """``celltype_L2`` → the atlas' level-2 cell-type column (``cell_type_l2``, ``Level2``, ``cellType2``…)."""
    if level in columns:
        return level
    m = re.fullmatch(r"(?i)cell_?type_?l?(\d)", level)
    if not m:
        return None
    k = m.group(1)
    for c in (f"cell_type_l{k}", f"celltype_l{k}", f"cell_type_L{k}", f"Level{k}", f"cellType{k}", f"level{k}"):
        if c in columns:
            return c
    return None


class Pipeline:
    """Run CytoAtlas analyses on one dataset.

    Parameters
    ----------
    config
        Cluster, blocks, permutations (:class:`cytodask.Config`).
    """

    def __init__(self, config: Config | None = None) -> None:
        self.config = config or Config()

    def process_submission(self, *, h5ad_path: str | os.PathLike[str], output_dir: str | os.PathLike[str],
                           layer: str | None = None, **kw: Any) -> PipelineResults:
        """Analyse an uploaded ``.h5ad`` (raw counts in X or ``layer``); see :meth:`process`."""
        return self.process(source=LocalH5ADSource(h5ad_path, layer=layer), output_dir=output_dir, **kw)

    def process(
        self,
        *,
        source: DataSource,
        output_dir: str | os.PathLike[str] | None = None,
        signatures: list[str] | tuple[str, ...] = ("CytoSig",),
        aggregation_levels: list[str] | tuple[str, ...] = ("celltype_L2",),
        analyses: list[str] | tuple[str, ...] = ("activity",),
        sample: str | None = None,
        condition: str | None = None,
        case: str | None = None,
        control: str | None = None,
        variables: list[str] | None = None,
        min_cells: int = 10,
        method: str = "analytic",
        echo: Any = None,
    ) -> PipelineResults:
        """Run the stages for ``source`` and return the results.

        Parameters
        ----------
        signatures
            ``"CytoSig"``, ``"SecAct"`` or signature file paths.
        aggregation_levels
            obs columns or ``celltype_L1``…``celltype_L4`` (mapped to the atlas'
            cell-type columns); each gives a pseudobulk of level × sample.
            ``"pseudobulk"`` aggregates whole samples.
        analyses
            ``activity`` (always run), ``differential`` / ``disease_differential``
            (``case`` vs ``control`` of ``condition``, within each level) and
            ``correlation`` (activity vs numeric per-sample obs columns such as age).
        """
        unknown = [a for a in analyses if a not in ANALYSES]
        if unknown:
            raise ValueError(f"analyses {unknown} are not available; choose from {list(ANALYSES)}")
        columns = source.obs_columns()
        sample = _find(columns, sample, _SAMPLE, "sample")
        wants_diff = any(a in analyses for a in ("differential", "disease_differential"))
        obs = source.obs() if (wants_diff or "correlation" in analyses) else None
        if wants_diff:
            condition = _find(columns, condition, _CONDITION, "condition")
            levels = sorted(obs[condition].dropna().astype(str).unique())
            control = control or next((c for c in _CONTROL if c in levels), None)
            if control is None or control not in levels:
                raise ValueError(f"control level {control!r} not in {condition!r} levels {levels}; pass control=")
            case = case or next((lv for lv in levels if lv != control), None)
            if case is None or case not in levels:
                raise ValueError(f"case level {case!r} not in {condition!r} levels {levels}; pass case=")
        carry = [c for c in (condition,) if c]
        if "correlation" in analyses:
            per_sample = obs.groupby(sample, observed=True).nunique(dropna=False).le(1).all()
            numeric = [c for c in columns if c != sample and pd.api.types.is_numeric_dtype(obs[c])
                       and per_sample.get(c, False)]
            variables = variables or numeric
            if not variables:
                raise ValueError("correlation needs numeric per-sample obs columns (e.g. age, BMI); none found")
            carry += [v for v in variables if v not in carry]
        stages: list[dict[str, Any]] = []
        names: dict[str, dict[str, str]] = {}
        for level in aggregation_levels:
            col = None if level == "pseudobulk" else _level_column(level, columns)
            if level != "pseudobulk" and col is None:
                raise ValueError(f"aggregation level {level!r} matches no obs column; available: {columns}")
            tag = "sample" if col is None else col
            by = [sample] if col is None else [col, sample]
            pb = f"pseudobulk_{tag}"
            stages.append({"name": pb, "type": "pseudobulk", "inputs": ["convert"], "by": by,
                           "carry": carry, "min_cells": min_cells})
            for sig in signatures:
                sig_tag = re.sub(r"[^A-Za-z0-9]+", "_", Path(str(sig)).name.split(".")[0])
                act = f"activity_{sig_tag}_{tag}"
                stages.append({"name": act, "type": "activity", "inputs": [pb], "signature": str(sig),
                               "method": method})
                names[act] = {}
                strata = [col] if col else []
                if wants_diff:
                    d = f"differential_{sig_tag}_{tag}"
                    stages.append({"name": d, "type": "differential", "inputs": [act], "group_col": condition,
                                   "group1": case, "group2": control, "strata": strata})
                    names[act]["differential"] = d
                if "correlation" in analyses:
                    c = f"correlation_{sig_tag}_{tag}"
                    stages.append({"name": c, "type": "correlation", "inputs": [act], "on": sample,
                                   "variables": variables, "by": col, "signature_type": sig_tag})
                    names[act]["correlation"] = c
                ex_inputs = [act, *names[act].values()]
                stages.append({"name": f"export_{sig_tag}_{tag}", "type": "export", "inputs": ex_inputs,
                               "cell_type": col or sample, "signature_type": sig_tag, "strata": strata,
                               **names[act]})
        out = Path(output_dir) if output_dir is not None else self.config.output_dir
        spec = Spec(path=Path.cwd() / "pipeline.toml", name="submission", config=self.config.replace(output_dir=out),
                    source={}, stages=stages)
        from cytodask.orchestration.rebuild import rebuild

        reports = rebuild(spec, source=source, echo=echo)
        return self._collect(out, reports, names)

    @staticmethod
    def _collect(out: Path, reports: list[StageReport], names: dict[str, dict[str, str]]) -> PipelineResults:
        from cytodask.differential.stage import read_table

        res = PipelineResults(output_dir=out, reports=reports)
        for act, extra in names.items():
            res.activity[act] = anndata.read_zarr(out / "stages" / act / "data.zarr")
            if "differential" in extra:
                res.differential[act] = read_table(out / "stages" / extra["differential"] / "data.zarr")
            if "correlation" in extra:
                res.correlation[act] = read_table(out / "stages" / extra["correlation"] / "data.zarr")
        return res
