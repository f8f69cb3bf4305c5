"""The cross-atlas stage's report sections: W per signature (figure + table), the meta-analysis, the mapping."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from cytodask.core.report import ReportSection, figure_png
from cytodask.core.tables import read_table

N_SIGNATURES = 25


def w_bar_png(table: pd.DataFrame) -> bytes:
    """Horizontal bars of Kendall's W (highest first), dark where q < 0.05."""
    fig = Figure(figsize=(5.5, max(2.5, 1.2 + 0.22 * len(table))), layout="constrained")
    ax = fig.add_subplot()
    y = np.arange(len(table))[::-1]
    colors = np.where(table["qvalue"].to_numpy(float) < 0.05, "#1f4e79", "#9dc3e6")
    ax.barh(y, table["W"].to_numpy(float), color=colors)
    ax.set_yticks(y, table["signature"].astype(str), fontsize=7)
    ax.set_xlim(0, 1)
    ax.set_xlabel("Kendall's W of cell-type rankings across atlases (dark: q < 0.05)")
    ax.set_title("Conserved signatures")
    return figure_png(fig)


def sections(data: Path) -> list[ReportSection]:
    """W figure and table, the strongest pooled effects, and the unmapped labels."""
    conserved = read_table(data, "conserved").dropna(subset=["W"])
    top = conserved.sort_values(["W", "signature"], ascending=[False, True], kind="stable").head(N_SIGNATURES)
    out = [ReportSection(
        title="Conserved signatures across atlases", figure=w_bar_png(top) if len(top) else None,
        alt="bar chart of Kendall's W per signature: " + ", ".join(f"{s} {w:.2f}" for s, w in
                                                                    zip(top["signature"], top["W"], strict=True)),
        caption=(f"{len(conserved)} signatures with ≥ 3 shared cell types; {int((conserved['qvalue'] < 0.05).sum())} "
                 f"with q < 0.05 (BH over signatures). W = 1: every atlas ranks the shared cell types alike."),
        table=top[["signature", "W", "pvalue", "qvalue", "n_atlases", "n_types", "top_type"]].reset_index(drop=True),
        ident="cross-atlas-w")]
    try:
        meta = read_table(data, "meta")
    except FileNotFoundError:
        meta = None
    if meta is not None and len(meta):
        best = meta.sort_values(["pvalue", "signature"], kind="stable").head(10)
        out.append(ReportSection(
            title="Meta-analysis of correlation effects",
            caption=(f"{len(meta)} signature × variable × cell type groups pooled over atlases (Fisher z of ρ); "
                     f"random effects (DerSimonian–Laird); {int((meta['qvalue'] < 0.05).sum())} with q < 0.05."),
            table=best[["signature", "variable", "common", "random", "ci_low", "ci_high", "i2", "k", "pvalue",
                        "qvalue"]].reset_index(drop=True), ident="cross-atlas-meta"))
    mapping = read_table(data, "mapping")
    unmapped = mapping[mapping["source"] == "unmapped"]
    counts = mapping["source"].value_counts().to_dict()
    out.append(ReportSection(
        title="Cell-type mapping", caption=(f"labels by source: {counts}; unmapped labels are left out of every "
                                            f"comparison"),
        table=unmapped[["atlas", "label"]].reset_index(drop=True), table_caption="Unmapped labels",
        ident="cross-atlas-mapping"))
    return out
