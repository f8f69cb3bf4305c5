"""``validate``: every check that its inputs allow, and the quality score."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import dask
import pandas as pd

from cytodask.validation.api.biology import biological
from cytodask.validation.api.coverage import gene_coverage
from cytodask.validation.api.inputs import activity_frame, symbols
from cytodask.validation.api.quality import quality_score
from cytodask.validation.api.sample import cell_type_level, sample_level
from cytodask.validation.api.single_cell import detected_fraction, pseudobulk_vs_single_cell, single_cell_auc
from cytodask.validation.api.stability import stability

Check = Literal["sample_level", "cell_type_level", "pseudobulk_vs_single_cell", "single_cell", "biological",
                "coverage", "stability"]
CHECKS: tuple[str, ...] = ("sample_level", "cell_type_level", "pseudobulk_vs_single_cell", "single_cell",
                           "biological", "coverage", "stability")


@dataclass
class ValidationResult:
    """One DataFrame per check that ran (``tables``), why the others did not (``skipped``), and ``summary``.

    ``summary`` is the quality table (:func:`cytodask.validation.quality_score`): one row per
    signature and an ``(overall)`` row. Checks are also attributes (``result.single_cell``).
    """

    tables: dict[str, pd.DataFrame]
    summary: pd.DataFrame
    skipped: dict[str, str] = field(default_factory=dict)
    extra: dict[str, pd.DataFrame] = field(default_factory=dict)

    def __getattr__(self, name: str) -> pd.DataFrame:
        tables = self.__dict__.get("tables", {})
        if name in tables:
            return tables[name]
        if name in CHECKS:
            raise AttributeError(f"check {name!r} did not run: {self.__dict__['skipped'].get(name, 'not asked')}")
        raise AttributeError(name)


def _needs(inputs: Mapping[str, Any]) -> dict[str, str]:
    """Why each check cannot run with these inputs (absent: it can)."""
    why = {}
    if inputs["cell_type_col"] is None:
        for c in ("cell_type_level", "biological", "pseudobulk_vs_single_cell", "single_cell"):
            why[c] = "no cell_type_col given"
    if inputs["single_cell"] is None:
        for c in ("pseudobulk_vs_single_cell", "single_cell"):
            why.setdefault(c, "no single-cell activity given (single_cell=)")
    if inputs["cells"] is None:
        why.setdefault("single_cell", "no single-cell counts given (cells=)")
    if inputs["signature"] is None:
        why["coverage"] = why["stability"] = "no signature given (signature=)"
    return why


def validate(activity: Any, expression: Any, *, sample_col: str, cell_type_col: str | None = None,
             single_cell: Any = None, cells: Any = None, signature: Any = "CytoSig",
             checks: Sequence[Check] = CHECKS, cell_type_map: Mapping[str, str] | None = None,
             atlas: str | None = None, expectations: pd.DataFrame | str | None = None,
             weights: Mapping[str, float] | None = None, min_samples: int = 3, max_cells: int = 5000,
             n_boot: int = 10, n_folds: int = 5, seed: int = 0, top_k: int = 3, layer: str | None = None,
             batch_size: int = 10_000, compute: Any = dask.compute) -> ValidationResult:
    """Does each activity mean what it claims? The seven checks and the quality score.

    Parameters
    ----------
    activity
        Pseudobulk activity AnnData (obs = groups with ``sample_col``/``cell_type_col``, var = signatures,
        X = z).
    expression
        The pseudobulk it was computed from (AnnData, a ``counts`` layer or counts in ``X``), same obs names.
    single_cell
        Single-cell activity: an AnnData (cells × signatures; a Dask ``X`` is streamed, never loaded
        whole) or the path of a single-cell activity stage (``X`` and the label columns' codes read
        block by block: no per-cell table in memory); needed by checks 3 and 4.
    cells
        The cells' counts (AnnData, atlas store path or ``.h5ad``; rows = the cells of ``single_cell``):
        producer-expressing cells (check 4), gene detection (check 6), the bootstrap of cells (check 7).
    signature
        The signature the activity was computed with (whole-sample rows of check 1, checks 6 and 7).
    checks
        Which to run (default all); a check whose inputs are absent is skipped with its reason,
        and its quality component is NaN with that reason.
    cell_type_map, atlas, expectations, top_k
        Check 5 (:func:`cytodask.validation.biological`).
    weights
        Quality weights per component (default 0.2 each; :func:`cytodask.validation.quality_score`).
    max_cells, seed
        Check 4: exact up to ``max_cells`` cells per group, deterministic subsample beyond.
    n_boot, n_folds
        Check 7: bootstrap replicates of cells, folds of signature genes.
    compute
        Computes Dask collections (default ``dask.compute``: the current scheduler).
    """
    unknown = [c for c in checks if c not in CHECKS]
    if unknown:
        raise ValueError(f"checks {unknown} are not validation checks; choose from {list(CHECKS)}")
    inputs = {"cell_type_col": cell_type_col, "single_cell": single_cell, "cells": cells, "signature": signature}
    skipped = {c: r for c, r in _needs(inputs).items() if c in checks}
    run = [c for c in checks if c not in skipped]
    common = {"sample_col": sample_col, "cell_type_col": cell_type_col}
    tables: dict[str, pd.DataFrame] = {}
    extra: dict[str, pd.DataFrame] = {}
    if "sample_level" in run:
        tables["sample_level"] = sample_level(activity, expression, **common, signature=signature,
                                              min_samples=min_samples)
    if "cell_type_level" in run:
        tables["cell_type_level"] = cell_type_level(activity, expression, **common, min_samples=min_samples)
    if "pseudobulk_vs_single_cell" in run:
        tables["pseudobulk_vs_single_cell"], extra["pseudobulk_vs_single_cell_groups"] = pseudobulk_vs_single_cell(
            activity, single_cell, **common, compute=compute)
    if "single_cell" in run:
        tables["single_cell"] = single_cell_auc(single_cell, cells, cell_type_col=cell_type_col, layer=layer,
                                                max_cells=max_cells, seed=seed, compute=compute)
    if "biological" in run:
        tables["biological"] = biological(activity, expression, **common, cell_type_map=cell_type_map, atlas=atlas,
                                          table=expectations, top_k=top_k, min_samples=min_samples)
    if "coverage" in run:
        detected = detected_fraction(cells, layer=layer, compute=compute) if cells is not None else None
        tables["coverage"] = gene_coverage(signature, symbols(expression.var), detected=detected)
    if "stability" in run:
        by = [c for c in (cell_type_col, sample_col) if c]
        tables["stability"] = stability(signature=signature, cells=cells, expression=expression, by=by,
                                        n_boot=n_boot, n_folds=n_folds, seed=seed, layer=layer,
                                        batch_size=batch_size, compute=compute)
    signatures = list(activity_frame(activity)[0].columns)
    summary = quality_score(tables, signatures, weights=weights, skipped=skipped)
    return ValidationResult(tables, summary, skipped, extra)
