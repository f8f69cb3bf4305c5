"""An atlas rebuild at scale: per-stage throughput, memory of the client and of every worker, disk, rerun.

``python -m benchmarks --pipeline scale --dataset synthetic-2m`` (or
``python -m benchmarks.bench_scale synthetic-1m synthetic-2m``) runs a
CIMA-shaped synthetic atlas (the demo generator with 100 donors, one sample
each, 20,000 genes: donors with age/BMI/sex and disease status, a three-level
cell-type hierarchy) through ``cytodask rebuild`` on a LocalCluster:

convert → pseudobulk (cell type L2 × sample) → CytoSig on the pseudobulk →
single-cell SecAct activity (closed form) on every cell → disease vs healthy →
export (pseudobulk activity and the differential table).

CytoSig's permutation test (n_rand = 1000) is timed on a stated subsample of
cells (the first ``PERMUTATION_CELLS`` of the store) with ``infer``, in the
client process, after the rebuild.

One run measures, one after another: 1 worker × 1 thread against 2 workers ×
1 thread (a second core) at 100k cells in blocks of 10,000 (the scaling with
workers); the reference size (1M for ``synthetic-2m``) and the dataset, each on
2 workers (memory flatness: the worker peak per stage, size against size).

A sampler thread reads the resident memory of the ``cytodask rebuild``
process (the client) and of each of its descendants (nannies and workers)
every 0.25 s; the run log's stage start/finish times attribute the samples to
stages. Disk written is the size of each stage's folder. The unchanged rerun
is the same command again.

Sizes on disk, per million cells: the .h5ad ~12.3 GiB (cached under
``benchmarks/out/data``), the rebuild's output 19.3 GiB (atlas store 2.7, the
single-cell SecAct z, beta, se and p 16.5). Each output is deleted once
measured (the dataset's after the permutation test); when the dataset's output
would not fit, the other sizes' cached .h5ad are deleted first (said in the JSON).
synthetic-2m needs ~67 GiB free with no cache (~42 GiB with its .h5ad cached),
synthetic-5m ~165 GiB.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import psutil

from benchmarks.common import blas, cores, row
from benchmarks.datasets import CACHE

REPO = Path(__file__).resolve().parents[1]
SECACT = REPO.parent / "shared" / "data" / "signatures" / "SecAct.tsv.gz"
SIZES = {"synthetic-10k": 10_000, "synthetic-100k": 100_000, "synthetic-1m": 1_000_000, "synthetic-2m": 2_000_000,
         "synthetic-5m": 5_000_000}
N_DONORS = 100
PERMUTATION_CELLS = 20_000
BATCH = 20_000
#: Disk written by one rebuild per million cells (atlas store 2.7 + single-cell SecAct 16.5, GiB; measured at 1M).
OUTPUT_GIB_PER_MILLION = 19.3

SPEC = """
[atlas]
name = "scale"
[config]
batch_size = {batch}
cluster = "local"
n_workers = {workers}
threads_per_worker = {threads}
dashboard_address = ":0"
[source]
path = "{h5ad}"
[[stages]]
name = "pseudobulk"
type = "pseudobulk"
inputs = ["convert"]
by = ["cell_type_l2", "sample"]
carry = ["disease", "donor", "age", "BMI", "sex", "cell_type_l1"]
min_cells = 10
[[stages]]
name = "activity"
type = "activity"
inputs = ["pseudobulk"]
signature = "CytoSig"
[[stages]]
name = "sc_secact"
type = "activity"
inputs = ["convert"]
signature = "{secact}"
layer = "X"
method = "analytic"
[[stages]]
name = "disease_vs_healthy"
type = "differential"
inputs = ["activity"]
group_col = "disease"
group1 = "disease"
group2 = "healthy"
strata = ["cell_type_l2"]
[[stages]]
name = "export"
type = "export"
inputs = ["activity", "disease_vs_healthy"]
cell_type = "cell_type_l2"
formats = ["parquet"]
"""


def atlas_h5ad(dataset: str, cache: Path = CACHE) -> Path:
    """The dataset's .h5ad (cached; written block by block, flat memory)."""
    from cytodask.demo import SyntheticAtlasSpec, write_h5ad

    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"scale-{dataset}.h5ad"
    if not path.exists():
        tmp = path.with_suffix(".tmp.h5ad")
        write_h5ad(SyntheticAtlasSpec(n_cells=SIZES[dataset], n_genes=20_000, n_donors=N_DONORS, seed=0), tmp,
                   batch_size=10_000)
        tmp.replace(path)
    return path


