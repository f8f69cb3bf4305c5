"""The differential stage's part of the run report: a volcano plot with its strongest hits labelled."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text

from cytodask.core.report import QVALUE_THRESHOLD, ReportSection, figure_png

N_LABELS = 10
# Columns of a differential table (cytodask.differential.stage) that are not strata.
TABLE_COLUMNS = frozenset({"signature", "feature", "group1", "group2", "n_g1", "n_g2", "statistic",
                           "activity_diff", "median_g1", "median_g2", "pvalue", "qvalue", "neg_log10_pval",
                           "reason"})


def strata_columns(table: pd.DataFrame) -> list[str]:
    """Columns of a differential table that name its strata (e.g. ``cell_type_l2``)."""
    return [c for c in table.columns if c not in TABLE_COLUMNS and c != "label"]


def _name_column(table: pd.DataFrame) -> str:
    return "signature" if "signature" in table.columns else "feature"


def volcano_hits(table: pd.DataFrame, n: int = N_LABELS) -> pd.DataFrame:
    """The ``n`` strongest rows of a differential table, with a ``label`` column.

    Rows are ranked by ``neg_log10_pval`` (descending), ties broken by
    ``|activity_diff|``; untested rows (missing p-value) are left out. The
    label is ``"signature (stratum)"``, strata joined by ``/``.
    """
    tested = table.dropna(subset=["neg_log10_pval", "activity_diff"])
    key = tested.assign(_abs=tested["activity_diff"].abs())
    hits = key.sort_values(["neg_log10_pval", "_abs"], ascending=False, kind="stable").head(n)
    strata, name = strata_columns(table), _name_column(table)
    labels = []
    for _, row in hits.iterrows():
        stratum = "/".join(str(row[c]) for c in strata)
        labels.append(f"{row[name]} ({stratum})" if stratum else str(row[name]))
    return hits.drop(columns="_abs").assign(label=labels)


def volcano_png(table: pd.DataFrame, hits: pd.DataFrame, title: str) -> bytes:
    """Volcano plot (activity difference vs -log10 p), q < 0.05 highlighted, ``hits`` labelled."""
    tested = table.dropna(subset=["neg_log10_pval", "activity_diff"])
    sig = tested["qvalue"].to_numpy(dtype=float) < QVALUE_THRESHOLD
    fig = Figure(figsize=(9.0, 6.0), layout="constrained")
    ax = fig.add_subplot()
    ax.scatter(tested["activity_diff"][~sig], tested["neg_log10_pval"][~sig], s=12, c="#9e9e9e", alpha=0.6,
               linewidths=0, label=f"q ≥ {QVALUE_THRESHOLD:g} (n={int((~sig).sum())})")
    ax.scatter(tested["activity_diff"][sig], tested["neg_log10_pval"][sig], s=18, c="#d62728",
               linewidths=0, label=f"q < {QVALUE_THRESHOLD:g} (n={int(sig.sum())})")
    ax.scatter(hits["activity_diff"], hits["neg_log10_pval"], s=30, facecolors="none", edgecolors="#222",
               linewidths=0.8, label=f"top {len(hits)} (labelled)")
    ax.axvline(0.0, color="#555", lw=0.6, ls="--")
    ax.set_xlabel("activity difference (mean group 1 − mean group 2, z)")
    ax.set_ylabel("−log10 p-value")
    ax.set_title(title)
    ax.legend(loc="upper left", frameon=False, fontsize=8)
    top_y = float(tested["neg_log10_pval"].max()) if len(tested) else 1.0
    ax.set_ylim(0.0, top_y * 1.4 + 0.1)
    _place_labels(fig, ax, hits)
    return figure_png(fig)


def _place_labels(fig: Figure, ax: Any, hits: pd.DataFrame) -> None:
    """Annotate each hit at the candidate offset whose text overlaps the fewest earlier labels (greedy)."""
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw_without_rendering()
    frame = ax.get_window_extent(renderer)
    placed: list[Any] = []
    offsets = [(dx, dy) for dy in (8, -14, 20, -26, 32, -38, 44, 56, 68, 80, 92, 104)
               for dx in (6, -6, 30, -30, 60, -60)]
    for _, row in hits.iterrows():
        xy = (float(row["activity_diff"]), float(row["neg_log10_pval"]))
        ann = ax.annotate(row["label"], xy, xytext=offsets[0], textcoords="offset points", fontsize=7.5,
                          arrowprops={"arrowstyle": "-", "color": "#777", "lw": 0.5, "shrinkA": 0, "shrinkB": 2})
        best, best_cost = offsets[0], float("inf")
        for dx, dy in offsets:
            _move(ann, dx, dy)
            box = _text_box(ann, renderer)
            outside = not (frame.contains(box.x0, box.y0) and frame.contains(box.x1, box.y1))
            cost = sum(box.overlaps(p) for p in placed) + 100 * outside
            if cost < best_cost:
                best, best_cost = (dx, dy), cost
            if cost == 0:
                break
        _move(ann, *best)
        placed.append(_text_box(ann, renderer))
    fig.set_layout_engine("none")  # freeze the layout the labels were placed in


def _text_box(ann: Any, renderer: Any) -> Any:
    """Window extent of an annotation's text alone (its arrow left out)."""
    ann.update_positions(renderer)
    return Text.get_window_extent(ann, renderer)


def _move(ann: Any, dx: float, dy: float) -> None:
    ann.set_position((dx, dy))
    ann.set_horizontalalignment("left" if dx > 0 else "right")


def volcano_section(table: pd.DataFrame) -> list[ReportSection]:
    """The report's volcano of one differential table."""
    hits = volcano_hits(table)
    if hits.empty:
        raise ValueError("the differential table has no tested rows")
    comparison = f"{hits['group1'].iloc[0]} vs {hits['group2'].iloc[0]}"
    n_sig = int((table["qvalue"].to_numpy(dtype=float) < QVALUE_THRESHOLD).sum())
    top_hit = hits.iloc[0]
    n_tested = int(table["neg_log10_pval"].notna().sum())
    caption = (f"Volcano plot, {comparison}: {n_tested} tests ({len(table) - n_tested} untested rows left out), "
               f"{n_sig} with q < {QVALUE_THRESHOLD:g} (red). Top hit: {top_hit['label']} "
               f"(activity difference {top_hit['activity_diff']:.2f}, p = {top_hit['pvalue']:.3g}, "
               f"q = {top_hit['qvalue']:.3g}). The {len(hits)} circled points are labelled and listed below.")
    alt = f"Volcano plot of {comparison}; labelled: {', '.join(hits['label'])}"
    strata = strata_columns(table)
    cols = [_name_column(table), *strata, "activity_diff", "pvalue", "qvalue", "n_g1", "n_g2"]
    shown = hits[cols].assign(activity_diff=[f"{v:.2f}" for v in hits["activity_diff"]]).reset_index(drop=True)
    shown.insert(0, "rank", range(1, len(shown) + 1))
    png = volcano_png(table, hits, f"Differential activity: {comparison}")
    return [ReportSection(title="Differential activity", figure=png, alt=alt, caption=caption, table=shown,
                          table_caption=f"Top {len(hits)} hits", numeric_from=len(strata) + 2, ident="volcano")]


def read_volcano_sections(data: Path) -> list[ReportSection]:
    from cytodask.core.tables import read_table

    return volcano_section(read_table(data))
