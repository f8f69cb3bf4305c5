"""Peak memory of single-cell activity through the stages (convert → activity on CSR blocks) at two sizes.

Each size runs in a fresh process (``cluster = "none"``: everything in that
process, so its VmHWM is the whole pipeline's peak). Flat memory means the
peak barely moves while the number of cells grows.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.bench_ingest import _h5ad
from benchmarks.common import row
from benchmarks.datasets import SIZES, spec_for
from cytodask.demo import SyntheticAtlasSpec, write_h5ad

PAIRS = {"demo": (25_000, 100_000), "synthetic-1m": (100_000, 1_000_000)}

SCRIPT = """
import sys, warnings
warnings.filterwarnings("ignore")
from cytodask import Config
from cytodask.activity.stage import ActivityStage
from cytodask.core.runner import run_stages
from cytodask.core.store import ResultStore
from cytodask.ingest import ConvertStage, LocalH5ADSource
stages = [ConvertStage("convert", LocalH5ADSource(sys.argv[1]), batch_size=10_000),
          ActivityStage("activity", inputs=("convert",), layer="X", method="analytic")]
run_stages(stages, ResultStore(sys.argv[2]), Config(cluster="none", checkpoint={"fsync": False}))
print(next(l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM")))
"""


def run(dataset: str) -> list[dict[str, Any]]:
    if dataset not in PAIRS:
        raise ValueError(f"unknown dataset {dataset!r}; choose from {sorted(PAIRS)}")
    rows = []
    peaks = {}
    with tempfile.TemporaryDirectory() as d:
        for n in PAIRS[dataset]:
            cached = {spec_for(k).n_cells: k for k in SIZES}.get(n)
            if cached:  # the benchmark datasets' .h5ad, shared with the ingest benchmark
                atlas = _h5ad(cached)
            else:
                atlas = Path(d) / f"a{n}.h5ad"
                write_h5ad(SyntheticAtlasSpec(n_cells=n, n_genes=20_000), atlas)
            t = time.perf_counter()
            out = subprocess.run([sys.executable, "-c", SCRIPT, str(atlas), str(Path(d) / f"r{n}")],
                                 capture_output=True, text=True, check=True)
            peaks[n] = (int(out.stdout.strip().splitlines()[-1]) / 1024, time.perf_counter() - t,
                        atlas.stat().st_size / 2**20)
            if not cached:
                atlas.unlink()
    (a, b) = PAIRS[dataset]
    rows.append(row("activity-memory", f"convert + single-cell CytoSig analytic, {a:,} vs {b:,} cells", peaks[b][1],
                    f"same pipeline at {a:,} cells", peaks[a][1], key=f"activity-memory-{dataset}", threads="all",
                    reference_threads="all", like_for_like=False, table="self", reference_blas="same pipeline",
                    peak_rss_mb_small=peaks[a][0], peak_rss_mb_large=peaks[b][0],
                    peak_growth=peaks[b][0] / peaks[a][0], h5ad_mb_small=peaks[a][2], h5ad_mb_large=peaks[b][2]))
    return rows


if __name__ == "__main__":
    print(run(sys.argv[1] if len(sys.argv) > 1 else "demo"))
