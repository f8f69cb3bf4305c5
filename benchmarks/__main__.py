"""``python -m benchmarks --pipeline activity,correlation,differential --dataset demo [--gpu 0] [--record]``.

Runs cytodask and the reference tool on the same data in one run, prints the
ratios (reference time / cytodask time) and with ``--record`` appends them to
``benchmarks/RESULTS.md`` with the machine, date and command. Every row says
its backend, the threads of both sides, whether it is like for like, the BLAS
pools and peak memory of both processes (see :mod:`benchmarks.common`), and a
``key`` that names the measurement across runs: the README's table cites rows
by key (:mod:`benchmarks.readme_table`), the newest row of a key superseding
older ones.

``--gpu N`` runs the CuPy path on device ``N``; it is refused for pipelines
whose benchmark has no GPU path (the GPU figures come from
``benchmarks/gpu_check.sh``).
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
PIPELINES = ("activity", "activity-memory", "correlation", "differential", "aggregation", "rebuild", "ingest",
             "claims", "scale")
GPU_PIPELINES = ("activity",)  # benchmarks whose code takes the backend; the others run NumPy only


def machine() -> str:
    gpu = ""
    try:
        import cupy

        props = cupy.cuda.runtime.getDeviceProperties(0)
        gpu = f", GPU {props['name'].decode()}"
    except Exception:
        pass
    return (f"{platform.machine()} {psutil.cpu_count(logical=True)} CPUs, "
            f"{psutil.virtual_memory().total / 2**30:.0f} GiB, Python {platform.python_version()}{gpu}; "
            f"load average {os.getloadavg()[0]:.1f} when recorded")


def run_pipeline(name: str, dataset: str, gpu: int | None) -> list[dict[str, Any]]:
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu)
    if name == "activity":
        from benchmarks.bench_activity import run

        return run(dataset, backend="cupy" if gpu is not None else "numpy")
    if name == "activity-memory":
        from benchmarks.bench_memory import run as run_memory

        return run_memory(dataset)
    if name == "rebuild":
        from benchmarks.bench_rebuild import run as run_rebuild

        return run_rebuild(dataset)
    if name == "ingest":
        from benchmarks.bench_ingest import run as run_ingest

        return run_ingest(dataset)
    if name == "scale":
        from benchmarks.bench_scale import run as run_scale

        return run_scale(dataset)
    if name == "claims":
        from benchmarks.bench_claims import run as run_claims

        return run_claims(dataset)
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


COLUMNS = ["key", "pipeline", "task", "cytodask_s", "reference", "reference_s", "ratio", "threads",
           "reference_threads", "like_for_like"]


def record(rows: list[dict[str, Any]], cmd: str) -> None:
    """Append ``rows`` to RESULTS.md under today's date, the command and this machine.

    Rows whose ``table`` is ``"method"`` (a different method on each side) go in
    their own table after the like-for-like one.
    """
    today = dt.date.today().isoformat()
    lines = [f"\n### {today} — `{cmd}`\n", f"Machine: {machine()}\n"]
    for table, title in (("implementation", ""), ("method", "Different methods (not an implementation speed):"),
                         ("self", "cytodask against itself:")):
        part = [r for r in rows if r.get("table", "implementation") == table]
        if not part:
            continue
        extra = sorted({k for r in part for k in r} - set(COLUMNS) - {"table"})
        if title:
            lines.append(f"\n{title}\n")
        lines += ["| key | pipeline | task | cytodask (s) | reference | reference (s) | ratio | threads (ours / ref) "
                  "| like for like | details |", "|---|---|---|---|---|---|---|---|---|---|"]
        for r in part:
            details = ", ".join(f"{k}={fmt(r[k])}" for k in extra if r.get(k) not in (None, ""))
            lines.append(f"| {r.get('key', '—')} | {r['pipeline']} | {r['task']} | {fmt(r['cytodask_s'])} | "
                         f"{r['reference']} | {fmt(r.get('reference_s'))} | {fmt(r.get('ratio'))} | "
                         f"{fmt(r.get('threads'))} / {fmt(r.get('reference_threads'))} | "
                         f"{'yes' if r.get('like_for_like') else 'no'} | {details} |")
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
    no_gpu = [n for n in names if n not in GPU_PIPELINES]
    if args.gpu is not None and no_gpu:
        p.error(f"--gpu: the benchmark of {no_gpu} has no GPU path (its code runs NumPy); run it without --gpu, "
                f"or use benchmarks/gpu_check.sh for the GPU figures (GPU benchmarks here: {list(GPU_PIPELINES)})")
    rows: list[dict[str, Any]] = []
    for name in names:
        got = run_pipeline(name, args.dataset, args.gpu)
        if not got:
            print(f"{name}: no benchmark rows (not implemented for this pipeline yet)", file=sys.stderr)
        rows += got
    extra = sorted({k for r in rows for k in r} - set(COLUMNS))
    print(" | ".join(COLUMNS + extra))
    for r in rows:
        print(" | ".join(fmt(r.get(c)) for c in COLUMNS + extra))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1, default=str))
    if args.record:
        record(rows, "python -m benchmarks " + " ".join(argv if argv is not None else sys.argv[1:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
