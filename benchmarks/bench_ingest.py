"""Conversion benchmark: ``cytodask.ingest.convert`` vs ``anndata.read_h5ad`` + ``write_zarr``.

The obvious alternative to streaming conversion is to read the whole ``.h5ad``
and write it as Zarr with anndata. Both run on the same synthetic ``.h5ad``
(written block by block by the demo generator), each in a fresh process whose
peak RSS (VmHWM) is reported; throughput is cells per second. The reference
runs under an address-space limit (``REFERENCE_AS_GB``) so that at sizes where
it cannot fit it fails with MemoryError instead of swapping the machine; that
failure is reported as such.

Run ``python -m benchmarks --pipeline ingest --dataset synthetic-100k`` (or
``python -m benchmarks.bench_ingest synthetic-100k synthetic-1m``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.datasets import CACHE, spec_for

REFERENCE_AS_GB = 20  # address-space cap for the in-memory reference (the machine has 24 GB)

_WORKER = r'''
import json, resource, sys, time, warnings
warnings.filterwarnings("ignore")
tool, src, out, cap_gb = sys.argv[1:5]
if tool == "anndata":
    cap = int(float(cap_gb) * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
def hwm():
    return int(next(l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM"))) / 1024
res = {}
t = time.perf_counter()
try:
    if tool == "cytodask":
        from cytodask.ingest import LocalH5ADSource, convert
        convert(LocalH5ADSource(src), out, batch_size=10_000, fsync=False)
    else:
        import anndata as ad
        a = ad.read_h5ad(src)
        a.write_zarr(out)
    res["seconds"] = time.perf_counter() - t
except MemoryError:
    res["error"] = f"MemoryError under a {cap_gb} GB address-space limit after {time.perf_counter() - t:.0f} s"
res["peak_rss_mb"] = hwm()
json.dump(res, open(out + ".json", "w"))
'''


def _h5ad(dataset: str) -> Path:
    """The dataset as ``.h5ad`` (cached), written block by block (flat memory at any size)."""
    from cytodask.demo import write_h5ad

    path = CACHE / f"{dataset}.h5ad"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.h5ad")
        write_h5ad(spec_for(dataset), tmp, batch_size=10_000)
        tmp.replace(path)
    return path


def _warm(path: Path) -> None:
    """Read ``path`` once so that it sits in the page cache."""
    with open(path, "rb") as f:
        while f.read(1 << 24):
            pass


def _run(tool: str, src: Path, out: Path) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.run([sys.executable, "-c", _WORKER, tool, str(src), str(out), str(REFERENCE_AS_GB)],
                          capture_output=True, text=True, env=env, check=False)
    result = Path(f"{out}.json")
    if not result.exists():
        return {"error": (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]}
    return json.loads(result.read_text())


def run(dataset: str) -> list[dict[str, Any]]:
    """One row: cytodask conversion vs anndata read + write_zarr on ``dataset``."""
    n = spec_for(dataset).n_cells
    src = _h5ad(dataset)
    size_mb = src.stat().st_size / 2**20
    with tempfile.TemporaryDirectory(dir=CACHE) as d:
        _warm(src)  # both tools read from the page cache (the reference runs second otherwise benefits)
        ours = _run("cytodask", src, Path(d) / "cytodask.zarr")
        shutil.rmtree(Path(d) / "cytodask.zarr", ignore_errors=True)
        _warm(src)
        ref = _run("anndata", src, Path(d) / "anndata.zarr")
    row: dict[str, Any] = {
        "pipeline": "ingest", "task": f"convert .h5ad ({size_mb:,.0f} MB) → Zarr, {n:,} cells × 20,000 genes",
        "cytodask_s": ours.get("seconds"), "reference": "anndata.read_h5ad + write_zarr",
        "reference_s": ref.get("seconds"),
        "cells_per_s": n / ours["seconds"] if ours.get("seconds") else None,
        "reference_cells_per_s": n / ref["seconds"] if ref.get("seconds") else None,
        "peak_rss_mb": ours.get("peak_rss_mb"), "reference_peak_rss_mb": ref.get("peak_rss_mb"),
    }
    row["ratio"] = row["reference_s"] / row["cytodask_s"] if row["reference_s"] and row["cytodask_s"] else None
    notes = [f"{who}: {res['error']}" for who, res in (("cytodask", ours), ("reference", ref)) if "error" in res]
    if notes:
        row["note"] = "; ".join(notes)
    return [row]


def main(argv: list[str] | None = None) -> int:
    for dataset in (argv if argv is not None else sys.argv[1:]) or ["synthetic-100k"]:
        t = time.perf_counter()
        for row in run(dataset):
            print(json.dumps(row))
        print(f"# {dataset}: {time.perf_counter() - t:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
