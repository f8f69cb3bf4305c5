"""Single-cell validation (check 4) from the store: ``python -m benchmarks.bench_validation [--cells N] [--record]``.

Check 4 (:func:`cytodask.validation.single_cell_auc`: within each cell type, producer-expressing vs
other cells, tie-corrected Mann-Whitney AUC, exact on up to ``--max-cells`` cells per group) streamed
over the blocks of a single-cell CytoSig activity stage and of the atlas store, at two sizes
(``--small`` and ``--cells``). Setup per size, in its own process and not timed: the demo atlas
(``SyntheticAtlasSpec``, ``--genes`` genes) → ``convert`` → single-cell ``activity`` (analytic) into a
result store. Measured, in a fresh process per size: reading the activity lazily from its Zarr and
check 4 with Dask's threaded scheduler; wall time, cells/s and the process's peak RSS (VmHWM). Flat
memory: the peak barely moves from ``--small`` to ``--cells``. Reference: the same check at the small
size (a self-comparison; no other tool computes this table from a store).

On a shared 2-core machine run at most ``--cells 200000``; the issue's figure is
``python -m benchmarks.bench_validation --cells 1000000 --small 100000 --record``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil

from benchmarks.datasets import CACHE

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


SETUP = """
import sys, warnings
warnings.filterwarnings("ignore")
from cytodask import Config
from cytodask.activity.stage import ActivityStage
from cytodask.core.runner import run_stages
from cytodask.core.store import ResultStore
from cytodask.demo import SyntheticAtlasSpec, write_h5ad
from cytodask.ingest import ConvertStage, LocalH5ADSource
n, genes, out, h5ad = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
if h5ad == "-":
    h5ad = f"{out}/atlas.h5ad"
    write_h5ad(SyntheticAtlasSpec(n_cells=n, n_genes=genes, n_donors=24, seed=0), h5ad)
stages = [ConvertStage("convert", LocalH5ADSource(h5ad), batch_size=20_000),
          ActivityStage("activity", inputs=("convert",), layer="X", method="analytic")]
run_stages(stages, ResultStore(f"{out}/res"), Config(cluster="none", checkpoint={"fsync": False}))
"""

MEASURE = """
import json, sys, time, warnings
import zarr
warnings.filterwarnings("ignore")
from cytodask.core.store import ResultStore
from cytodask.validation import single_cell_auc
res, max_cells = ResultStore(sys.argv[1]), int(sys.argv[2])
t0 = time.perf_counter()
table = single_cell_auc(str(res.stage_path("activity")), str(res.stage_path("convert")), cell_type_col="cell_type_l2",
                        max_cells=max_cells)
wall = time.perf_counter() - t0
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
x = zarr.open_group(str(res.stage_path("activity")), mode="r")["X"]
print(json.dumps({"wall_s": wall, "peak_mb": hwm / 1024, "n_cells": int(x.shape[0]), "rows": int(len(table)),
                  "tested": int(table["auc"].notna().sum()), "blocks": -(-x.shape[0] // x.chunks[0])}))
"""


def measure(n_cells: int, n_genes: int, max_cells: int, folder: Path, cached: Path | None = None
            ) -> dict[str, float]:
    """Set up ``n_cells`` (atlas, store, single-cell activity), then time check 4 in a fresh process.

    ``cached``: an ``.h5ad`` to convert instead of generating one (the scale benchmark's cached atlases).
    """
    out = folder / f"n{n_cells}"
    out.mkdir()
    subprocess.run([sys.executable, "-c", SETUP, str(n_cells), str(n_genes), str(out), str(cached or "-")], check=True)
    (out / "atlas.h5ad").unlink(missing_ok=True)  # the store holds the counts now
    done = subprocess.run([sys.executable, "-c", MEASURE, str(out / "res"), str(max_cells)], check=True,
                          capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", type=int, default=1_000_000, help="cells of the large run (default 1,000,000)")
    ap.add_argument("--small", type=int, default=None, help="cells of the small run (default cells / 10)")
    ap.add_argument("--genes", type=int, default=20_000, help="genes of the demo atlas (default 20,000)")
    ap.add_argument("--max-cells", type=int, default=5000, help="exact AUC on up to this many cells per group")
    ap.add_argument("--record", action="store_true", help="append the table to benchmarks/RESULTS.md")
    ap.add_argument("--scale-atlases", action="store_true",
                    help="convert the scale benchmark's cached atlases (100 donors, 20,000 genes; "
                         "benchmarks/out/data/scale-synthetic-*.h5ad) instead of generating 24-donor ones")
    args = ap.parse_args()
    small = args.small or max(args.cells // 10, 1000)

    def cached(n: int) -> Path | None:
        if not args.scale_atlases:
            return None
        from benchmarks.bench_scale import SIZES, atlas_h5ad
        names = {v: k for k, v in SIZES.items()}
        if n not in names or args.genes != 20_000:
            raise SystemExit(f"--scale-atlases: {n:,} cells × {args.genes} genes is not a scale atlas ({SIZES})")
        return atlas_h5ad(names[n])

    with tempfile.TemporaryDirectory(dir=CACHE) as d:
        runs = {n: measure(n, args.genes, args.max_cells, Path(d), cached(n)) for n in (small, args.cells)}
    a, b = runs[small], runs[args.cells]
    mem = psutil.virtual_memory().total / 2**30
    rows = [f"| validation | check 4 (single-cell AUC), {r['n_cells']:,} cells × 43 CytoSig, {r['blocks']} blocks, "
            f"{r['tested']} of {r['rows']} tests exact on ≤ {args.max_cells} cells per group | {r['wall_s']:.3g} | "
            f"{r['n_cells'] / r['wall_s']:.3g} | {r['peak_mb']:.0f} |" for r in (a, b)]
    text = "\n".join([
        f"### {dt.date.today()} — `python -m benchmarks.bench_validation --cells {args.cells} --small {small} "
        f"--genes {args.genes}{' --scale-atlases' if args.scale_atlases else ''}`", "",
        f"Machine: {platform.machine()} {psutil.cpu_count()} CPUs, {mem:.0f} GiB, Python {platform.python_version()}; "
        f"load average {' '.join(f'{x:.1f}' for x in psutil.getloadavg())}. From the store: single-cell CytoSig "
        f"activity (Zarr, lazy) and the atlas store's CSR blocks, Dask threads; one fresh process per size "
        f"(peak = its VmHWM, interpreter and imports included).", "",
        "| family | task | wall (s) | cells/s | peak RSS (MB) |", "|---|---|---|---|---|", *rows, "",
        f"Peak growth {b['peak_mb'] / a['peak_mb']:.2f}× for {args.cells / small:.0f}× the cells "
        f"(reference: the same check at {small:,} cells)."
        + (" Atlases: the scale benchmark's (100 donors)." if args.scale_atlases else ""), ""])
    print(text)
    if args.record:
        with RESULTS.open("a") as fh:
            fh.write("\n" + text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
