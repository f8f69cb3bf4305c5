"""One self-contained HTML report per rebuild: run summary, stage table, activity and volcano figures.

:func:`build_report` reads a result directory (see the README, "Resume,
fingerprints and the result store") and writes ``DIR/report.html``
atomically. The page has no external assets: CSS is inline and the figures
are base64 PNGs drawn with Matplotlib's Agg canvas (no pyplot state, no files
on disk). Each figure is followed by a small table of the values it plots.

Inputs that are missing (a stage that did not run, a failed run, an empty
directory) are reported as "not available (...)" in the page; they never
make :func:`build_report` fail. All text is escaped with :func:`html.escape`.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text

from cytodask.core.atomic import atomic_path, read_json
from cytodask.core.events import Event, read_run_log
from cytodask.core.store import ResultStore

QVALUE_THRESHOLD = 0.05
N_LABELS = 10
# Columns of a differential table (cytodask.differential.stage) that are not strata.
_TABLE_COLUMNS = frozenset({"feature", "group1", "group2", "n_g1", "n_g2", "statistic", "activity_diff",
                            "median_g1", "median_g2", "pvalue", "qvalue", "neg_log10_pval", "reason"})
_STAGE_CLASSES = {"activity": "ActivityStage", "differential": "DifferentialStage"}

_CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:2em auto;max-width:1300px;
     color:#222;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;border-bottom:1px solid #ddd;padding-bottom:.2em;
     margin-top:1.6em}
table{border-collapse:collapse;font-size:.85em;margin:.6em 0}
th,td{border:1px solid #ddd;padding:.25em .6em;text-align:left}
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.failed td{background:#fde8e8}
dl.run{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}dl.run dt{font-weight:600}
dl.run dd{margin:0}
figure{margin:.6em 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.9em;color:#444;margin-top:.3em}
.na{color:#8a6d00;background:#fff8e1;border:1px solid #f0d98c;padding:.5em .8em;display:inline-block}
.values{overflow-x:auto}footer{margin-top:2em;font-size:.8em;color:#777}
"""


def build_report(
    output_dir: str | os.PathLike[str],
    *,
    activity_stage: str | None = "activity",
    differential_stage: str | None = None,
    cell_type: str = "cell_type_l2",
    top: int = 20,
    path: str | os.PathLike[str] | None = None,
) -> Path:
    """Write the HTML report of the last run in result directory ``output_dir``.

    Parameters
    ----------
    output_dir
        Result store of a rebuild (``cytodask rebuild SPEC --output DIR``).
    activity_stage
        Stage whose ``data.zarr`` holds the activity AnnData (z-scores in ``X``).
        ``None``: the first ``activity`` stage of ``DIR/spec.json``.
    differential_stage
        Stage whose table feeds the volcano plot. ``None``: the first
        ``differential`` stage of ``DIR/spec.json`` (or of the stage manifests).
    cell_type
        obs column of the activity samples giving the heatmap rows.
    top
        Number of signatures in the heatmap: those with the largest variance
        of the cell-type means.
    path
        Where to write the page (default ``DIR/report.html``).

    Returns
    -------
    Path
        The written page.
    """
    if top < 1:
        raise ValueError(f"top must be a positive number of signatures, got {top!r}")
    root = Path(output_dir)
    if not root.is_dir():
        raise ValueError(f"{root} is not a result directory: run `cytodask rebuild SPEC --output {root}` first")
    spec = read_json(root / "spec.json") or {}
    events = read_run_log(root / "run-log.jsonl")
    store = ResultStore(root)
    activity = activity_stage or _find_stage(store, spec, "activity")
    differential = differential_stage or _find_stage(store, spec, "differential")
    title = f"CytoDask run report: {spec.get('name') or root.name}"
    sections = [
        _section("run", "Run", _run_html(run_summary(events))),
        _section("stages", "Stages", _stage_table_html(stage_rows(store, events, spec))),
        _section("activity", "Cytokine activity by cell type",
                 _figure_or_na(store, activity, "activity", lambda p: _heatmap_html(p, cell_type, top))),
        _section("differential", "Differential activity",
                 _figure_or_na(store, differential, "differential", _volcano_html)),
    ]
    page = _page(title, sections)
    target = Path(path) if path is not None else root / "report.html"
    with atomic_path(target) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return target


