"""Report sections of the disease stages: per-disease volcano, driver heatmap, conserved programs, ROC curves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from cytodask.core.report import QVALUE_THRESHOLD, ReportSection, figure_png
from cytodask.core.tables import read_table

MAX_VOLCANOS = 24
N_ROWS = 10


def _volcano_view(table: pd.DataFrame) -> pd.DataFrame:
    """The columns the shared volcano plot reads (``cell_type`` is the stratum of its labels)."""
    with np.errstate(divide="ignore"):
        nl = -np.log10(table["pvalue"].to_numpy(dtype=np.float64))
    return pd.DataFrame({"signature": table["signature"].to_numpy(), "cell_type": table["cell_type"].to_numpy(),
                         "activity_diff": table["diff"].to_numpy(dtype=np.float64),
                         "pvalue": table["pvalue"].to_numpy(dtype=np.float64),
                         "qvalue": table["qvalue"].to_numpy(dtype=np.float64), "neg_log10_pval": nl})


def volcano_sections(data: Path) -> list[ReportSection]:
    """One volcano per disease (up to :data:`MAX_VOLCANOS`): diff vs −log10 p over cell types × signatures."""
    from cytodask.differential.report import volcano_hits, volcano_png

    table = read_table(data)
    family = table.attrs.get("fdr_family", "BH over the table")
    out = []
    for disease in sorted(table["disease"].astype(str).unique())[:MAX_VOLCANOS]:
        sub = table[table["disease"].astype(str) == disease]
        view = _volcano_view(sub)
        hits = volcano_hits(view)
        if hits.empty:
            reasons = "; ".join(f"{r!r} ({n})" for r, n in sub["reason"].value_counts().head(3).items())
            out.append(ReportSection(title=f"{disease} vs healthy", caption=f"nothing tested: {reasons}",
                                     ident=f"disease-volcano-{disease}"))
            continue
        n_sig = int((view["qvalue"] < QVALUE_THRESHOLD).sum())
        scopes = ", ".join(f"{k}: {v}" for k, v in
                           sub.drop_duplicates("cell_type")["control_scope"].value_counts().items())
        top = hits.iloc[0]
        caption = (f"{disease} vs healthy controls: {int(view['neg_log10_pval'].notna().sum())} tests over "
                   f"{sub['cell_type'].nunique()} cell types, {n_sig} with q < {QVALUE_THRESHOLD:g} ({family}). "
                   f"x = mean(disease) − mean(healthy) activity. Controls per cell type: {scopes}. Top: "
                   f"{top['label']} (diff {top['activity_diff']:.2f}, q = {top['qvalue']:.3g}).")
        shown = hits[["signature", "cell_type", "activity_diff", "pvalue", "qvalue"]].rename(
            columns={"activity_diff": "diff"}).reset_index(drop=True)
        out.append(ReportSection(title=f"{disease} vs healthy", figure=volcano_png(view, hits, f"{disease} vs healthy"),
                                 alt=f"Volcano plot of {disease} vs healthy; labelled: {', '.join(hits['label'])}",
                                 caption=caption, table=shown, table_caption=f"Top {len(shown)} hits",
                                 numeric_from=2, ident=f"disease-volcano-{disease}"))
    return out


def driver_heatmap_png(matrix: pd.DataFrame, first: pd.DataFrame) -> bytes:
    """Heatmap of significant signatures per disease (rows) × cell type (columns); a star on rank 1."""
    n_rows, n_cols = matrix.shape
    fig = Figure(figsize=(max(5.0, 2.5 + 0.35 * n_cols), max(3.0, 1.5 + 0.35 * n_rows)), layout="constrained")
    ax = fig.add_subplot()
    im = ax.imshow(matrix.to_numpy(dtype=float), cmap="viridis", aspect="auto", interpolation="nearest")
    ys, xs = np.nonzero(first.to_numpy(dtype=bool))
    ax.scatter(xs, ys, s=40, c="#e41a1c", marker="*", label="driving population (rank 1)")
    ax.set_xticks(range(n_cols), [str(c) for c in matrix.columns], rotation=90, fontsize=7)
    ax.set_yticks(range(n_rows), [str(r) for r in matrix.index], fontsize=8)
    ax.set_xlabel("cell type")
    ax.set_ylabel("disease")
    ax.set_title("Signatures changed vs healthy (q < α, |diff| > δ)")
    if len(xs):
        ax.legend(loc="upper right", bbox_to_anchor=(1.0, 1.15), frameon=False, fontsize=7)
    fig.colorbar(im, ax=ax, label="significant signatures", shrink=0.9)
    return figure_png(fig)


def driver_heatmap_section(data: Path) -> list[ReportSection]:
    """The disease × cell type driver heatmap and the rank-1 population of each disease."""
    table = read_table(data)
    if table.empty:
        raise ValueError("no (disease x cell type) block was tested")
    matrix = table.pivot(index="disease", columns="cell_type", values="n_significant").fillna(0)
    first = table.assign(_f=table["rank"] == 1).pivot(index="disease", columns="cell_type", values="_f")
    first = first.reindex(index=matrix.index, columns=matrix.columns).eq(True)  # missing blocks: not rank 1
    top = table[table["rank"] == 1][["disease", "cell_type", "n_significant", "mean_abs_diff", "min_qvalue",
                                     "top_signature"]].reset_index(drop=True)
    a, d = table.attrs.get("alpha", 0.05), table.attrs.get("min_abs_diff", 0.5)
    caption = (f"Number of signatures with q < {a:g} and |diff| > {d:g} (activity z) per disease and cell type; "
               f"the star marks each disease's first-ranked (driving) population: most significant signatures, "
               f"then largest mean |diff|. {int((top['n_significant'] > 0).sum())} of {len(top)} diseases have one.")
    return [ReportSection(title="Driving populations", figure=driver_heatmap_png(matrix, first),
                          alt=f"Heatmap of significant signatures, diseases {', '.join(map(str, matrix.index))} by "
                              f"cell types {', '.join(map(str, matrix.columns))}",
                          caption=caption, table=top, table_caption="Driving population of each disease",
                          numeric_from=2, ident="disease-drivers")]


def conserved_section(data: Path) -> list[ReportSection]:
    """Table of the conserved programs (or the strongest candidates when none is conserved)."""
    table = read_table(data)
    k = table.attrs.get("min_diseases", 3)
    conserved = table[table["conserved"].astype(bool)]
    shown = (conserved if len(conserved) else table).head(N_ROWS)
    cols = ["signature", "cell_type", "direction", "n_significant", "n_up", "n_down", "diseases_significant",
            "pooled_g", "pooled_pvalue"]
    caption = (f"{len(conserved)} signature x cell type programs significant in >= {k} diseases with one sign "
               f"({table.attrs.get('fdr_family', 'BH')}); pooled g: DerSimonian-Laird random effects across diseases.")
    return [ReportSection(title="Conserved programs", caption=caption, table=shown[cols].reset_index(drop=True),
                          table_caption=f"{'Conserved programs' if len(conserved) else 'No program conserved; top'} "
                                        f"({len(shown)} rows)", numeric_from=3, ident="disease-conserved")]


def roc_png(roc: pd.DataFrame, aucs: dict[str, float]) -> bytes:
    """ROC curves of the ensemble's out-of-fold probabilities, one per disease."""
    fig = Figure(figsize=(6.0, 5.5), layout="constrained")
    ax = fig.add_subplot()
    for disease, g in roc[roc["model"] == "ensemble"].groupby("disease", sort=True):
        ax.plot(g["fpr"], g["tpr"], lw=1.4, label=f"{disease} (AUC {aucs.get(str(disease), np.nan):.2f})")
    ax.plot([0, 1], [0, 1], color="#888", lw=0.8, ls="--", label="chance")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title("Treatment response: out-of-fold ROC (soft-vote ensemble)")
    ax.legend(loc="lower right", frameon=False, fontsize=7)
    return figure_png(fig)


