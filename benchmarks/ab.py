"""A/B timing of two source trees of cytodask on the same tasks, data, threads and warm-up.

Each (tree, task) measurement runs in a fresh subprocess of the same interpreter
with ``PYTHONPATH=<tree>`` first on ``sys.path`` (the worker checks that
``cytodask.__file__`` lies in that tree) and the same thread environment
(``OMP/OPENBLAS/MKL/NUMBA_NUM_THREADS``). The worker loads or generates the
data, makes one full-size warm-up call (numba compilation or cache load, glibc
mmap threshold, page faults), then times ``--inner`` calls. Rounds interleave
the trees, alternating which goes first (A B, B A, A B, ...), so drift in the
load of a shared machine falls on both sides alike. Each call's wall time and
CPU time (``time.process_time``: all threads of the process) are reported; on
a loaded machine the CPU time of a one-thread task moves less than its wall
time.

Tasks (the workloads of ``bench_aggregation`` and ``bench_stats``):

- ``pb-threads`` / ``pb-sync``: ``pseudobulk(adata, ["cell_type_l2", "sample"],
  min_cells=1, stats=("sum", "mean", "var"))`` on the in-memory synthetic
  counts (``--dataset``, default synthetic-100k), Dask threaded scheduler / sync;
- ``wilcoxon-1`` / ``wilcoxon-all``: ``wilcoxon(x, y, threads=1 | None)``,
  1,170 float32 features × 100,000 columns in 2 groups;
- ``strata``: ``differential_table`` within 30 strata (100,000 × 1,170);
- ``spearman-1`` / ``spearman-all``: ``spearman(a, b, threads=1 | None)``,
  1,170 × 1,000 samples vs 500 variables.

Run ``python -m benchmarks.ab --base /tmp/bench-base --head /tmp/bench-head
--tasks pb-threads,wilcoxon-1 --rounds 5``. The in-memory counts and obs are
read from (or written once to) ``--data`` as ``<dataset>-counts.npz`` and
``<dataset>-obs.pkl``, so both trees read the same files.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

TASKS = ("pb-threads", "pb-sync", "wilcoxon-1", "wilcoxon-all", "strata", "spearman-1", "spearman-all")
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")

_WORKER = r'''
import json, os, sys, time, warnings
warnings.filterwarnings("ignore")
tree, task, data_dir, dataset, inner = sys.argv[1:6]
import numpy as np
import cytodask
assert os.path.realpath(cytodask.__file__).startswith(os.path.realpath(tree) + os.sep), cytodask.__file__
if task.startswith("pb-"):
    import anndata as ad, dask, pandas as pd, scipy.sparse as sp
    from cytodask.aggregation import pseudobulk
    x = sp.load_npz(os.path.join(data_dir, f"{dataset}-counts.npz")).tocsr().astype(np.float32)
    adata = ad.AnnData(X=x, obs=pd.read_pickle(os.path.join(data_dir, f"{dataset}-obs.pkl")))
    sched = "sync" if task == "pb-sync" else "threads"
    def call():
        with dask.config.set(scheduler=sched):
            return pseudobulk(adata, ["cell_type_l2", "sample"], min_cells=1, stats=("sum", "mean", "var"))
elif task.startswith("wilcoxon-"):
    from cytodask.differential import wilcoxon
    rng = np.random.default_rng(0)
    data = rng.standard_normal((1170, 100_000), dtype=np.float32)
    data[:, :50_000] += 0.01
    x, y = data[:, :50_000], data[:, 50_000:]
    threads = 1 if task == "wilcoxon-1" else None
    call = lambda: wilcoxon(x, y, threads=threads)
elif task == "strata":
    import pandas as pd
    from cytodask.differential import differential_table
    rng = np.random.default_rng(2)
    data = rng.standard_normal((100_000, 1170), dtype=np.float32)
    group = np.where(rng.random(100_000) < 0.5, "a", "b")
    data[group == "a"] += 0.01
    stratum = rng.integers(0, 30, 100_000).astype(str)
    values = pd.DataFrame(data, columns=[f"f{i}" for i in range(1170)])
    obs = pd.DataFrame({"g": group, "s": stratum}, index=values.index)
    call = lambda: differential_table(values, obs, group_col="g", group1="a", group2="b", strata=["s"])
elif task.startswith("spearman-"):
    from cytodask.correlation import spearman
    rng = np.random.default_rng(1)
    a = rng.standard_normal((1170, 1000))
    b = rng.standard_normal((500, 1000)) + 0.1 * a[:500]
    threads = 1 if task == "spearman-1" else None
    call = lambda: spearman(a, b, threads=threads)
else:
    raise ValueError(f"unknown task {task!r}")
call()  # warm-up: full size, discarded
times, cpu = [], []
for _ in range(int(inner)):
    t, c = time.perf_counter(), time.process_time()
    call()
    times.append(time.perf_counter() - t)
    cpu.append(time.process_time() - c)
outside = [m.__name__ for m in list(sys.modules.values())
           if m.__name__.split(".")[0] == "cytodask" and getattr(m, "__file__", None)
           and not os.path.realpath(m.__file__).startswith(os.path.realpath(tree) + os.sep)]
assert not outside, f"modules imported from outside {tree}: {outside}"
n_mod = sum(1 for m in sys.modules if m.split(".")[0] == "cytodask")
print(json.dumps({"times": times, "cpu": cpu, "cytodask": cytodask.__file__, "modules": n_mod}))
'''


def ensure_data(data_dir: Path, dataset: str, tree: Path) -> None:
    """Write ``<dataset>-counts.npz`` and ``<dataset>-obs.pkl`` under ``data_dir`` once (with ``tree``'s generator)."""
    counts, obs = data_dir / f"{dataset}-counts.npz", data_dir / f"{dataset}-obs.pkl"
    if counts.exists() and obs.exists():
        return
    code = (
        "import sys, scipy.sparse as sp\n"
        "from pathlib import Path\n"
        "from benchmarks.datasets import spec_for\n"
        "from cytodask.demo import cell_metadata, iter_blocks\n"
        "out, dataset = Path(sys.argv[1]), sys.argv[2]\n"
        "spec = spec_for(dataset)\n"
        "c, o = out / f'{dataset}-counts.npz', out / f'{dataset}-obs.pkl'\n"
        "if not c.exists():\n"
        "    tmp = out / f'{dataset}-counts.tmp.npz'\n"
        "    sp.save_npz(tmp, sp.vstack([m for *_, m in iter_blocks(spec, 10_000)]).tocsr())\n"
        "    tmp.replace(c)\n"
        "if not o.exists():\n"
        "    cell_metadata(spec).to_pickle(o)\n"
    )
    data_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-c", code, str(data_dir), dataset], check=True,
                   env={**os.environ, "PYTHONPATH": str(tree)})


