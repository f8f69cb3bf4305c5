"""Disease vs healthy for every disease at once, per cell type: the public function and its pieces.

The comparison is split into (disease × cell type) blocks
(:func:`contrast_blocks`): the disease's samples of one cell type against the
healthy samples of that cell type — with ``study_col``, the healthy samples of
the disease's own studies (``control_scope = "study_matched"``), falling back
to every healthy sample of the cell type when the matched ones are fewer than
``min_n`` (``"all_healthy_fallback"``); without ``study_col``, ``"all_healthy"``.
Each block is one call of :func:`cytodask.disease.kernels.contrast_block` on a
block of signatures (the shared rank kernels; CuPy with ``backend="cupy"``),
the blocks are tasks of one Dask graph (:mod:`cytodask.disease.graph`), and the
rows are adjusted together: BH over every (disease × cell type × signature) test.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from cytodask.core.backend import Backend, resolve_backend
from cytodask.core.stats.driver import check_min_n, reason_strings
from cytodask.core.stats.fdr import fdr_bh
from cytodask.core.xp import to_device, to_numpy
from cytodask.disease.api.inputs import HEALTHY, activity_frame, check_columns, healthy_mask, per_sample
from cytodask.disease.kernels import CONTRAST_OUTPUTS, CONTRAST_REASONS, ContrastTest, contrast_block

#: Columns of the disease-vs-healthy table, in order.
CONTRAST_COLUMNS = ("disease", "cell_type", "signature", "diff", "mean_disease", "mean_healthy", "hedges_g",
                    "cliffs_delta", "statistic", "pvalue", "qvalue", "n_disease", "n_healthy", "control_scope",
                    "test", "reason")  # fmt: skip
FDR_FAMILY = "Benjamini-Hochberg over every (disease x cell type x signature) test of the table"


@dataclass(frozen=True)
class ContrastBlock:
    """One (disease × cell type) comparison: row positions of its cases and controls."""

    disease: str
    cell_type: str
    cases: np.ndarray
    controls: np.ndarray
    control_scope: str


@dataclass(frozen=True)
class ContrastInput:
    """Per-sample activity (samples × signatures, float64) with the columns the blocks need."""

    values: np.ndarray
    signatures: list[str]
    disease: np.ndarray  # label per row (str)
    cell_type: np.ndarray
    healthy: np.ndarray  # bool per row
    study: np.ndarray | None


def prepare_contrast(activity: Any, *, disease_col: str, sample_col: str, cell_type_col: str,
                     healthy: Sequence[str] | str = HEALTHY, study_col: str | None = None,
                     patient_col: str | None = None, obs: pd.DataFrame | None = None,
                     layer: str | None = None) -> ContrastInput:
    """Check the columns and labels and reduce activity to one row per sample (or patient) × cell type."""
    values, meta = activity_frame(activity, obs, layer=layer)
    check_columns(meta, [disease_col, sample_col, cell_type_col, study_col, patient_col], "disease_vs_healthy")
    unit = patient_col or sample_col  # the independent unit: a patient's samples (timepoints) are averaged
    values, meta = per_sample(values, meta, [unit, cell_type_col], [disease_col, study_col])
    meta = meta[meta[disease_col].notna()]
    values = values.loc[meta.index]
    is_healthy = healthy_mask(meta[disease_col], healthy)
    if not is_healthy.any():
        present = sorted(meta[disease_col].astype(str).unique())[:20]
        raise ValueError(f"disease_vs_healthy: no healthy sample: no {disease_col!r} value matches {list(healthy)} "
                         f"(case-insensitive); values present: {present}. Pass healthy=[...] with the label used")
    if is_healthy.all():
        raise ValueError(f"disease_vs_healthy: every sample is healthy in {disease_col!r}; nothing to compare")
    return ContrastInput(values.to_numpy(dtype=np.float64), list(map(str, values.columns)),
                         meta[disease_col].astype(str).to_numpy(), meta[cell_type_col].astype(str).to_numpy(),
                         is_healthy, meta[study_col].astype(str).to_numpy() if study_col else None)


def contrast_blocks(data: ContrastInput, *, min_n: int = 3, diseases: Sequence[str] | None = None
                    ) -> list[ContrastBlock]:
    """The (disease × cell type) blocks, diseases then cell types sorted; cell types without the disease skipped."""
    sick = ~data.healthy
    names = sorted(set(data.disease[sick])) if diseases is None else list(diseases)
    blocks = []
    for disease in names:
        for cell_type in sorted(set(data.cell_type[sick & (data.disease == disease)])):
            in_type = data.cell_type == cell_type
            cases = np.flatnonzero(in_type & (data.disease == disease))
            controls = np.flatnonzero(in_type & data.healthy)
            scope = "all_healthy"
            if data.study is not None:
                matched = np.flatnonzero(in_type & data.healthy & np.isin(data.study, data.study[cases]))
                scope = "study_matched" if matched.size >= min_n else "all_healthy_fallback"
                controls = matched if matched.size >= min_n else controls
            blocks.append(ContrastBlock(disease, cell_type, cases, controls, scope))
    return blocks


def contrast_rows(data: ContrastInput, block: ContrastBlock, *, test: ContrastTest = "wilcoxon", min_n: int = 3,
                  backend: Backend = "numpy") -> pd.DataFrame:
    """The rows of one block (every signature), without q-values; columns as :data:`CONTRAST_COLUMNS`."""
    xp = resolve_backend(backend)
    x = to_device(np.ascontiguousarray(data.values[block.cases].T), xp)
    y = to_device(np.ascontiguousarray(data.values[block.controls].T), xp)
    out = np.asarray(to_numpy(contrast_block(x, y, xp=xp, test=test, min_n=min_n)))
    cols = dict(zip(CONTRAST_OUTPUTS, out.T, strict=True))
    n = len(data.signatures)
    frame = pd.DataFrame({"disease": [block.disease] * n, "cell_type": [block.cell_type] * n,
                          "signature": data.signatures})
    for name in CONTRAST_OUTPUTS[:-1]:
        frame[name] = cols[name].astype(np.int64) if name.startswith("n_") else cols[name]
    frame["control_scope"] = block.control_scope
    frame["test"] = test
    frame["reason"] = reason_strings(cols["code"], min_n, CONTRAST_REASONS)
    return frame


def finish_contrast(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate block rows and add BH q-values over the whole table (the family in ``attrs``)."""
    if not frames:
        table = pd.DataFrame({c: pd.Series(dtype=object) for c in CONTRAST_COLUMNS})
    else:
        table = pd.concat(frames, ignore_index=True)
        table["qvalue"] = fdr_bh(table["pvalue"].to_numpy(dtype=np.float64))
        table = table[list(CONTRAST_COLUMNS)]
    table.attrs["fdr_family"] = FDR_FAMILY
    table.attrs["diff"] = "mean(disease) - mean(healthy controls), activity z units"
    return table


