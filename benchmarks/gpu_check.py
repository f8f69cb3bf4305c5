"""``python -m benchmarks.gpu_check [--dry-run | --no-gpu | --setup-failed WHY] --out FILE.json``: GPU figures, one JSON.

Run by ``benchmarks/gpu_check.sh`` after ``pytest -m gpu``. Workloads (:mod:`benchmarks.gpu_workloads`)
run in order within ``--budget`` seconds; one that fails records its error and the others still run.
``--dry-run`` runs the same code on NumPy at toy sizes (checks the script and the JSON on any machine);
``--no-gpu`` writes the JSON saying no device was seen, and measures nothing; ``--setup-failed WHY`` likewise
says why the GPU machine could not run the check (standard library only: nothing else may import).

JSON (``schema`` = :data:`SCHEMA`): ``status`` (``ok``, ``partial``, ``no_gpu``, ``setup_failed``, ``dry_run``; ``running``
while it measures: the file is rewritten after every workload, so a run stopped at its time limit keeps
the figures it took),
``backend``, ``device`` (name, memory, CuPy/CUDA versions), ``sizes``, ``pytest`` (exit code and
counts from its JUnit XML), one object per workload in :data:`WORKLOADS` (seconds are medians of
synchronised runs after a warm-up), ``errors`` and ``skipped`` (name → reason), ``total_seconds``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import sys
import time
import traceback
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

SCHEMA = "cytodask.gpu_check/1"
WORKLOADS = ("gemm", "activity_analytic", "activity_permutation", "pseudobulk", "wilcoxon")
MIN_SECONDS = {"gemm": 5, "activity_analytic": 60, "activity_permutation": 40, "pseudobulk": 20, "wilcoxon": 20}


def device_info(xp: ModuleType) -> dict[str, Any]:
    if xp.__name__ == "numpy":
        return {"name": f"CPU ({platform.machine()})", "numpy": xp.__version__}
    props = xp.cuda.runtime.getDeviceProperties(0)
    return {"name": props["name"].decode(), "memory_bytes": int(props["totalGlobalMem"]), "cupy": xp.__version__,
            "cuda_runtime": int(xp.cuda.runtime.runtimeGetVersion()),
            "cuda_driver": int(xp.cuda.runtime.driverGetVersion())}


def pytest_summary(rc: int | None, xml: str | None) -> dict[str, Any]:
    """The exit code of ``pytest -m gpu`` and the counts of its JUnit XML (when it wrote one)."""
    out: dict[str, Any] = {"rc": rc}
    if xml and Path(xml).is_file():
        root = ET.parse(xml).getroot()
        suite = root if root.tag == "testsuite" else root.find("testsuite")
        if suite is not None:
            for key in ("tests", "failures", "errors", "skipped"):
                out[key] = int(suite.get(key, 0))
            out["failed_tests"] = [f"{c.get('classname')}::{c.get('name')}" for c in suite.iter("testcase")
                                   if c.find("failure") is not None or c.find("error") is not None]
    return out


def run(xp: ModuleType, sizes: dict[str, int], budget: float,
        progress: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Every workload within ``budget`` seconds: ``{name: figures}``, ``errors`` and ``skipped``.

    ``progress`` gets the figures so far after every workload (the JSON is rewritten then: a run
    stopped by its time limit keeps what it measured).
    """
    import numpy as np

    from benchmarks import gpu_workloads as w

    start = time.perf_counter()
    figures: dict[str, Any] = {"errors": {}, "skipped": {}}
    state: dict[str, Any] = {}

    def blocks() -> list[Any]:
        if "blocks" not in state:
            n = sizes["cells"] // sizes["block"]
            t0 = time.perf_counter()
            state["blocks"] = [w.cell_block(xp, sizes["block"], sizes["genes"], sizes["per_cell"], seed=b)
                               for b in range(n)]
            w.sync(xp)
            figures["data_seconds"] = time.perf_counter() - t0
        return state["blocks"]

    steps = {
        "gemm": lambda: w.gemm_rate(xp, sizes),
        "activity_analytic": lambda: w.activity_analytic(xp, sizes, blocks()),
        "activity_permutation": lambda: w.activity_permutation(xp, sizes, blocks(), figures["gemm"]),
        "pseudobulk": lambda: w.pseudobulk(xp, sizes, blocks()),
        "wilcoxon": lambda: w.wilcoxon(xp, sizes),
    }
    for name in WORKLOADS:
        left = budget - (time.perf_counter() - start)
        if xp is not np and left < MIN_SECONDS[name]:
            figures["skipped"][name] = f"{left:.0f} s of the budget left, {MIN_SECONDS[name]} s needed"
            continue
        if name == "activity_permutation" and "gemm" not in figures:
            figures["skipped"][name] = "no GEMM rate to take the floor from"
            continue
        try:
            figures[name] = steps[name]()
        except Exception as e:  # one failure must not lose the other figures
            figures["errors"][name] = f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=8)}"
        print(f"gpu_check: {name}: {'error' if name in figures['errors'] else 'done'} "
              f"({time.perf_counter() - start:.1f} s)", file=sys.stderr, flush=True)
        if progress is not None:
            progress(figures)
    return figures


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.gpu_check", description=__doc__.splitlines()[0])
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="the same code on NumPy at toy sizes (any machine)")
    mode.add_argument("--no-gpu", action="store_true", help="write the JSON saying no GPU was seen; measure nothing")
    mode.add_argument("--setup-failed", metavar="WHY", help="write the JSON saying why the setup failed; measure nothing")
    p.add_argument("--out", required=True, help="the JSON file to write")
    p.add_argument("--budget", type=float, default=240.0, help="seconds for all workloads (default 240)")
    p.add_argument("--pytest-rc", type=int, default=None, help="exit code of pytest -m gpu")
    p.add_argument("--pytest-xml", default=None, help="its JUnit XML")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)

    def write(status: str) -> None:
        report["status"] = status
        report["total_seconds"] = time.perf_counter() - t0
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(json.dumps(report, indent=2, default=float) + "\n")
        tmp.replace(out)

    report: dict[str, Any] = {"schema": SCHEMA, "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                              "python": platform.python_version(),
                              "pytest": pytest_summary(args.pytest_rc, args.pytest_xml)}
    if args.no_gpu or args.setup_failed:
        report.update(status="no_gpu" if args.no_gpu else "setup_failed", backend=None, device=None, sizes=None,
                      errors={"setup": args.setup_failed} if args.setup_failed else {}, skipped={})
        code = 2 if args.no_gpu else 3
    else:
        import numpy as np

        from benchmarks import gpu_workloads as w

        if args.dry_run:
            xp, sizes = np, w.DRY
        else:
            from cytodask.core.backend import resolve_backend

            xp, sizes = resolve_backend("cupy"), w.FULL  # raises with the fix when no GPU is usable
        report.update(backend=xp.__name__, device=device_info(xp), sizes=sizes)
        write("running")  # rewritten after every workload: a run killed at its time limit keeps its figures
        report.update(run(xp, sizes, args.budget, progress=lambda f: (report.update(f), write("running"))))
        done = all(k in report for k in WORKLOADS)
        report["status"] = "dry_run" if args.dry_run else ("ok" if done else "partial")
        code = 0 if done else 1
    write(report["status"])
    print(f"gpu_check: {report['status']}; figures in {out}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