class TreeSampler:
    """Peak RSS per process of a process tree, sampled with timestamps."""

    def __init__(self, pid: int, interval: float = 0.25) -> None:
        self.root = psutil.Process(pid)
        self.interval = interval
        self.samples: list[tuple[float, int, int]] = []  # (time, pid, rss)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.time()
            try:
                procs = [self.root, *self.root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            for p in procs:
                try:
                    self.samples.append((now, p.pid, p.memory_info().rss))
                except psutil.NoSuchProcess:
                    pass
            self._stop.wait(self.interval)

    def start(self) -> TreeSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def peaks(self, t0: float, t1: float) -> tuple[float, dict[int, float]]:
        """(client peak GiB, {worker pid: peak GiB}) between two times."""
        client, workers = 0, defaultdict(int)
        for t, pid, rss in self.samples:
            if t0 <= t <= t1:
                if pid == self.root.pid:
                    client = max(client, rss)
                else:
                    workers[pid] = max(workers[pid], rss)
        return client / 2**30, {p: v / 2**30 for p, v in workers.items()}


def _du(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**30 if path.exists() else 0.0


def _rebuild(spec: Path, out: Path) -> tuple[float, TreeSampler]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "cytodask.cli", "rebuild", str(spec), "--output", str(out), "-q"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sampler = TreeSampler(proc.pid).start()
    _, err = proc.communicate()
    sampler.stop()
    if proc.returncode != 0:
        raise RuntimeError(f"rebuild failed ({proc.returncode}):\n{err[-4000:]}")
    return time.perf_counter() - t, sampler


def _stage_times(out: Path) -> dict[str, tuple[float, float]]:
    from cytodask.core.events import read_run_log

    events = read_run_log(out / "run-log.jsonl")
    run_id = [e for e in events if e["event"] == "run_started"][-1]["run_id"]
    start: dict[str, float] = {}
    times: dict[str, tuple[float, float]] = {}
    for e in events:
        if e.get("run_id") != run_id or "stage" not in e:
            continue
        if e["event"] == "stage_started":
            start[e["stage"]] = e["time"]
        elif e["event"] == "stage_finished" and e["stage"] in start:
            times[e["stage"]] = (start[e["stage"]], e["time"])
    return times


def run_size(dataset: str, workers: int, work: Path, *, signature: str | Path = SECACT,
             cache: Path = CACHE, threads: int | None = None, batch: int = BATCH, keep: bool = False
             ) -> dict[str, Any]:
    """One full rebuild and one unchanged rerun of ``dataset`` on ``workers`` workers.

    ``threads`` per worker (default: the cores split between the workers); the output is
    deleted after measuring unless ``keep`` (the single-cell SecAct output is ~16.5 GiB per 1M cells).
    """
    n = SIZES[dataset]
    h5ad = atlas_h5ad(dataset, cache)
    threads = threads or max(1, cores() // workers)
    tag = f"{dataset}-{workers}w{threads}t-b{batch}"
    spec = work / f"scale-{tag}.toml"
    spec.write_text(SPEC.format(batch=batch, workers=workers, threads=threads, h5ad=h5ad, secact=signature))
    out = work / f"out-{tag}"
    load = os.getloadavg()[0]
    wall, sampler = _rebuild(spec, out)
    stages = {}
    for name, (t0, t1) in _stage_times(out).items():
        client, per_worker = sampler.peaks(t0, t1)
        cell_level = name in ("convert", "pseudobulk", "sc_secact")
        stages[name] = {"seconds": t1 - t0, "cells_per_s": (n / (t1 - t0)) if cell_level else None,
                        "client_peak_gib": client, "worker_peak_gib": sorted(per_worker.values(), reverse=True),
                        "disk_gib": _du(out / "stages" / name)}
    rerun_wall, _ = _rebuild(spec, out)
    result = {"dataset": dataset, "cells": n, "workers": workers, "threads_per_worker": threads, "batch": batch,
              "wall_s": wall, "rerun_s": rerun_wall, "stages": stages, "disk_gib": _du(out),
              "h5ad_gib": h5ad.stat().st_size / 2**30, "load_before": load, "load_after": os.getloadavg()[0],
              "out": str(out)}
    if not keep:
        shutil.rmtree(out)
    return result


def _room_for(dataset: str, cache: Path) -> list[str]:
    """Free the disk a ``dataset`` run needs by deleting other sizes' cached .h5ad (regenerated on demand)."""
    need = OUTPUT_GIB_PER_MILLION * SIZES[dataset] / 1e6 * 1.1
    dropped = []
    for other in sorted(SIZES, key=SIZES.get, reverse=True):
        if shutil.disk_usage(cache).free / 2**30 >= need:
            break
        path = cache / f"scale-{other}.h5ad"
        if other != dataset and path.exists():
            path.unlink()
            dropped.append(path.name)
    if shutil.disk_usage(cache).free / 2**30 < need:
        raise SystemExit(f"{dataset} needs ~{need:.0f} GiB free under {cache} for its output; "
                         f"{shutil.disk_usage(cache).free / 2**30:.0f} GiB are")
    return dropped


def permutation_subsample(out: str | Path) -> dict[str, Any]:
    """CytoSig permutation test (n_rand = 1000) on the first PERMUTATION_CELLS cells of the store."""
    import anndata as ad

    from cytodask.activity import infer
    from cytodask.ingest import open_atlas

    store = open_atlas(Path(out) / "stages" / "convert" / "data.zarr")
    block = store.to_dask().blocks[0].compute() if PERMUTATION_CELLS <= BATCH else None
    if block is None:
        raise ValueError(f"PERMUTATION_CELLS={PERMUTATION_CELLS} must fit in one block of {BATCH}")
    adata = ad.AnnData(X=block[:PERMUTATION_CELLS], var=store.var)
    t = time.perf_counter()
    infer(adata, "CytoSig", method="permutation", n_rand=1000, input_kind="counts", group=False, seed=0)
    secs = time.perf_counter() - t
    return {"cells": PERMUTATION_CELLS, "seconds": secs, "cells_per_s": PERMUTATION_CELLS / secs}


def _stage_row(name: str, st: dict, big: dict, ref: dict | None, dataset: str, ref_note: str) -> dict[str, Any]:
    r_ref = (ref or {}).get("stages", {}).get(name, {})
    return row("scale", f"rebuild stage {name}, {big['cells']:,} cells, {big['workers']} workers", st["seconds"],
               f"same stage at {ref['cells']:,} cells{ref_note}" if ref else "none", r_ref.get("seconds"),
               key=f"scale-{dataset}-{name}", threads=f"{big['workers']} workers × {big['threads_per_worker']}",
               reference_threads=f"{ref['workers']} workers × {ref['threads_per_worker']}" if ref else "—",
               like_for_like=False, table="self", reference_blas="same pipeline", blas=blas(),
               cells_per_s=st["cells_per_s"], client_peak_gib=st["client_peak_gib"],
               worker_peak_gib=max(st["worker_peak_gib"], default=None),
               reference_worker_peak_gib=max(r_ref.get("worker_peak_gib") or [0.0]) or None,
               worker_peak_growth=(max(st["worker_peak_gib"], default=0) / max(r_ref["worker_peak_gib"]))
               if r_ref.get("worker_peak_gib") else None,
               disk_gib=st["disk_gib"], load=f"{big['load_before']:.1f}–{big['load_after']:.1f}")


def run(dataset: str, *, reference: str | None = "auto", scaling: str | None = "synthetic-100k") -> list[dict[str, Any]]:
    """Rows for a rebuild of ``dataset`` on 2 workers, against ``reference`` (memory flatness) and 1 vs 2 workers.

    ``reference`` (default: 1M for 2M and 5M, 100k below) runs the same rebuild at the smaller
    size in this run; ``scaling`` runs 1 worker × 1 thread against 2 workers × 1 thread
    (a second core) on that size with blocks of 10,000 cells, so both have ≥ 10 blocks.
    """
    if dataset not in SIZES:
        raise ValueError(f"unknown dataset {dataset!r}; choose from {sorted(SIZES)}")
    if reference == "auto":
        reference = "synthetic-100k" if SIZES[dataset] <= SIZES["synthetic-1m"] else "synthetic-1m"
    rows: list[dict[str, Any]] = []
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(dir=CACHE) as d:
        work = Path(d)
        if scaling:
            results["scaling-1w"] = run_size(scaling, 1, work, threads=1, batch=10_000)
            results["scaling-2w"] = run_size(scaling, 2, work, threads=1, batch=10_000)
        if reference:
            results["reference"] = run_size(reference, 2, work)
        dropped = _room_for(dataset, CACHE)
        big = results["big"] = run_size(dataset, 2, work, keep=True)
        perm = results["perm"] = permutation_subsample(big["out"])
        results["dropped_cache"] = dropped
    ref = results.get("reference")
    for name, st in big["stages"].items():
        rows.append(_stage_row(name, st, big, ref, dataset, ""))
    rows.append(row("scale", f"unchanged rerun, {big['cells']:,} cells", big["rerun_s"], "full rebuild",
                    big["wall_s"], key=f"scale-{dataset}-rerun", threads="2 workers", reference_threads="2 workers",
                    like_for_like=False, table="self", reference_blas="same command", disk_gib=big["disk_gib"]))
    rows.append(row("scale", f"CytoSig permutation test (n_rand = 1000) on a subsample of {perm['cells']:,} cells",
                    perm["seconds"], "none", None, key=f"scale-{dataset}-cytosig-perm", threads=cores(),
                    reference_threads="—", like_for_like=False, table="self", cells_per_s=perm["cells_per_s"]))
    if scaling:
        one, two = results["scaling-1w"], results["scaling-2w"]
        for name, st in two["stages"].items():
            r1 = one["stages"].get(name, {})
            rows.append(row("scale", f"rebuild stage {name}, {two['cells']:,} cells in blocks of 10,000: "
                                     f"2 workers × 1 thread vs 1 worker × 1 thread", st["seconds"],
                            "same stage, 1 worker × 1 thread", r1.get("seconds"), key=f"scale-workers-{name}",
                            threads="2 workers × 1", reference_threads="1 worker × 1", like_for_like=False,
                            table="self", reference_blas="same pipeline", blas=blas(),
                            load=f"{one['load_before']:.1f}–{two['load_after']:.1f}"))
        rows.append(row("scale", f"full rebuild, {two['cells']:,} cells: 2 workers × 1 thread vs 1 worker × 1 thread",
                        two["wall_s"], "1 worker × 1 thread", one["wall_s"], key="scale-workers-total",
                        threads="2 workers × 1", reference_threads="1 worker × 1", like_for_like=False,
                        table="self", reference_blas="same pipeline"))
    (CACHE / f"scale-{dataset}.json").write_text(json.dumps(results, default=str, indent=1))
    return rows


if __name__ == "__main__":
    for ds in sys.argv[1:] or ["synthetic-1m"]:
        for r in run(ds):
            print(json.dumps(r, default=str))
