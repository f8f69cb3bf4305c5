"""One self-contained HTML report per rebuild: run summary, stage table, and each stage's figures.

Every stage of the run that declares report sections
(:meth:`cytodask.core.stage.Stage.report_sections`: the activity heatmap, the
differential volcano, a correlation table, any plugin family's figures)
contributes them, in the spec's order; the report itself names no family.

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

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cytodask.core.atomic import atomic_path, read_json
from cytodask.core.config import Config
from cytodask.core.declarations import build_stages
from cytodask.core.events import Event, read_run_log
from cytodask.core.stage import Stage
from cytodask.core.store import ResultStore
from cytodask.export.report_html import (
    iso,
    not_available,
    page_html,
    run_html,
    section,
    section_html,
    stage_table_html,
)


def build_report(
    output_dir: str | os.PathLike[str],
    *,
    stages: Sequence[str] | None = None,
    cell_type: str | None = None,
    top: int = 20,
    path: str | os.PathLike[str] | None = None,
    activity_stage: str | None = None,
    differential_stage: str | None = None,
) -> Path:
    """Write the HTML report of the last run in result directory ``output_dir``.

    Parameters
    ----------
    output_dir
        Result store of a rebuild (``cytodask rebuild SPEC --output DIR``).
    stages
        Stages whose figures to show, in this order (default: every stage of the
        run's spec that declares report sections). A named stage that did not
        run is shown as "not available".
    cell_type
        obs column of the activity samples giving the heatmap rows (default: each
        activity stage's first grouping column).
    top
        Number of signatures in activity heatmaps: those with the largest variance
        of the cell-type means.
    path
        Where to write the page (default ``DIR/report.html``).
    activity_stage, differential_stage
        Deprecated spellings: stages shown in addition to the default ones.

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
    built, why = _build_stages(spec)
    shown = list(stages) if stages is not None else [n for n, st in built.items() if _has_sections(st)]
    shown += [n for n in (activity_stage, differential_stage) if n and n not in shown]
    title = f"CytoDask run report: {spec.get('name') or root.name}"
    sections = [
        section("run", "Run", run_html(run_summary(events))),
        section("stages", "Stages", stage_table_html(stage_rows(store, events, spec))),
    ]
    options = {"cell_type": cell_type, "top": top}
    used: set[str] = set()
    for name in shown:
        sections.append(_stage_sections(store, name, built.get(name), options, used))
    if not shown:
        sections.append(section("figures", "Figures", not_available(why or "no stage with figures in this run")))
    page = page_html(title, sections)
    target = Path(path) if path is not None else root / "report.html"
    with atomic_path(target) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return target


# -- inputs ---------------------------------------------------------------------------------------


def _build_stages(spec: dict[str, Any]) -> tuple[dict[str, Stage], str]:
    """The run's stage objects by name (convert left out: it needs the source), or why there are none."""
    if not spec.get("stages"):
        return {}, ""
    try:
        built = build_stages(spec["stages"], spec_path=Path(spec.get("path", "spec.toml")),
                             config=Config.from_dict(spec.get("config") or {}), source=lambda: None,
                             skip_types=("convert",))
    except Exception as e:  # a report never fails on a spec it cannot rebuild; it says why
        return {}, f"the run's spec cannot be read back: {type(e).__name__}: {e}"
    return {st.name: st for st in built}, ""


def _has_sections(stage: Stage) -> bool:
    return type(stage).report_sections is not Stage.report_sections


def _stage_sections(store: ResultStore, name: str, stage: Stage | None, options: dict[str, Any],
                    used: set[str]) -> str:
    """The sections of one stage, or one "not available" section saying why."""
    heading = f"{stage.type_name or type(stage).__name__}: {name}" if stage is not None else name
    data, why = _stage_data(store, name)
    if data is None or stage is None:
        return section(f"stage-{name}", heading, not_available(why or f"stage {name!r} is not in the run's spec"))
    try:
        parts = stage.report_sections(data, options)
    except Exception as e:
        return section(f"stage-{name}", heading, not_available(f"stage {name!r}: {type(e).__name__}: {e}"))
    html_parts = []
    for sec in parts:
        ident = sec.ident or "".join(ch if ch.isalnum() else "-" for ch in sec.title.lower())
        ident = ident if ident not in used else f"{ident}-{name}"
        used.add(ident)
        html_parts.append(section(f"section-{ident}", f"{sec.title} ({name})", section_html(sec, ident)))
    return "\n".join(html_parts) or section(f"stage-{name}", heading, not_available(f"stage {name!r} reported nothing"))


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
        "start": iso(first.get("time")),
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
        ``computed``, ``skipped``, ``peak_rss_mb`` (this process's peak during the stage,
        :class:`cytodask.core.stage_memory.StageMemory`), ``worker_peak_rss_mb`` (the largest
        worker's peak during the stage), ``error``.
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
