"""Report sections of the cancer stages (figures drawn with Matplotlib's Figure, never pyplot)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from cytodask.cancer.api.infiltration import INFILTRATION_SUBTYPES, fraction_column
from cytodask.core.report import QVALUE_THRESHOLD, ReportSection, figure_png
from cytodask.core.tables import read_table
from cytodask.organ.report import specificity_heatmap, stacked_bars_png

N_SHOWN = 10


def tumor_vs_adjacent_sections(data: Path) -> list[ReportSection]:
    """Paired plot: mean adjacent (x) vs mean tumour (y) activity of each pooled cell type × signature."""
    t = read_table(data)
    pooled = t[(t["test"] == "wilcoxon_signed_rank") & (t["cancer_type"] == "pooled")].dropna(subset=["pvalue"])
    if pooled.empty:
        raise ValueError("no pooled stratum has enough pairs")
    sig = pooled["qvalue"].to_numpy(dtype=float) < QVALUE_THRESHOLD
    fig = Figure(figsize=(6.5, 6.0), layout="constrained")
    ax = fig.add_subplot()
    ax.scatter(pooled["mean_adjacent"][~sig], pooled["mean_tumor"][~sig], s=10, c="#9e9e9e", linewidths=0,
               label=f"q ≥ {QVALUE_THRESHOLD:g} (n={int((~sig).sum())})")
    ax.scatter(pooled["mean_adjacent"][sig], pooled["mean_tumor"][sig], s=16, c="#d62728", linewidths=0,
               label=f"q < {QVALUE_THRESHOLD:g} (n={int(sig.sum())})")
    lo = float(np.nanmin(pooled[["mean_adjacent", "mean_tumor"]].to_numpy()))
    hi = float(np.nanmax(pooled[["mean_adjacent", "mean_tumor"]].to_numpy()))
    ax.plot([lo, hi], [lo, hi], color="#555", lw=0.6, ls="--")
    top = pooled.sort_values("pvalue", kind="stable").head(N_SHOWN)
    for _, r in top.iterrows():
        ax.annotate(f"{r.signature} ({r.cell_type})", (r.mean_adjacent, r.mean_tumor), fontsize=7,
                    xytext=(4, 4), textcoords="offset points")
    ax.set_xlabel("mean activity, adjacent tissue (paired donors)")
    ax.set_ylabel("mean activity, tumour (same donors)")
    ax.set_title("Tumour vs adjacent, pooled over cancer types", fontsize=10)
    ax.legend(frameon=False, fontsize=8, loc="upper left")
    caption = (f"Each point is a cell type × signature over the donors with both tissues "
               f"({t.attrs.get('n_donors_paired', '?')} donors; {t.attrs.get('n_donors_unpaired', '?')} unpaired "
               f"donors and {t.attrs.get('n_rows_other_tissue', '?')} rows of other tissues left out). Above the "
               f"diagonal: higher in tumour. Red: Wilcoxon signed-rank q < {QVALUE_THRESHOLD:g} "
               f"({t.attrs.get('fdr_family', 'BH')}).")
    shown = top[["cell_type", "signature", "n_pairs", "diff", "pvalue", "qvalue"]].reset_index(drop=True)
    return [ReportSection(title="Tumour vs adjacent (paired)", figure=figure_png(fig),
                          alt="scatter of mean adjacent vs mean tumour activity; labelled: "
                          + ", ".join(f"{a} ({b})" for a, b in zip(top.signature, top.cell_type, strict=True)),
                          caption=caption, table=shown, numeric_from=2, ident="tumor-vs-adjacent")]


def cancer_type_specificity_sections(data: Path) -> list[ReportSection]:
    return specificity_heatmap(read_table(data), "cancer_type", "Cancer type")


def immune_infiltration_sections(data: Path) -> list[ReportSection]:
    """Infiltration bars: mean subtype fractions of tumour samples per cancer type."""
    samples = read_table(data)
    cols = [fraction_column(s) for s in INFILTRATION_SUBTYPES]
    mean = samples.groupby("cancer_type")[cols].mean()
    mean.columns = list(INFILTRATION_SUBTYPES)
    png = stacked_bars_png(mean, title="Immune infiltration of tumour samples", ylabel="fraction of all cells")
    per = samples.groupby("cancer_type")["immune_fraction"].agg(["size", "mean", "std"])
    caption = ("Mean immune subtype fractions (count weighted, through the common vocabulary) per cancer type; "
               + "; ".join(f"{c}: immune {m:.2f} ± {s:.2f} over {int(n)} samples" for c, (n, m, s) in per.iterrows())
               + ".")
    shown = mean.round(4).rename_axis("cancer_type").reset_index()
    return [ReportSection(title="Immune infiltration", figure=png, caption=caption, table=shown,
                          alt="stacked bars of immune subtype fractions by cancer type: " + ", ".join(mean.index),
                          ident="immune-infiltration")]


def t_cell_exhaustion_sections(data: Path) -> list[ReportSection]:
    """Exhaustion: the per-cell score histogram with its threshold, and the exhausted − other differences."""
    comp, cells = read_table(data), read_table(data, "cells")
    threshold = float(cells.attrs.get("threshold", np.nan))
    fig = Figure(figsize=(11.0, 4.2), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    ax1.hist(cells["score"], bins=60, color="#4c72b0")
    ax1.axvline(threshold, color="#d62728", ls="--", lw=1)
    ax1.set_xlabel("exhaustion score (markers − matched controls)")
    ax1.set_ylabel("CD8 T cells")
    paired = comp[comp["test"] == "paired_t"].dropna(subset=["pvalue"]).sort_values("pvalue").head(N_SHOWN)
    sig = paired["qvalue"].to_numpy(dtype=float) < QVALUE_THRESHOLD
    ax2.barh(range(len(paired)), paired["diff"], color=np.where(sig, "#d62728", "#9e9e9e"))
    ax2.set_yticks(range(len(paired)), paired["signature"], fontsize=8)
    ax2.invert_yaxis()
    ax2.axvline(0, color="#555", lw=0.6)
    ax2.set_xlabel("activity, exhausted − other CD8 T (mean over donors)")
    n_exh = int(cells["exhausted"].sum())
    caption = (f"{len(cells)} CD8 T cells scored from expression; {n_exh} ({n_exh / max(len(cells), 1):.1%}) above "
               f"the threshold {threshold:g} (red line). Right: the {len(paired)} signatures with the smallest "
               f"paired-t p over {int(paired['n_pairs'].max()) if len(paired) else 0} donors; red: q < "
               f"{QVALUE_THRESHOLD:g}.")
    shown = paired[["signature", "n_pairs", "diff", "pvalue", "qvalue"]].reset_index(drop=True)
    return [ReportSection(title="T-cell exhaustion", figure=figure_png(fig), caption=caption, table=shown,
                          alt="histogram of exhaustion scores and bars of exhausted minus other activity: "
                          + ", ".join(paired["signature"]), ident="t-cell-exhaustion")]


def caf_subtypes_sections(data: Path) -> list[ReportSection]:
    """CAF subtypes: proportions per cancer type, and the signatures that differ most across subtypes."""
    act, props = read_table(data), read_table(data, "proportions")
    per_type = props[props["level"] == "cancer_type"].pivot_table(index="key", columns="caf_subtype",
                                                                   values="proportion", fill_value=0.0)
    png = stacked_bars_png(per_type, title="CAF subtypes of fibroblasts", ylabel="fraction of fibroblasts")
    tested = act.dropna(subset=["pvalue"]).drop_duplicates("signature").sort_values("pvalue").head(N_SHOWN)
    top = act[act["signature"].isin(tested["signature"])]
    wide = top.pivot_table(index="signature", columns="caf_subtype", values="mean").loc[tested["signature"]]
    wide.insert(0, "qvalue", tested.set_index("signature")["qvalue"])
    caption = ("Fibroblasts called myCAF, iCAF or apCAF from their marker-set scores (best above the threshold, else "
               f"unassigned), per cancer type. Table: mean activity per subtype over samples for the {len(tested)} "
               "signatures with the smallest Kruskal–Wallis p (BH over signatures).")
    return [ReportSection(title="CAF subtypes", figure=png, caption=caption, table=wide.reset_index(),
                          alt="stacked bars of CAF subtype proportions by cancer type: " + ", ".join(per_type.index),
                          ident="caf-subtypes")]