# -- inputs ---------------------------------------------------------------------------------------


def _find_stage(store: ResultStore, spec: dict[str, Any], kind: str) -> str | None:
    """Name of the first stage of type ``kind`` in the spec, else in the manifests, else ``None``."""
    for decl in spec.get("stages") or []:
        if isinstance(decl, dict) and decl.get("type") == kind and decl.get("name"):
            return str(decl["name"])
    for name in store.stage_names():
        if (store.stage(name).manifest() or {}).get("class") == _STAGE_CLASSES[kind]:
            return name
    return None


def _stage_data(store: ResultStore, name: str) -> tuple[Path | None, str]:
    """The data path of a complete stage, or ``None`` and why it is not available."""
    try:
        state = store.stage(name)
    except ValueError as e:
        return None, str(e)
    status = state.status()["state"]
    if status == "not started":
        return None, f"stage {name!r} did not run"
    if status != "complete" or not state.path.exists():
        return None, f"stage {name!r} did not complete (state: {status})"
    return state.path, ""


def run_summary(events: Sequence[Event]) -> dict[str, Any]:
    """Run id, start time, duration, status and peak memory of one run's events.

    Parameters
    ----------
    events
        Events of one run (:func:`cytodask.core.events.read_run_log`).

    Returns
    -------
    dict
        ``run_id``, ``start`` (ISO 8601, UTC), ``seconds``, ``status``
        (``finished``, ``failed``, ``incomplete`` or ``no run recorded``),
        ``error`` and ``peak_rss_mb`` (``None`` where unknown).
    """
    if not events:
        return {"run_id": None, "start": None, "seconds": None, "status": "no run recorded",
                "error": None, "peak_rss_mb": None}
    first, last = events[0], events[-1]
    end = {"run_finished": "finished", "run_failed": "failed"}.get(last.get("event", ""))
    seconds = last.get("seconds") if end == "finished" else last.get("time", 0) - first.get("time", 0)
    return {
        "run_id": first.get("run_id"),
        "start": _iso(first.get("time")),
        "seconds": seconds,
        "status": end or "incomplete (no run_finished event: interrupted or still running)",
        "error": last.get("error") if end == "failed" else None,
        "peak_rss_mb": last.get("peak_rss_mb") if end == "finished" else None,
    }


