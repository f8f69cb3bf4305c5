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
import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from cytodask.core import registry as _registry
from cytodask.core.config import Config
from cytodask.core.hooks import PipelinePlan, find_column
from cytodask.core.obs import constant_columns
from cytodask.ingest.base import DataSource
from cytodask.ingest.h5ad import LocalH5ADSource
from cytodask.orchestration.rebuild import absolute, rebuild
from cytodask.orchestration.results import PipelineResults
from cytodask.orchestration.spec import Spec

__all__ = ["Pipeline", "PipelineResults", "available_analyses"]

_SAMPLE = ("sample", "sampleID", "sample_id", "donorID", "donor", "donor_id")


def available_analyses() -> list[str]:
    """Analysis names ``Pipeline.process(analyses=[...])`` accepts (from the stage registry)."""
    return sorted(_registry.analyses())


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


def _carried(col: str | None, sample: str, columns: list[str]) -> list[str]:
    """obs columns a level's pseudobulk keeps when constant per group: the donor and the parent cell-type level."""
    donor = next((c for c in ("donor", "donor_id", "donorID", "donor_ID", "individual") if c in columns
                  and c != sample), None)
    m = re.fullmatch(r"(?i)(?:cell_?type_?l?|level)(\d)", col or "")  # cell_type_l2, celltype_L2, Level2, cellType2
    parent = _level_column(f"celltype_L{int(m.group(1)) - 1}", columns) if m and int(m.group(1)) > 1 else None
    return [c for c in (donor, parent) if c is not None and c != col]


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
        group_col: str | None = None,
        group1: str | None = None,
        group2: str | None = None,
        variables: list[str] | None = None,
        min_cells: int = 10,
        method: str = "analytic",
        echo: Any = None,
        replace: bool = False,
        **options: Any,
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
            ``activity`` (always run) and any registered analysis
            (:func:`available_analyses`): ``differential`` / ``disease_differential``
            (``group1`` vs ``group2`` of ``group_col``, within each level; detected
            as a disease/condition column and its healthy/control level when not given),
            ``correlation`` (activity vs numeric per-sample obs columns such as age),
            and those of plugin families. Each analysis stage type decides its stage
            from the options (``group_col``, ``group1``, ``group2``, ``variables``,
            and ``**options`` for plugin analyses).
        output_dir
            Result directory (default ``config.output_dir``); relative paths are made absolute
            here, so workers in other directories (an existing cluster, SLURM) find it.
        replace
            Replace the results of another source that ``output_dir`` holds (refused otherwise).

        Returns
        -------
        PipelineResults
            The same object :func:`cytodask.open_results` gives for ``output_dir`` later.
        """
        registry = _registry.analyses()
        unknown = [a for a in analyses if a not in registry]
        if unknown:
            raise ValueError(f"analyses {unknown} are not available; choose from {sorted(registry)}")
        kinds = list(dict.fromkeys(registry[a] for a in analyses if registry[a].type_name != "activity"))
        columns = source.obs_columns()
        given = {"group_col": group_col, "group1": group1, "group2": group2}
        for old, new in (("condition", "group_col"), ("case", "group1"), ("control", "group2")):
            if old in options:  # the spellings of 0.1, kept for one release
                warnings.warn(f"Pipeline.process({old}=...) is deprecated; use {new}=... (the name specs and "
                              f"stages use)", DeprecationWarning, stacklevel=2)
                given[new] = options.pop(old)
        opts = {**given, "variables": variables, **options}
        sample = find_column(columns, sample, _SAMPLE, what="sample", key="sample")
        obs_cache: list[pd.DataFrame] = []

        def obs() -> pd.DataFrame:
            if not obs_cache:
                obs_cache.append(source.obs())
            return obs_cache[0]

        stages: list[dict[str, Any]] = []
        names: dict[str, dict[str, str]] = {}
        for level in aggregation_levels:
            col = None if level == "pseudobulk" else _level_column(level, columns)
            if level != "pseudobulk" and col is None:
                raise ValueError(f"aggregation level {level!r} matches no obs column; available: {columns}")
            tag = "sample" if col is None else col
            pb = f"pseudobulk_{tag}"
            level_stages: list[dict[str, Any]] = []
            carry: list[str] = []
            for sig in signatures:
                sig_tag = re.sub(r"[^A-Za-z0-9]+", "_", Path(str(sig)).name.split(".")[0])
                act = f"activity_{sig_tag}_{tag}"
                sig_path = Path(str(sig)).expanduser()
                level_stages.append({"name": act, "type": "activity", "inputs": [pb], "method": method,
                                     "signature": str(absolute(sig_path)) if sig_path.is_file() else str(sig)})
                names[act] = {}
                plan = PipelinePlan(act, sig_tag, col, sample, columns, obs, opts, carry)
                for cls in kinds:
                    decl = cls.pipeline_stage(plan)
                    if decl is None:
                        continue
                    name = f"{cls.type_name}_{sig_tag}_{tag}"
                    for key in cls.path_params:  # files a stage reads: absolute, as for a spec
                        if isinstance(decl.get(key), (str, os.PathLike)):
                            decl[key] = str(absolute(decl[key]))
                    level_stages.append({"name": name, "type": cls.type_name, **decl})
                    names[act][str(cls.type_name)] = name
                level_stages.append({"name": f"export_{sig_tag}_{tag}", "type": "export",
                                     "inputs": [act, *names[act].values()],
                                     **({"cell_type": False} if col is None else {})})  # whole samples: 'all'
            by = [sample] if col is None else [col, sample]
            carry += [c for c in constant_columns(obs(), by, _carried(col, sample, columns)) if c not in carry]
            stages.append({"name": pb, "type": "pseudobulk", "inputs": ["convert"], "by": by,
                           "carry": carry, "min_cells": min_cells})
            stages += level_stages
        out = absolute(output_dir if output_dir is not None else self.config.output_dir)
        # no spec file: the stages are saved (and checked) as DIR/spec.json, where `cytodask status` reads them
        spec = Spec(path=out / "spec.json", name="submission", config=self.config.replace(output_dir=out),
                    source={}, stages=stages)
        reports = rebuild(spec, source=source, echo=echo, replace=replace)
        return PipelineResults.open(out, reports=reports)
