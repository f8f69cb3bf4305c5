"""Report sections of the organ stages: the specificity heatmap and the composition bars."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure

from cytodask.core.report import QVALUE_THRESHOLD, ReportSection, figure_png
from cytodask.core.tables import read_table

N_PER_GROUP = 5


def heatmap_png(values: pd.DataFrame, marks: pd.DataFrame, *, title: str, label: str) -> bytes:
    """A diverging heatmap (rows × columns) with dots where ``marks`` is true."""
    fig = Figure(figsize=(1.2 + 0.55 * values.shape[1], 1.2 + 0.28 * values.shape[0]), layout="constrained")
    ax = fig.add_subplot()
    lim = float(np.nanmax(np.abs(values.to_numpy()))) if values.size else 1.0
    im = ax.imshow(values.to_numpy(dtype=float), cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
    yy, xx = np.nonzero(marks.to_numpy(dtype=bool))
    ax.scatter(xx, yy, s=8, c="k", marker="o")
    ax.set_xticks(range(values.shape[1]), values.columns, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(values.shape[0]), values.index, fontsize=7)
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, label=label, shrink=0.7)
    return figure_png(fig)


def specificity_heatmap(table: pd.DataFrame, group: str, what: str) -> list[ReportSection]:
    """z-specificity of the most specific signatures of each group (dots: top group with KW q < 0.05)."""
    tested = table.dropna(subset=["z_specificity"])
    if tested.empty:
        raise ValueError(f"no {group} has enough samples for specificity")
    top = tested.sort_values("z_specificity", ascending=False, kind="stable").groupby(group).head(N_PER_GROUP)
    sigs = list(dict.fromkeys(top.sort_values([group, "z_specificity"], ascending=[True, False])["signature"]))
    z = tested.pivot_table(index="signature", columns=group, values="z_specificity").loc[sigs]
    lead = tested.pivot_table(index="signature", columns=group, values="gap").loc[sigs] > 0
    q = tested.pivot_table(index="signature", columns=group, values="qvalue").loc[sigs]
    marks = lead & (q < QVALUE_THRESHOLD)
    png = heatmap_png(z, marks, title=f"{what} specificity (z over {group} means)", label="z-specificity")
    n_sig = int((tested.drop_duplicates("signature")["qvalue"] < QVALUE_THRESHOLD).sum())
    caption = (f"z-specificity ((mean of the {group} − mean of {group} means) / sd of {group} means) of the "
               f"{N_PER_GROUP} most specific signatures per {group}; a dot marks the top {group} of a signature "
               f"whose Kruskal–Wallis q < {QVALUE_THRESHOLD:g} (BH over signatures): {n_sig} of "
               f"{tested['signature'].nunique()} signatures. Invariant to adding a constant to all activities.")
    shown = top[["signature", group, "mean", "z_specificity", "gap", "qvalue"]].reset_index(drop=True)
    return [ReportSection(title=f"{what} specificity", figure=png, alt=f"heatmap of z-specificity; rows: "
                          f"{', '.join(sigs)}", caption=caption, table=shown, numeric_from=2,
                          ident=f"{what.lower().replace(' ', '-')}-specificity")]


def specificity_sections(data: Path) -> list[ReportSection]:
    return specificity_heatmap(read_table(data), "organ", "Organ")


def stacked_bars_png(frac: pd.DataFrame, *, title: str, ylabel: str) -> bytes:
    """Stacked bars: one bar per row of ``frac``, one colour per column."""
    fig = Figure(figsize=(2.0 + 0.7 * len(frac), 4.5), layout="constrained")
    ax = fig.add_subplot()
    bottom = np.zeros(len(frac))
    cmap = colormaps["tab20"]
    for i, col in enumerate(frac.columns):
        v = frac[col].to_numpy(dtype=float)
        ax.bar(range(len(frac)), v, bottom=bottom, color=cmap(i % 20), label=str(col))
        bottom += v
    ax.set_xticks(range(len(frac)), frac.index, rotation=30, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, frameon=False, bbox_to_anchor=(1.01, 1.0), loc="upper left")
    return figure_png(fig)


def composition_sections(data: Path) -> list[ReportSection]:
    table = read_table(data)
    frac = table.pivot_table(index="organ", columns="cell_type", values="proportion", fill_value=0.0)
    png = stacked_bars_png(frac, title="Cell-type composition per organ", ylabel="proportion of cells")
    entropy = table.drop_duplicates("organ").set_index("organ")["entropy"]
    sig = table[table["qvalue"] < QVALUE_THRESHOLD]
    caption = (f"Count-weighted cell-type proportions of {len(frac)} organs; Shannon entropy (nats): "
               + ", ".join(f"{o} {e:.2f}" for o, e in entropy.items())
               + f". {len(sig)} organ × cell type enrichments with q < {QVALUE_THRESHOLD:g} (Mann–Whitney over "
                 "samples, BH over every row).")
    shown = table.sort_values("pvalue", kind="stable").head(15)[
        ["organ", "cell_type", "proportion", "overall_proportion", "log2_enrichment", "qvalue"]]
    return [ReportSection(title="Organ composition", figure=png, alt="stacked bars of cell-type proportions per "
                          f"organ: {', '.join(frac.index)}", caption=caption, table=shown.reset_index(drop=True),
                          table_caption="Strongest enrichments", numeric_from=2, ident="organ-composition")]