def roc_section(data: Path) -> list[ReportSection]:
    """ROC curves per disease and the AUC table (each model, the ensemble's permutation p)."""
    table, roc = read_table(data), read_table(data, "roc")
    ens = table[table["model"] == "ensemble"]
    aucs = dict(zip(ens["disease"].astype(str), ens["auc"].astype(float), strict=True))
    shown = table[["disease", "model", "auc", "auc_sd", "permutation_p", "n_positive", "n_negative",
                   "n_unlabelled", "reason"]].reset_index(drop=True)
    caption = ("AUC of out-of-fold probabilities (StratifiedGroupKFold by patient, repeated); ensemble = soft vote "
               "of L2 logistic regression and random forest (balanced class weights), its own AUC; permutation p "
               "from patient-label permutations. " + "; ".join(f"{d}: {a:.2f}" for d, a in aucs.items()))
    if roc.empty:
        return [ReportSection(title="Treatment response", caption=caption, table=shown, numeric_from=2,
                              ident="disease-response")]
    return [ReportSection(title="Treatment response", figure=roc_png(roc, aucs),
                          alt=f"ROC curves of the ensemble for {', '.join(aucs)}", caption=caption, table=shown,
                          table_caption="AUC per disease and model", numeric_from=2, ident="disease-response")]


def longitudinal_section(data: Path) -> list[ReportSection]:
    """The strongest longitudinal changes, or why there is no longitudinal analysis."""
    table = read_table(data)
    if not bool(table["has_longitudinal"].any()):
        return [ReportSection(title="Longitudinal change", caption=f"no longitudinal analysis: "
                              f"{table['reason'].iloc[0]}", ident="disease-longitudinal")]
    top = table.dropna(subset=["pvalue"]).sort_values("pvalue", kind="stable").head(N_ROWS)
    cols = ["disease", "cell_type", "signature", "n_patients", "mean_change", "estimate", "pvalue", "qvalue"]
    caption = (f"Within-patient change ({table.attrs.get('change', 'later - earlier')}), method "
               f"{table['method'].iloc[0]}; {int((table['qvalue'] < QVALUE_THRESHOLD).sum())} rows with q < "
               f"{QVALUE_THRESHOLD:g} ({table.attrs.get('fdr_family', 'BH over the table')}).")
    return [ReportSection(title="Longitudinal change", caption=caption, table=top[cols].reset_index(drop=True),
                          table_caption=f"The {len(top)} strongest changes", numeric_from=3,
                          ident="disease-longitudinal")]
