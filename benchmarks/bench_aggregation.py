"""Aggregation: cytodask ``pseudobulk`` vs ``scanpy.get.aggregate`` and ``decoupler.pp.pseudobulk``.

Task: sum + mean + variance (ddof 1) of synthetic UMI counts (20,000 genes,
:mod:`cytodask.demo`) per ``cell_type_l2 × sample`` (5 × 24 = 120
groups). Every tool runs in its own subprocess on the same counts, so each
row's peak memory (``VmHWM`` of that process) is its own:

- ``cytodask`` in memory: ``pseudobulk(adata, ...)`` on the in-memory CSR
  (Dask threads, all cores, and the synchronous scheduler, one core);
- ``cytodask`` on disk: ``pseudobulk("atlas.zarr", ...)`` out of core from the
  atlas store (10,000-cell blocks); the matrix is never loaded whole;
- ``scanpy.get.aggregate(adata, by, func=["sum", "mean", "var"])`` in memory;
- ``decoupler.pp.pseudobulk(adata, sample_col, groups_col, mode={"sum": "sum",
  "mean": "mean"})`` in memory: the modes decoupler vectorises, compared with
  cytodask asked for the same two statistics; decoupler's variance (only
  available as a Python callable, ``np.apply_along_axis`` per gene) is timed in
  its own row, labelled so (issue 17 item 5).

Every tool gets the same warm-up (one call on the first 2,000 cells) and the
same repeats (best of 2), and the times cover the aggregation only (data
loaded, imports done). Threads: ``cytodask-threads`` uses Dask threads on all
cores; every other tool, cytodask's synchronous run included, runs with
BLAS/OpenMP/Numba limited to one thread (environment of its process), and the
rows say so; the like-for-like rows are the one-thread ones. ``input_rss_mb`` is the
process's resident memory before the calls (the loaded matrix for the
in-memory tools); the peak is reset there (``/proc/self/clear_refs``), so
``peak_rss_mb`` is the peak during the calls and ``peak_rss_mb −
input_rss_mb`` what the aggregation itself needed. At 1M cells
the in-memory references need the whole CSR matrix (~13 GB) plus scanpy's
squared copy and dense group profiles, more than the 24 GB of the benchmark
machine, so only cytodask runs there, from disk, and its peak memory is
compared with the 100k run. ``synthetic-1m-5k`` (1M cells × 5,000 genes, ~4 GB as CSR)
is the 1M-cell size at which the references fit and run.

Run ``python -m benchmarks.bench_aggregation synthetic-100k [synthetic-1m]``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import cores, row
from benchmarks.datasets import CACHE, single_cell_counts, spec_for

BY = ["cell_type_l2", "sample"]
REFERENCE_LIMIT = 5e9  # cells × genes above which the in-memory references are not run (RAM; see the docstring)

_WORKER = r'''
import json, sys, time, warnings
warnings.filterwarnings("ignore")
import numpy as np, pandas as pd, scipy.sparse as sp, anndata as ad
tool, counts_path, obs_path, store, out, repeats = sys.argv[1:7]
def best(fn, warm=None):
    if warm is not None:
        warm()  # the same warm-up for every tool
    times, r = [], None
    for _ in range(int(repeats)):
        t = time.perf_counter()
        r = fn()
        times.append(time.perf_counter() - t)
    return min(times), r
BY = ["cell_type_l2", "sample"]
def status(key):
    return int(next(l.split()[1] for l in open("/proc/self/status") if l.startswith(key))) / 1024
def hwm():
    return status("VmHWM")
def reset_peak():
    """Forget the loading's peak (Linux: writing 5 to clear_refs resets VmHWM); returns the RSS now."""
    try:
        open("/proc/self/clear_refs", "w").write("5")
    except OSError:
        pass
    return status("VmRSS")
def keyed(frame, rows):
    return pd.DataFrame(np.asarray(rows, dtype=np.float64), index=frame).sort_index()
res = {}
if tool == "cytodask-disk":
    from cytodask.aggregation import pseudobulk
    loaded = reset_peak()
    res["seconds"], pb = best(lambda: pseudobulk(store, BY, min_cells=1, stats=("sum", "mean", "var")),
                              lambda: pseudobulk(store, BY, min_cells=1, stats=("sum",)))
    names, layers = list(pb.obs_names), {"sum": pb.layers["counts"], "mean": pb.layers["mean"], "var": pb.layers["var"]}