def stage_rows(store: ResultStore, events: Sequence[Event], spec: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """One row per stage of the run: state in the store and what this run did.

    Parameters
    ----------
    store
        The result store.
    events
        Events of the run.
    spec
        The resolved spec (``DIR/spec.json``), used for the stage order when
        the run log has no ``run_started`` event.

    Returns
    -------
    list of dict
        ``stage``, ``state`` (store state: complete / partial / not started),
        ``run`` (computed / up to date / failed / not reached), ``seconds``,
        ``computed``, ``skipped``, ``peak_rss_mb``, ``worker_peak_rss_mb``, ``error``.
    """
    by_stage: dict[str, dict[str, Any]] = {}
    for ev in events:
        if ev.get("stage") is not None and ev.get("event") != "block_done":
            by_stage.setdefault(str(ev["stage"]), {})[ev["event"]] = ev
    return [_stage_row(store, name, by_stage.get(name, {})) for name in _stage_order(store, events, spec or {})]


def _stage_order(store: ResultStore, events: Sequence[Event], spec: dict[str, Any]) -> list[str]:
    started = next((e for e in events if e.get("event") == "run_started"), None)
    if started and started.get("stages"):
        return [str(s) for s in started["stages"]]
    decls = [d for d in spec.get("stages") or [] if isinstance(d, dict) and d.get("name")]
    declared = [str(d["name"]) for d in decls]
    if declared and not any(d.get("type") == "convert" for d in decls):
        declared.insert(0, "convert")  # the spec loader adds it first when none is declared
    return declared or store.stage_names()


def _stage_row(store: ResultStore, name: str, evs: dict[str, Event]) -> dict[str, Any]:
    try:
        state = store.stage(name).status()["state"]
    except ValueError:
        state = "invalid name"
    fin, skip, fail = evs.get("stage_finished"), evs.get("stage_skipped"), evs.get("stage_failed")
    row: dict[str, Any] = {"stage": name, "state": state, "seconds": None, "computed": None, "skipped": None,
                           "peak_rss_mb": None, "worker_peak_rss_mb": None, "error": None}
    if fin is not None:
        row.update(run="computed", seconds=fin.get("seconds"), computed=fin.get("computed"),
                   skipped=fin.get("skipped"), peak_rss_mb=fin.get("peak_rss_mb"),
                   worker_peak_rss_mb=fin.get("worker_peak_rss_mb"))
    elif skip is not None:
        row.update(run="up to date", computed=0, skipped=skip.get("n_blocks"))
    elif fail is not None:
        row.update(run="failed", error=fail.get("error"))
    else:
        row["run"] = "running or interrupted" if "stage_started" in evs else "not reached"
    return row


# -- figures --------------------------------------------------------------------------------------


def cell_type_means(adata: Any, cell_type: str, top: int) -> pd.DataFrame:
    """Mean activity z-score per cell type of the ``top`` most variable signatures.

    Empty pseudobulk samples (obs ``empty``) are left out. Signatures are
    ranked by the variance across cell types of their cell-type means.

    Parameters
    ----------
    adata
        Activity AnnData: obs = samples, var = signatures, ``X`` = z-scores.
    cell_type
        obs column of the cell types.
    top
        Number of signatures kept.

    Returns
    -------
    pandas.DataFrame
        Cell types (rows, sorted) × signatures (columns, most variable first).
    """
    if cell_type not in adata.obs.columns:
        raise ValueError(f"obs column {cell_type!r} not in the activity samples; "
                         f"pass cell_type= one of {list(adata.obs.columns)}")
    frame = pd.DataFrame(np.asarray(adata.X, dtype=float), index=adata.obs_names, columns=adata.var_names)
    labels = adata.obs[cell_type].astype(str).to_numpy()
    if "empty" in adata.obs.columns:
        keep = ~adata.obs["empty"].to_numpy(dtype=bool)
        frame, labels = frame[keep], labels[keep]
    if frame.empty:
        raise ValueError("every activity sample is empty")
    means = frame.groupby(labels).mean().sort_index()
    order = means.var(axis=0).fillna(0.0).sort_values(ascending=False, kind="stable").index[:top]
    return means[order]


def volcano_hits(table: pd.DataFrame, n: int = N_LABELS) -> pd.DataFrame:
    """The ``n`` strongest rows of a differential table, with a ``label`` column.

    Rows are ranked by ``neg_log10_pval`` (descending), ties broken by
    ``|activity_diff|``; untested rows (missing p-value) are left out. The
    label is ``"feature (stratum)"``, strata joined by ``/``.
    """
    tested = table.dropna(subset=["neg_log10_pval", "activity_diff"])
    key = tested.assign(_abs=tested["activity_diff"].abs())
    hits = key.sort_values(["neg_log10_pval", "_abs"], ascending=False, kind="stable").head(n)
    return hits.drop(columns="_abs").assign(label=[_label(r, strata_columns(table)) for _, r in hits.iterrows()])


def strata_columns(table: pd.DataFrame) -> list[str]:
    """Columns of a differential table that name its strata (e.g. ``cell_type_l2``)."""
    return [c for c in table.columns if c not in _TABLE_COLUMNS and c != "label"]


def _label(row: pd.Series, strata: list[str]) -> str:
    stratum = "/".join(str(row[c]) for c in strata)
    return f"{row['feature']} ({stratum})" if stratum else str(row["feature"])


def heatmap_png(means: pd.DataFrame) -> bytes:
    """Heatmap of cell-type means, diverging colormap centred at 0, as PNG bytes."""
    n_rows, n_cols = means.shape
    fig = Figure(figsize=(max(5.0, 2.5 + 0.38 * n_cols), max(2.8, 1.6 + 0.42 * n_rows)), layout="constrained")
    ax = fig.add_subplot()
    values = means.to_numpy(dtype=float)
    vmax = float(np.nanmax(np.abs(values))) or 1.0
    im = ax.imshow(values, cmap="RdBu_r", vmin=-vmax, vmax=vmax, aspect="auto", interpolation="nearest")
    ax.set_xticks(range(n_cols), [str(c) for c in means.columns], rotation=90)
    ax.set_yticks(range(n_rows), [str(r) for r in means.index])
    ax.set_xlabel("signature")
    ax.set_ylabel("cell type")
    ax.set_title(f"Mean activity z-score, top {n_cols} signatures by variance across cell types")
    fig.colorbar(im, ax=ax, label="mean activity (z)", shrink=0.9)
    return _png(fig)


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
    ax.set_xlabel("activity difference (median group 1 − median group 2, z)")
    ax.set_ylabel("−log10 p-value")
    ax.set_title(title)
    ax.legend(loc="upper left", frameon=False, fontsize=8)
    top_y = float(tested["neg_log10_pval"].max()) if len(tested) else 1.0
    ax.set_ylim(0.0, top_y * 1.4 + 0.1)
    _place_labels(fig, ax, hits)
    return _png(fig)


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


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    FigureCanvasAgg(fig).print_png(buf, metadata={"Software": "cytodask"})
    return buf.getvalue()


# -- HTML -----------------------------------------------------------------------------------------


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _na(reason: str) -> str:
    return f'<p class="na">not available ({_e(reason)})</p>'


def _section(ident: str, title: str, body: str) -> str:
    return f'<section id="{_e(ident)}">\n<h2>{_e(title)}</h2>\n{body}\n</section>'


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    if isinstance(value, (float, np.floating)):
        if abs(value) >= 100:
            return f"{value:.0f}"
        return f"{value:.3g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"
    return str(value)


def _table(header: Iterable[str], rows: Iterable[Iterable[Any]], *, cls: str = "",
           numeric: Callable[[int], bool] = lambda i: False, row_attrs: Sequence[str] | None = None) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = []
    for k, row in enumerate(rows):
        cells = "".join(f'<td class="num">{_e(_fmt(v))}</td>' if numeric(i) else f"<td>{_e(_fmt(v))}</td>"
                        for i, v in enumerate(row))
        attrs = f" {row_attrs[k]}" if row_attrs else ""
        body.append(f"<tr{attrs}>{cells}</tr>")
    cls_attr = f' class="{_e(cls)}"' if cls else ""
    return f"<table{cls_attr}>\n<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(body) + "\n</tbody>\n</table>"


def _run_html(summary: dict[str, Any]) -> str:
    items = [("Run id", summary["run_id"]), ("Started (UTC)", summary["start"]),
             ("Duration", None if summary["seconds"] is None else _seconds(summary["seconds"])),
             ("Status", summary["status"]),
             ("Peak memory", None if summary["peak_rss_mb"] is None else f"{summary['peak_rss_mb']:.0f} MB")]
    if summary["error"]:
        items.append(("Error", summary["error"]))
    body = "".join(f"<dt>{_e(k)}</dt><dd>{_e(_fmt(v))}</dd>" for k, v in items)
    return f'<dl class="run">{body}</dl>'


def _stage_table_html(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return _na("no stage in the run log or the store")
    header = ["Stage", "State", "This run", "Seconds", "Blocks computed", "Blocks skipped",
              "Peak RSS (MB)", "Worker peak RSS (MB)"]
    keys = ["stage", "state", "run", "seconds", "computed", "skipped", "peak_rss_mb", "worker_peak_rss_mb"]
    cells = [[r[k] for k in keys] for r in rows]
    attrs = [f'data-stage="{_e(r["stage"])}"' + (' class="failed"' if r["run"] == "failed" else "") for r in rows]
    table = _table(header, cells, cls="stages", numeric=lambda i: i >= 3, row_attrs=attrs)
    errors = "".join(f"<li><b>{_e(r['stage'])}</b>: {_e(r['error'])}</li>" for r in rows if r["error"])
    return table + (f"\n<ul class=\"errors\">{errors}</ul>" if errors else "")


def _figure_or_na(store: ResultStore, stage: str | None, kind: str, render: Callable[[Path], str]) -> str:
    """Render a figure from a complete stage's data, or say why it is not available."""
    if stage is None:
        return _na(f"no {kind} stage in this run")
    data, why = _stage_data(store, stage)
    if data is None:
        return _na(why)
    try:
        return render(data)
    except Exception as e:
        return _na(f"stage {stage!r}: {type(e).__name__}: {e}")


def _img(png: bytes, alt: str, ident: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img id="{_e(ident)}" src="data:image/png;base64,{data}" alt="{_e(alt)}">'


def _heatmap_html(data: Path, cell_type: str, top: int) -> str:
    import anndata

    means = cell_type_means(anndata.read_zarr(data), cell_type, top)
    rows, cols = [str(r) for r in means.index], [str(c) for c in means.columns]
    alt = (f"Heatmap of mean activity z-scores: {len(rows)} cell types ({', '.join(rows)}) × "
           f"top {len(cols)} signatures by variance ({', '.join(cols)})")
    caption = (f"Mean activity z-score per {cell_type} over non-empty samples; the {len(cols)} signatures "
               f"with the largest variance across cell types (most variable first: {', '.join(cols[:5])}). "
               f"Red: higher activity, blue: lower; colour scale centred at 0.")
    values = _table(["cell type", *cols], [[r, *(f"{v:.2f}" for v in means.loc[r])] for r in means.index],
                    cls="values heatmap", numeric=lambda i: i > 0)
    return (f"<figure>{_img(heatmap_png(means), alt, 'heatmap')}<figcaption>{_e(caption)}</figcaption></figure>\n"
            f'<details open><summary>Plotted values</summary><div class="values">{values}</div></details>')


def _volcano_html(data: Path) -> str:
    from cytodask.differential.stage import read_table

    table = read_table(data)
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
    cols = ["feature", *strata, "activity_diff", "pvalue", "qvalue", "n_g1", "n_g2"]
    shown = hits[cols].assign(activity_diff=[f"{v:.2f}" for v in hits["activity_diff"]])
    values = _table(["rank", *cols], [[k + 1, *r] for k, r in enumerate(shown.itertuples(index=False))],
                    cls="values volcano", numeric=lambda i: i == 0 or i > len(strata) + 1)
    png = volcano_png(table, hits, f"Differential activity: {comparison}")
    return (f"<figure>{_img(png, alt, 'volcano')}<figcaption>{_e(caption)}</figcaption></figure>\n"
            f'<details open><summary>Top {len(hits)} hits</summary><div class="values">{values}</div></details>')


def _page(title: str, sections: list[str]) -> str:
    now = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n<h1>{_e(title)}</h1>\n"
            + "\n".join(sections)
            + f"\n<footer>Generated by cytodask.export.report at {_e(now)}.</footer>\n</body>\n</html>\n")


def _seconds(s: float) -> str:
    return f"{s:.1f} s" if s >= 1 else f"{s:.2f} s"


def _iso(t: float | None) -> str | None:
    if t is None:
        return None
    return _dt.datetime.fromtimestamp(float(t), tz=_dt.UTC).isoformat(timespec="seconds")