def measure(tree: Path, task: str, args: argparse.Namespace) -> dict[str, list[float]]:
    """Wall times and CPU times (s, all threads of the process) of ``args.inner`` calls of ``task``.

    The calls run in a fresh process importing ``tree``.
    """
    env = {**os.environ, "PYTHONPATH": str(tree), **{v: str(args.threads) for v in THREAD_VARS}}
    proc = subprocess.run([sys.executable, "-c", _WORKER, str(tree), task, str(args.data), args.dataset,
                           str(args.inner)], capture_output=True, text=True, env=env, check=False, cwd=tree)
    if proc.returncode != 0:
        raise RuntimeError(f"{task} on {tree} failed:\n{proc.stderr[-3000:]}")
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"wall": got["times"], "cpu": got["cpu"]}


def summarize(task: str, base: dict[str, list[float]], head: dict[str, list[float]]) -> dict[str, Any]:
    """Best and median wall time per tree, their ratios base/head (> 1: head faster), and the same for CPU time."""
    out: dict[str, Any] = {"task": task}
    for kind, suffix in (("wall", ""), ("cpu", "_cpu")):
        b, h = base[kind], head[kind]
        bb, hb, bm, hm = min(b), min(h), statistics.median(b), statistics.median(h)
        out |= {f"base_best{suffix}": bb, f"head_best{suffix}": hb, f"ratio_best{suffix}": bb / hb,
                f"base_median{suffix}": bm, f"head_median{suffix}": hm, f"ratio_median{suffix}": bm / hm,
                f"base{suffix}": b, f"head{suffix}": h}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.ab", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base", type=Path, required=True, help="source tree A (e.g. a worktree of the old commit)")
    p.add_argument("--head", type=Path, required=True, help="source tree B")
    p.add_argument("--tasks", default=",".join(TASKS), help=f"comma-separated: {', '.join(TASKS)}")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds (one process per tree per round)")
    p.add_argument("--inner", type=int, default=1, help="timed calls per process, after one warm-up call")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                   help="OMP/OPENBLAS/MKL/NUMBA_NUM_THREADS for both trees")
    p.add_argument("--dataset", default="synthetic-100k", help="counts for the pb-* tasks")
    p.add_argument("--data", type=Path, default=Path(__file__).resolve().parent / "out" / "data")
    p.add_argument("--json", type=Path, default=None, help="also write the summaries here")
    args = p.parse_args(argv)
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    bad = [t for t in tasks if t not in TASKS]
    if bad:
        p.error(f"unknown task(s) {bad}; choose from {list(TASKS)}")
    trees = {"base": args.base.resolve(), "head": args.head.resolve()}
    if any(t.startswith("pb-") for t in tasks):
        ensure_data(args.data, args.dataset, trees["head"])
    for name, tree in trees.items():  # one discarded run per tree: numba caches (per tree) written, files paged in
        for task in tasks:
            measure(tree, task, argparse.Namespace(**{**vars(args), "inner": 1}))
        print(f"# primed {name} ({tree})", file=sys.stderr, flush=True)
    results = []
    for task in tasks:
        times = {name: {"wall": [], "cpu": []} for name in trees}
        for r in range(args.rounds):
            order = ("base", "head") if r % 2 == 0 else ("head", "base")
            for name in order:
                for kind, values in measure(trees[name], task, args).items():
                    times[name][kind] += values
            print(f"# {task} round {r + 1}: base {times['base']['wall'][-1]:.3f} s, head "
                  f"{times['head']['wall'][-1]:.3f} s, load {os.getloadavg()[0]:.1f}", file=sys.stderr, flush=True)
        s = summarize(task, times["base"], times["head"])
        results.append(s)
        print(f"{task:13s} wall best base {s['base_best']:.3f} head {s['head_best']:.3f} ratio {s['ratio_best']:.3f}"
              f" | median base {s['base_median']:.3f} head {s['head_median']:.3f} ratio {s['ratio_median']:.3f}"
              f" || cpu best base {s['base_best_cpu']:.3f} head {s['head_best_cpu']:.3f} ratio "
              f"{s['ratio_best_cpu']:.3f} | median ratio {s['ratio_median_cpu']:.3f}", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                         "time": time.strftime("%Y-%m-%d %H:%M:%S"), "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