else:
    x = sp.load_npz(counts_path).tocsr().astype(np.float32)
    obs = pd.read_pickle(obs_path)
    adata = ad.AnnData(X=x, obs=obs)
    del x
    import dask, scanpy as sc
    from cytodask.aggregation import pseudobulk
    if tool.startswith("decoupler"):
        import decoupler as dc
    small = adata[:2000].copy()
    loaded = reset_peak()
    stats = ("sum", "mean") if tool.endswith("summean") else ("sum", "mean", "var")
    if tool.startswith("cytodask"):
        with dask.config.set(scheduler="sync" if "sync" in tool else "threads"):
            res["seconds"], pb = best(lambda: pseudobulk(adata, BY, min_cells=1, stats=stats),
                                      lambda: pseudobulk(small, BY, min_cells=1, stats=stats))
        names = list(pb.obs_names)
        layers = {"sum": pb.layers["counts"], **{k: pb.layers[k] for k in stats if k != "sum"}}
    elif tool == "scanpy":
        res["seconds"], r = best(lambda: sc.get.aggregate(adata, by=BY, func=list(stats)),
                                 lambda: sc.get.aggregate(small, by=BY, func=list(stats)))
        names = ["|".join(map(str, k)) for k in r.obs[BY].itertuples(index=False)]
        layers = {k: r.layers[k] for k in stats}
    elif tool.startswith("decoupler"):
        mode = ({"var": lambda v: np.var(v, ddof=1)} if tool == "decoupler-var" else {"sum": "sum", "mean": "mean"})
        run = lambda a: dc.pp.pseudobulk(a, sample_col="sample", groups_col="cell_type_l2", skip_checks=True,
                                         mode=mode)
        res["seconds"], r = best(lambda: run(adata), lambda: run(small))
        names = [f"{g}|{s}" for g, s in zip(r.obs["cell_type_l2"], r.obs["sample"])]
        layers = {k: r.layers[k] for k in mode}
res["peak_rss_mb"] = hwm()
res["loaded_rss_mb"] = loaded
for k, v in layers.items():
    np.save(f"{out}-{k}.npy", keyed(names, v).to_numpy())
