"""``python -m benchmarks --pipeline activity,correlation,differential --dataset demo [--gpu 0] [--record]``.

Runs cytodask and the reference tool on the same data in one run, prints the
ratios (reference time / cytodask time) and with ``--record`` appends them to
``benchmarks/RESULTS.md`` with the machine, date and command.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

import psutil

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
PIPELINES = ("activity", "activity-memory", "correlation", "differential", "aggregation", "rebuild", "ingest")


def machine() -> str:
    gpu = ""
    try:
        import cupy

        props = cupy.cuda.runtime.getDeviceProperties(0)
        gpu = f", GPU {props['name'].decode()}"
    except Exception:
        pass
    return (f"{platform.machine()} {psutil.cpu_count(logical=True)} CPUs, "
            f"{psutil.virtual_memory().total / 2**30:.0f} GiB, Python {platform.python_version()}{gpu}")


def run_pipeline(name: str, dataset: str, gpu: int | None) -> list[dict[str, Any]]:
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu)
    if name == "activity":
        from benchmarks.bench_activity import run

        return run(dataset)
    if name == "activity-memory":
        from benchmarks.bench_memory import run as run_memory

        return run_memory(dataset)
    if name == "rebuild":
        from benchmarks.bench_rebuild import run as run_rebuild

        return run_rebuild(dataset)
    if name == "ingest":
        from benchmarks.bench_ingest import run as run_ingest

        return run_ingest(dataset)
    if name == "aggregation":
        from benchmarks.bench_aggregation import run as run_aggregation

        return run_aggregation(dataset)
    return [r for r in _stats_rows(dataset) if r.get("pipeline") == name]


@functools.cache
def _stats_rows(dataset: str) -> tuple[dict[str, Any], ...]:
    """bench_stats runs the differential and correlation rows together: once per dataset."""
    from benchmarks.bench_stats import run as run_stats

    return tuple(run_stats(dataset))


def fmt(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def record(rows: list[dict[str, Any]], cmd: str) -> None:
    """Append ``rows`` to RESULTS.md under today's date, the command and this machine."""
    cols = ["pipeline", "task", "cytodask_s", "reference", "reference_s", "ratio"]
    extra = sorted({k for r in rows for k in r} - set(cols))
    today = dt.date.today().isoformat()
    lines = [f"\n### {today} — `{cmd}`\n", f"Machine: {machine()}\n",
             "| pipeline | task | cytodask (s) | reference | reference (s) | ratio | details |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        details = ", ".join(f"{k}={fmt(r[k])}" for k in extra if r.get(k) not in (None, ""))
        lines.append(f"| {r['pipeline']} | {r['task']} | {fmt(r['cytodask_s'])} | {r['reference']} | "
                     f"{fmt(r.get('reference_s'))} | {fmt(r.get('ratio'))} | {details} |")
    with open(RESULTS, "a") as fh:
        fh.write("\n".join(lines) + "\n")
    print(f"recorded in {RESULTS}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    p.add_argument("--pipeline", default="activity", help=f"comma-separated: {', '.join(PIPELINES)}")
    p.add_argument("--dataset", default="demo", help="demo | synthetic-100k | synthetic-1m | synthetic-1m-5k | synthetic-2m")
    p.add_argument("--gpu", type=int, default=None, help="GPU ordinal to run the CuPy path on")
    p.add_argument("--record", action="store_true", help="append the results to benchmarks/RESULTS.md")
    p.add_argument("--json", default=None, help="also write the rows as JSON to this path")
    args = p.parse_args(argv)
    names = [n.strip() for n in args.pipeline.split(",") if n.strip()]
    bad = [n for n in names if n not in PIPELINES]
    if bad:
        p.error(f"unknown pipeline(s) {bad}; choose from {list(PIPELINES)}")
    rows: list[dict[str, Any]] = []
    for name in names:
        got = run_pipeline(name, args.dataset, args.gpu)
        if not got:
            print(f"{name}: no benchmark rows (not implemented for this pipeline yet)", file=sys.stderr)
        rows += got
    cols = ["pipeline", "task", "cytodask_s", "reference", "reference_s", "ratio"]
    extra = sorted({k for r in rows for k in r} - set(cols))
    print(" | ".join(cols + extra))
    for r in rows:
        print(" | ".join(fmt(r.get(c)) for c in cols + extra))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1, default=str))
    if args.record:
        record(rows, "python -m benchmarks " + " ".join(argv if argv is not None else sys.argv[1:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