def disease_vs_healthy(activity: Any, *, disease_col: str, sample_col: str, cell_type_col: str,
                       healthy: Sequence[str] | str = HEALTHY, study_col: str | None = None,
                       patient_col: str | None = None, test: ContrastTest = "wilcoxon", min_n: int = 3,
                       obs: pd.DataFrame | None = None,
                       layer: str | None = None, backend: Backend = "numpy", scheduler: str | None = None
                       ) -> pd.DataFrame:
    """Every disease vs healthy controls within each cell type, one table, BH over all of it.

    Parameters
    ----------
    activity
        AnnData (obs with the columns below; ``empty`` groups left out) or a
        samples × signatures DataFrame with ``obs=``. One value per sample per
        cell type is tested; rows sharing both (e.g. cells) are averaged first.
    disease_col, sample_col, cell_type_col
        obs columns: the condition (healthy and disease labels), the sample
        (the unit of replication) and the cell type (never pooled across).
    healthy
        Labels of healthy controls, matched case-insensitively (``"Healthy"``,
        ``" healthy "`` and ``"HEALTHY"`` all match ``"healthy"``).
    study_col
        obs column of the study: controls are the healthy samples of the
        disease's own studies in the cell type (``control_scope =
        "study_matched"``); with fewer than ``min_n`` of those, all healthy
        samples of the cell type (``"all_healthy_fallback"``). ``None``: all
        healthy samples (``"all_healthy"``).
    test
        ``"wilcoxon"`` (Mann–Whitney U, statistic = U of the disease group) or
        ``"welch"`` (Welch's t).
    min_n
        Fewer samples in either group give NaN statistics with a ``reason``
        (e.g. ``"n_disease<3"``).
    backend
        Array module of the kernels (``"numpy"``, ``"cupy"``, ``"auto"``).
    scheduler
        Dask scheduler for the (disease × cell type) tasks (default: the
        current one, e.g. a distributed client's).

    Returns
    -------
    DataFrame
        Columns :data:`CONTRAST_COLUMNS`: ``diff = mean(disease) − mean(healthy)``
        (activity z units), ``hedges_g``, ``cliffs_delta`` (P(disease > healthy)
        − P(disease < healthy)), ``statistic``, ``pvalue``, ``qvalue`` (BH over
        every row; ``attrs["fdr_family"]`` says so), group sizes, ``control_scope``,
        ``test`` and ``reason`` (``""`` when computed).

    Notes
    -----
    p-values equal ``scipy.stats.mannwhitneyu(..., method="asymptotic")`` and
    ``scipy.stats.ttest_ind(..., equal_var=False)`` on each block's samples.
    """
    import dask

    from cytodask.disease.graph import contrast_graph

    if test not in ("wilcoxon", "welch"):
        raise ValueError(f"test={test!r}: use 'wilcoxon' (rank-sum) or 'welch' (Welch t)")
    min_n = check_min_n(min_n)
    data = prepare_contrast(activity, disease_col=disease_col, sample_col=sample_col, cell_type_col=cell_type_col,
                            healthy=healthy, study_col=study_col, patient_col=patient_col, obs=obs, layer=layer)
    tasks = contrast_graph(data, contrast_blocks(data, min_n=min_n), test=test, min_n=min_n, backend=backend)
    frames = dask.compute(*tasks, scheduler=scheduler) if scheduler else dask.compute(*tasks)
    return finish_contrast(list(frames))