json.dump(res, open(f"{out}.json", "w"))
'''


def _prepare(dataset: str, *, in_memory: bool) -> dict[str, Path]:
    """Counts (.npz, for the in-memory tools), obs (.pkl) and the atlas store, cached under benchmarks/out/data."""
    from cytodask.demo import cell_metadata, write_h5ad
    from cytodask.ingest import LocalH5ADSource, convert, open_atlas

    spec = spec_for(dataset)
    CACHE.mkdir(parents=True, exist_ok=True)
    paths = {"counts": CACHE / f"{dataset}-counts.npz", "obs": CACHE / f"{dataset}-obs.pkl",
             "store": CACHE / f"{dataset}.zarr"}
    if in_memory and not paths["counts"].exists():
        single_cell_counts(dataset)  # generates and caches the .npz
    if in_memory and not paths["obs"].exists():
        cell_metadata(spec).to_pickle(paths["obs"])
    try:
        open_atlas(paths["store"])
    except (FileNotFoundError, ValueError):
        h5ad = CACHE / f"{dataset}.h5ad"
        write_h5ad(spec, h5ad, batch_size=10_000)  # block by block: flat memory at any size
        convert(LocalH5ADSource(h5ad), paths["store"], batch_size=10_000, fsync=False)
        h5ad.unlink()
    return paths


def _run_tool(tool: str, paths: dict[str, Path], work: Path, repeats: int = 2) -> dict[str, Any]:
    """Run ``tool`` in a fresh process: best of ``repeats`` calls, peak RSS of that process, outputs saved."""
    out = work / tool
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    if tool != "cytodask-threads" and tool != "cytodask-disk":  # one thread everywhere in that process
        env.update({k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                                     "NUMBA_NUM_THREADS")})
    proc = subprocess.run([sys.executable, "-c", _WORKER, tool, str(paths["counts"]), str(paths["obs"]),
                           str(paths["store"]), str(out), str(repeats)], capture_output=True, text=True, env=env,
                          check=False)
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
    res = json.loads(Path(f"{out}.json").read_text())
    res["layers"] = {k: np.load(f"{out}-{k}.npy") for k in ("sum", "mean", "var") if Path(f"{out}-{k}.npy").exists()}
    return res


def _max_rel(a: np.ndarray, b: np.ndarray) -> float:
    both = np.isfinite(a) & np.isfinite(b)
    return float(np.max(np.abs(a[both] - b[both]) / np.maximum(np.abs(b[both]), 1e-300)))


def _csr_gb(store: Path) -> float:
    """Size of the store's matrix as an in-memory float32/int32 CSR."""
    from cytodask.ingest import open_atlas

    atlas = open_atlas(store)
    return (int(atlas.info["nnz"]) * 8 + (atlas.n_obs + 1) * 8) / 2**30


def _store_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def run(dataset: str) -> list[dict[str, Any]]:
    """Time cytodask (memory, disk) and the references on ``dataset``; one row per comparison."""
    spec = spec_for(dataset)
    n_cells = spec.n_cells
    refs = n_cells * spec.n_genes <= REFERENCE_LIMIT
    paths = _prepare(dataset, in_memory=refs)
    task = f"pseudobulk sum+mean+var, {n_cells:,} cells × {spec.n_genes:,} genes, {' × '.join(BY)}"
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        disk = _run_tool("cytodask-disk", paths, work, repeats=2 if refs else 1)
        if not refs:
            csr_gb = _csr_gb(paths["store"])
            note = (f"references not run: in memory they need the whole matrix (~{_store_mb(paths['store']) / 1024:.0f} GB "
                    f"on disk, compressed; {csr_gb:.0f} GB as float32 CSR) plus copies, over the 24 GB of RAM")
            return [row("aggregation", task + ", cytodask from the atlas store (out of core)", disk.get("seconds"),
                        "none (see note)", None, key=f"pseudobulk-disk-{dataset}", threads=cores(),
                        reference_threads="—", like_for_like=False, table="self",
                        peak_gib=_gib(disk.get("peak_rss_mb")), input_gib=_gib(disk.get("loaded_rss_mb")),
                        store_mb=_store_mb(paths["store"]), note=disk.get("error", note))]
        tools = ("cytodask-threads", "cytodask-sync", "cytodask-sync-summean", "scanpy", "decoupler-summean",
                 "decoupler-var")
        res = {t: _run_tool(t, paths, work) for t in tools}
    res["cytodask-disk"] = disk
    n = cores()
    labels = {"scanpy": "scanpy 1.11 get.aggregate sum+mean+var (in memory)",
              "decoupler-summean": "decoupler pp.pseudobulk mode sum+mean (in memory)",
              "decoupler-var": "decoupler pp.pseudobulk variance alone (a Python callable per gene; in memory)"}
    # (key, cytodask tool, what, reference tool, our threads, like for like)
    plan = [
        ("pseudobulk-smv-scanpy-1t", "cytodask-sync", "sum+mean+var in memory, 1 thread", "scanpy", 1, True),
        ("pseudobulk-smv-scanpy-pool", "cytodask-threads", f"sum+mean+var in memory, Dask threads ({n})", "scanpy",
         n, False),
        ("pseudobulk-smv-disk", "cytodask-disk", f"sum+mean+var from the atlas store (out of core), Dask threads ({n})",
         "scanpy", n, False),
        ("pseudobulk-sm-decoupler-1t", "cytodask-sync-summean", "sum+mean in memory, 1 thread", "decoupler-summean", 1,
         True),
        ("pseudobulk-var-decoupler", "cytodask-sync", "sum+mean+var in memory, 1 thread (decoupler: variance alone)",
         "decoupler-var", 1, False),
    ]
    for key, tool, what, rname, nthreads, same in plan:
        ours, other = res[tool], res[rname]
        r = row("aggregation", f"pseudobulk {n_cells:,} cells × {spec.n_genes:,} genes, {' × '.join(BY)}: cytodask {what}",
                ours.get("seconds"), labels[rname], other.get("seconds"), key=key, threads=nthreads,
                reference_threads=1, like_for_like=same, peak_gib=_gib(ours.get("peak_rss_mb")),
                reference_peak_gib=_gib(other.get("peak_rss_mb")), input_gib=_gib(ours.get("loaded_rss_mb")),
                reference_input_gib=_gib(other.get("loaded_rss_mb")), reference_blas="own process, same libraries")
        if "error" in other or "error" in ours:
            r["note"] = other.get("error") or ours.get("error")
        else:
            for k in set(ours["layers"]) & set(other["layers"]):
                r[f"max_rel_d{k}"] = _max_rel(ours["layers"][k], other["layers"][k])
        if tool == "cytodask-disk":
            r["store_mb"] = _store_mb(paths["store"])
        rows.append(r)
    return rows


def _gib(mb: float | None) -> float | None:
    return None if mb is None else mb / 1024


def main(argv: list[str] | None = None) -> int:
    datasets = (argv if argv is not None else sys.argv[1:]) or ["synthetic-100k"]
    for dataset in datasets:
        t = time.perf_counter()
        for r in run(dataset):
            print(json.dumps(r, default=str))
        print(f"# {dataset}: {time.perf_counter() - t:.0f} s in all", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
