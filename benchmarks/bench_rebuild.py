"""Nightly rebuild: a full run of graphs/demo.toml vs an unchanged (no-op) rerun, as the scheduler sees them.

Both are timed as whole ``cytodask rebuild`` commands (process start, imports,
fingerprinting included) and from the run log (in-process time).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import row
from cytodask.core.events import read_run_log
from cytodask.demo import SyntheticAtlasSpec, donor_table
from cytodask.demo.run import ensure_demo_atlas

REPO = Path(__file__).resolve().parents[1]
SIZES = {"demo": 50_000, "synthetic-100k": 100_000}


def _rebuild(out: Path, env: dict[str, str]) -> tuple[float, float]:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "cytodask.cli", "rebuild", str(REPO / "graphs" / "demo.toml"),
                    "--output", str(out), "-q"], check=True, capture_output=True, env={**os.environ, **env})
    wall = time.perf_counter() - t
    fin = [e for e in read_run_log(out / "run-log.jsonl") if e["event"] == "run_finished"]
    return wall, fin[-1]["seconds"]


def run(dataset: str) -> list[dict[str, Any]]:
    n = SIZES.get(dataset)
    if n is None:
        raise ValueError(f"unknown dataset {dataset!r}; choose from {sorted(SIZES)}")
    spec = SyntheticAtlasSpec(n_cells=n)
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        atlas = ensure_demo_atlas(d / "demo_atlas.h5ad", spec, echo=lambda _: None)
        samples = d / "demo_samples.csv"
        donor_table(spec).rename(columns={"sample": "Sample_name", "age": "Age"}).to_csv(samples, index=False)
        env = {"CYTODASK_DEMO_ATLAS": str(atlas), "CYTODASK_DEMO_SAMPLES": str(samples)}
        full_wall, full_run = _rebuild(d / "out", env)
        noop_wall, noop_run = _rebuild(d / "out", env)
    return [row("rebuild", f"graphs/demo.toml, {n:,} cells: unchanged rerun vs full run", noop_wall,
                "full rebuild (same command)", full_wall, key="rebuild-noop", threads="spec", reference_threads="spec",
                like_for_like=False, table="self", reference_blas="same command",
                noop_share_wall=noop_wall / full_wall, noop_share_in_process=noop_run / full_run,
                full_in_process_s=full_run, noop_in_process_s=noop_run)]


if __name__ == "__main__":
    for row in run(sys.argv[1] if len(sys.argv) > 1 else "demo"):
        print(row)
