"""The validation stage's part of the run report: quality, pseudobulk vs single cell, single-cell AUC, coverage."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import zarr
from matplotlib.figure import Figure

from cytodask.core.report import ReportSection, figure_png
from cytodask.core.tables import read_table
from cytodask.validation.api.quality import COMPONENTS, OVERALL

N_PANELS = 6


def _quality(quality: pd.DataFrame) -> ReportSection:
    rows = quality[quality["signature"] != OVERALL].sort_values("quality_score", ascending=False, kind="stable")
    overall = quality[quality["signature"] == OVERALL].iloc[0]
    fig = Figure(figsize=(max(6.0, 0.22 * len(rows) + 2), 4.0), layout="constrained")
    ax = fig.add_subplot()
    ax.bar(rows["signature"], rows["quality_score"].fillna(0.0), color="#4c72b0")
    ax.set_ylim(0, 1)
    ax.axhline(0.7, color="#2ca02c", lw=0.7, ls="--", label="high ≥ 0.7")
    ax.axhline(0.4, color="#ff7f0e", lw=0.7, ls="--", label="medium ≥ 0.4")
    ax.set_ylabel("quality score (weighted mean of components)")
    ax.tick_params(axis="x", labelrotation=90, labelsize=7)
    ax.legend(frameon=False, fontsize=8)
    shown = rows[["signature", "quality_score", *COMPONENTS, "confidence"]].round(3).reset_index(drop=True)
    caption = (f"Quality score per signature (components in [0, 1], weights renormalised over the present ones). "
               f"Overall {overall['quality_score']:.3f} ({overall['confidence']}); "
               f"{int(rows['quality_score'].notna().sum())} of {len(rows)} signatures scored.")
    return ReportSection(title="Validation: quality score", figure=figure_png(fig), caption=caption, table=shown,
                         alt=f"Bar chart of the quality score of {len(rows)} signatures", table_caption="Quality",
                         ident="validation-quality")


def _pb_sc(groups: pd.DataFrame, table: pd.DataFrame) -> ReportSection:
    best = table.dropna(subset=["ccc_mean"]).sort_values("ccc_mean", ascending=False).head(N_PANELS)
    if best.empty:
        raise ValueError("no signature has a pseudobulk-vs-single-cell concordance")
    fig = Figure(figsize=(9.0, 6.0), layout="constrained")
    for i, sig in enumerate(best["signature"]):
        ax = fig.add_subplot(2, 3, i + 1)
        g = groups[groups["signature"] == sig]
        ax.scatter(g["pseudobulk"], g["sc_mean"], s=10, c="#4c72b0", label="mean", linewidths=0)
        ax.scatter(g["pseudobulk"], g["sc_median"], s=10, c="#dd8452", label="median", linewidths=0)
        lim = [np.nanmin(g[["pseudobulk", "sc_mean"]].to_numpy()), np.nanmax(g[["pseudobulk", "sc_mean"]].to_numpy())]
        ax.plot(lim, lim, color="#555", lw=0.6, ls="--")
        ax.set_title(sig, fontsize=9)
        ax.set_xlabel("pseudobulk z", fontsize=8)
        ax.set_ylabel("single-cell z", fontsize=8)
        if i == 0:
            ax.legend(frameon=False, fontsize=7)
    shown = table[["signature", "n", "pearson_mean", "spearman_mean", "ccc_mean", "ccc_median"]].round(3)
    caption = (f"Pseudobulk activity of each (sample × cell type) group vs the mean and median of its cells' "
               f"activities, for the {len(best)} signatures of highest Lin's CCC (dashed: identity). Median CCC "
               f"over signatures: {table['ccc_mean'].median():.3f} (mean), "
               f"{table['ccc_median'].median():.3f} (median).")
    return ReportSection(title="Validation: pseudobulk vs single cell", figure=figure_png(fig), caption=caption,
                         alt=f"Scatter plots of pseudobulk vs single-cell activity for {', '.join(best['signature'])}",
                         table=shown.reset_index(drop=True), ident="validation-pb-sc")


def _auc(table: pd.DataFrame) -> ReportSection:
    tested = table.dropna(subset=["auc"])
    if tested.empty:
        raise ValueError(f"no single-cell AUC computed ({table['reason'].iloc[0] if len(table) else 'no rows'})")
    order = tested.groupby("signature")["auc"].median().sort_values(ascending=False)
    fig = Figure(figsize=(max(6.0, 0.3 * len(order) + 2), 4.0), layout="constrained")
    ax = fig.add_subplot()
    for i, sig in enumerate(order.index):
        v = tested.loc[tested["signature"] == sig, "auc"]
        ax.scatter(np.full(len(v), i), v, s=14, c="#4c72b0", linewidths=0)
    ax.axhline(0.5, color="#555", lw=0.7, ls="--")
    ax.set_xticks(range(len(order)), order.index, rotation=90, fontsize=7)
    ax.set_ylabel("AUC, producer-expressing vs other cells")
    shown = tested.sort_values("auc", ascending=False).head(20)[
        ["signature", "cell_type", "auc", "activity_diff", "pvalue", "qvalue", "n1_used", "n2_used"]]
    caption = (f"Single-cell AUC per signature (one dot per cell type; 0.5 = no difference): {len(tested)} tests, "
               f"{int((tested['qvalue'] < 0.05).sum())} with q < 0.05; exact on up to "
               f"{int(table['max_cells'].iloc[0])} cells per group.")
    return ReportSection(title="Validation: single-cell AUC", figure=figure_png(fig), caption=caption,
                         alt=f"AUC per signature across cell types for {len(order)} signatures",
                         table=shown.reset_index(drop=True), table_caption="Top 20 AUCs", ident="validation-auc")


def _coverage(table: pd.DataFrame) -> ReportSection:
    fig = Figure(figsize=(max(6.0, 0.22 * len(table) + 2), 4.0), layout="constrained")
    ax = fig.add_subplot()
    x = np.arange(len(table))
    ax.bar(x - 0.2, table["found_fraction"], width=0.4, label="found / signature genes", color="#4c72b0")
    ax.bar(x + 0.2, table["coverage"], width=0.4, label="detected / signature genes", color="#55a868")
    ax.set_xticks(x, table["signature"], rotation=90, fontsize=7)
    ax.set_ylim(0, 1.05)
    ax.legend(frameon=False, fontsize=8)
    grades = table["grade"].value_counts()
    caption = ("Gene coverage per signature (detected: expressed in ≥ "
               f"{100 * float(table['min_cell_fraction'].iloc[0]):g} % of cells). Grades: "
               + ", ".join(f"{k} {v}" for k, v in grades.items()) + ".")
    shown = table[["signature", "n_genes", "n_found", "found_fraction", "detected_fraction", "coverage", "grade"]]
    return ReportSection(title="Validation: gene coverage", figure=figure_png(fig), caption=caption,
                         alt=f"Bars of found and detected gene fractions for {len(table)} signatures",
                         table=shown.round(3), ident="validation-coverage")


def validation_sections(data: Path) -> list[ReportSection]:
    """The report sections of a validation stage output; a check that did not run says why."""
    root = zarr.open_group(str(data), mode="r")
    quality = read_table(root)
    skipped = dict(quality.attrs.get("skipped", {}))
    sections = [_quality(quality)]
    parts: list[tuple[str, str, Callable[[], ReportSection]]] = [
        ("pseudobulk_vs_single_cell", "pseudobulk vs single cell",
         lambda: _pb_sc(read_table(root, "pseudobulk_vs_single_cell_groups"),
                        read_table(root, "pseudobulk_vs_single_cell"))),
        ("single_cell", "single-cell AUC", lambda: _auc(read_table(root, "single_cell"))),
        ("coverage", "gene coverage", lambda: _coverage(read_table(root, "coverage"))),
    ]
    for element, title, make in parts:
        try:
            if element not in root:
                raise ValueError(skipped.get(element, "check not run"))
            sections.append(make())
        except ValueError as e:
            sections.append(ReportSection(title=f"Validation: {title}", caption=f"Not available: {e}",
                                          ident=f"validation-{element}"))
    return sections
