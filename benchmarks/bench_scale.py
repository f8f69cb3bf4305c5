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

A sampler thread reads the resident memory of the ``cytodask rebuild``
process (the client) and of each of its descendants (nannies and workers)
every 0.25 s; the run log's stage start/finish times attribute the samples to
stages. Disk written is the size of each stage's folder. The unchanged rerun
is the same command again.

Sizes on disk: the .h5ad is ~12.6 GB per million cells (cached under
``benchmarks/out/data``), the atlas store ~2.7 GB and the single-cell SecAct
output ~4.7 GB (1,170 float32 per cell) per million cells: synthetic-2m needs
~40 GB free, synthetic-5m ~100 GB.
"""

from __future__ import annotations

import json
import os
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
             cache: Path = CACHE) -> dict[str, Any]:
    """One full rebuild and one unchanged rerun of ``dataset`` on ``workers`` workers (cores split between them)."""
    n = SIZES[dataset]
    h5ad = atlas_h5ad(dataset, cache)
    spec = work / f"scale-{dataset}-{workers}w.toml"
    threads = max(1, cores() // workers)
    spec.write_text(SPEC.format(batch=BATCH, workers=workers, threads=threads, h5ad=h5ad, secact=signature))
    out = work / f"out-{dataset}-{workers}w"
    wall, sampler = _rebuild(spec, out)
    stages = {}
    for name, (t0, t1) in _stage_times(out).items():
        client, per_worker = sampler.peaks(t0, t1)
        cell_level = name in ("convert", "pseudobulk", "sc_secact")
        stages[name] = {"seconds": t1 - t0, "cells_per_s": (n / (t1 - t0)) if cell_level else None,
                        "client_peak_gib": client, "worker_peak_gib": sorted(per_worker.values(), reverse=True),
                        "disk_gib": _du(out / "stages" / name)}
    rerun_wall, _ = _rebuild(spec, out)
    return {"dataset": dataset, "cells": n, "workers": workers, "threads_per_worker": threads, "wall_s": wall,
            "rerun_s": rerun_wall, "stages": stages, "disk_gib": _du(out), "h5ad_gib": h5ad.stat().st_size / 2**30}


def permutation_subsample(dataset: str, work: Path) -> dict[str, Any]:
    """CytoSig permutation test (n_rand = 1000) on the first PERMUTATION_CELLS cells of the store."""
    import anndata as ad

    from cytodask.activity import infer
    from cytodask.ingest import open_atlas

    out = work / f"out-{dataset}-2w"
    store = open_atlas(out / "stages" / "convert" / "data.zarr")
    block = store.to_dask().blocks[0].compute() if PERMUTATION_CELLS <= BATCH else None
    if block is None:
        raise ValueError(f"PERMUTATION_CELLS={PERMUTATION_CELLS} must fit in one block of {BATCH}")
    adata = ad.AnnData(X=block[:PERMUTATION_CELLS], var=store.var)
    t = time.perf_counter()
    infer(adata, "CytoSig", method="permutation", n_rand=1000, input_kind="counts", group=False, seed=0)
    secs = time.perf_counter() - t
    return {"cells": PERMUTATION_CELLS, "seconds": secs, "cells_per_s": PERMUTATION_CELLS / secs}


def run(dataset: str) -> list[dict[str, Any]]:
    """Rows for ``dataset`` (2 workers), with 1M as the memory reference and 1 vs 2 workers at the smaller size."""
    if dataset not in SIZES:
        raise ValueError(f"unknown dataset {dataset!r}; choose from {sorted(SIZES)}")
    small = "synthetic-100k" if dataset in ("synthetic-100k", "synthetic-1m") else "synthetic-1m"
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(dir=CACHE) as d:
        work = Path(d)
        results = {(small, 1): run_size(small, 1, work), (small, 2): run_size(small, 2, work)}
        results[(dataset, 2)] = run_size(dataset, 2, work)
        perm = permutation_subsample(dataset, work)
    big, ref, one = results[(dataset, 2)], results[(small, 2)], results[(small, 1)]
    for name, st in big["stages"].items():
        r_ref = ref["stages"].get(name, {})
        r_one = one["stages"].get(name, {})
        rows.append(row(
            "scale", f"rebuild stage {name}, {big['cells']:,} cells, 2 workers", st["seconds"],
            f"same stage at {ref['cells']:,} cells", r_ref.get("seconds"), key=f"scale-{dataset}-{name}",
            threads=f"2 workers × {big['threads_per_worker']}", reference_threads=f"2 workers × {ref['threads_per_worker']}",
            like_for_like=False, table="self", reference_blas="same pipeline", blas=blas(),
            cells_per_s=st["cells_per_s"], client_peak_gib=st["client_peak_gib"],
            worker_peak_gib=max(st["worker_peak_gib"], default=None),
            reference_worker_peak_gib=max(r_ref.get("worker_peak_gib") or [0.0]) or None,
            disk_gib=st["disk_gib"], one_worker_s_at_reference_size=r_one.get("seconds"),
            speedup_2_vs_1_workers=(r_one["seconds"] / r_ref["seconds"]) if r_one and r_ref else None))
    rows.append(row("scale", f"unchanged rerun, {big['cells']:,} cells", big["rerun_s"], "full rebuild",
                    big["wall_s"], key=f"scale-{dataset}-rerun", threads="2 workers", reference_threads="2 workers",
                    like_for_like=False, table="self", reference_blas="same command", disk_gib=big["disk_gib"]))
    rows.append(row("scale", f"CytoSig permutation test (n_rand = 1000) on a subsample of {perm['cells']:,} cells",
                    perm["seconds"], "none", None, key=f"scale-{dataset}-cytosig-perm", threads=cores(),
                    reference_threads="—", like_for_like=False, table="self", cells_per_s=perm["cells_per_s"]))
    dump = {f"{k[0]}-{k[1]}w": v for k, v in results.items()} | {"perm": perm}
    (CACHE / f"scale-{dataset}.json").write_text(json.dumps(dump, default=str, indent=1))
    return rows


if __name__ == "__main__":
    for ds in sys.argv[1:] or ["synthetic-1m"]:
        for r in run(ds):
            print(json.dumps(r, default=str))
