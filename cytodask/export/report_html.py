"""HTML of the run report: escaping, tables, sections, figures and the page (no external assets)."""

from __future__ import annotations

import base64
import datetime as _dt
import html
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from cytodask.core.report import ReportSection

CSS = """
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


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def not_available(reason: str) -> str:
    return f'<p class="na">not available ({esc(reason)})</p>'


def section(ident: str, title: str, body: str) -> str:
    return f'<section id="{esc(ident)}">\n<h2>{esc(title)}</h2>\n{body}\n</section>'


def fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    if isinstance(value, (float, np.floating)):
        if abs(value) >= 100:
            return f"{value:.0f}"
        return f"{value:.3g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"
    return str(value)


def html_table(header: Iterable[str], rows: Iterable[Iterable[Any]], *, cls: str = "",
           numeric: Callable[[int], bool] = lambda i: False, row_attrs: Sequence[str] | None = None) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = []
    for k, row in enumerate(rows):
        cells = "".join(f'<td class="num">{esc(fmt(v))}</td>' if numeric(i) else f"<td>{esc(fmt(v))}</td>"
                        for i, v in enumerate(row))
        attrs = f" {row_attrs[k]}" if row_attrs else ""
        body.append(f"<tr{attrs}>{cells}</tr>")
    cls_attr = f' class="{esc(cls)}"' if cls else ""
    return f"<table{cls_attr}>\n<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(body) + "\n</tbody>\n</table>"


def run_html(summary: dict[str, Any]) -> str:
    items = [("Run id", summary["run_id"]), ("Started (UTC)", summary["start"]),
             ("Duration", None if summary["seconds"] is None else seconds_text(summary["seconds"])),
             ("Status", summary["status"]),
             ("Peak memory", None if summary["peak_rss_mb"] is None else f"{summary['peak_rss_mb']:.0f} MB")]
    if summary["error"]:
        items.append(("Error", summary["error"]))
    body = "".join(f"<dt>{esc(k)}</dt><dd>{esc(fmt(v))}</dd>" for k, v in items)
    return f'<dl class="run">{body}</dl>'


def stage_table_html(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return not_available("no stage in the run log or the store")
    header = ["Stage", "State", "This run", "Seconds", "Blocks computed", "Blocks skipped",
              "Stage peak RSS (MB)", "Stage peak RSS, workers (MB)"]
    keys = ["stage", "state", "run", "seconds", "computed", "skipped", "peak_rss_mb", "worker_peak_rss_mb"]
    cells = [[r[k] for k in keys] for r in rows]
    attrs = [f'data-stage="{esc(r["stage"])}"' + (' class="failed"' if r["run"] == "failed" else "") for r in rows]
    table = html_table(header, cells, cls="stages", numeric=lambda i: i >= 3, row_attrs=attrs)
    errors = "".join(f"<li><b>{esc(r['stage'])}</b>: {esc(r['error'])}</li>" for r in rows if r["error"])
    return table + (f"\n<ul class=\"errors\">{errors}</ul>" if errors else "")


def img(png: bytes, alt: str, ident: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img id="{esc(ident)}" src="data:image/png;base64,{data}" alt="{esc(alt)}">'


def section_html(sec: ReportSection, ident: str) -> str:
    """A figure with its caption, then its values; or the caption and the table alone."""
    out = []
    if sec.figure is not None:
        out.append(f"<figure>{img(sec.figure, sec.alt, ident)}<figcaption>{esc(sec.caption)}</figcaption></figure>")
    elif sec.caption and sec.caption != sec.table_caption:
        out.append(f"<p>{esc(sec.caption)}</p>")
    if sec.table is not None:
        t = sec.table
        table = html_table([str(c) for c in t.columns], t.itertuples(index=False), cls=f"values {ident}",
                       numeric=lambda i: i >= sec.numeric_from)
        out.append(f'<details open><summary>{esc(sec.table_caption)}</summary><div class="values">{table}</div>'
                   f"</details>")
    return "\n".join(out)


def page_html(title: str, sections: list[str]) -> str:
    now = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<h1>{esc(title)}</h1>\n"
            + "\n".join(sections)
            + f"\n<footer>Generated by cytodask.export.report at {esc(now)}.</footer>\n</body>\n</html>\n")


def seconds_text(s: float) -> str:
    return f"{s:.1f} s" if s >= 1 else f"{s:.2f} s"


def iso(t: float | None) -> str | None:
    if t is None:
        return None
    return _dt.datetime.fromtimestamp(float(t), tz=_dt.UTC).isoformat(timespec="seconds")
