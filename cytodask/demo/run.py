"""``cytodask demo``: build the embedded demo atlas, rebuild it, show the planted signal."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anndata
import pandas as pd

from cytodask.core.atomic import atomic_path
from cytodask.demo.h5ad import write_h5ad
from cytodask.demo.spec import SyntheticAtlasSpec
from cytodask.demo.truth import donor_table, planted_truth


def default_spec() -> Path:
    """``graphs/demo.toml`` of this checkout."""
    path = Path(__file__).resolve().parents[2] / "graphs" / "demo.toml"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found; pass --spec PATH to a demo spec")
    return path


def ensure_demo_atlas(path: Path, spec: SyntheticAtlasSpec, *, echo: Callable[[str], None] = print) -> Path:
    """Write the demo atlas unless an identical one (same parameters) is already there."""
    stamp = path.with_suffix(".json")
    wanted = {"n_cells": spec.n_cells, "n_genes": spec.n_genes, "n_donors": spec.n_donors, "seed": spec.seed,
              "planted": [list(p) for p in spec.planted], "generator": 1}
    if path.exists() and stamp.exists() and json.loads(stamp.read_text()) == wanted:
        echo(f"demo atlas {path} is up to date ({spec.n_cells} cells × {spec.n_genes} genes)")
        return path
    echo(f"writing demo atlas {path} ({spec.n_cells} cells × {spec.n_genes} genes)...")
    write_h5ad(spec, path)
    stamp.write_text(json.dumps(wanted))
    return path


def planted_recovery(results: Path, spec: SyntheticAtlasSpec) -> pd.DataFrame:
    """For each planted (cytokine, cell type): rank and mean z in disease samples, and the test's q."""
    act = anndata.read_zarr(results / "stages" / "activity" / "data.zarr")
    from cytodask.differential.stage import read_table

    diff = read_table(results / "stages" / "disease_vs_healthy" / "data.zarr")
    rows = []
    for _, t in planted_truth(spec).iterrows():
        mask = ((act.obs["cell_type_l2"].astype(str) == t["cell_type_l2"])
                & (act.obs["disease"].astype(str) == "disease") & ~act.obs["empty"].astype(bool)).to_numpy()
        z = pd.DataFrame(act.X[mask], columns=act.var_names).mean()
        rank = int((z > z[t["cytokine"]]).sum()) + 1
        d = diff[(diff["signature"] == t["cytokine"]) & (diff["cell_type_l2"].astype(str) == t["cell_type_l2"])]
        rows.append({"cytokine": t["cytokine"], "cell_type": t["cell_type_l2"], "rank": rank, "of": len(z),
                     "mean_z": float(z[t["cytokine"]]), "n_samples": int(mask.sum()),
                     "activity_diff": float(d["activity_diff"].iloc[0]) if len(d) else float("nan"),
                     "qvalue": float(d["qvalue"].iloc[0]) if len(d) else float("nan")})
    return pd.DataFrame(rows)


def run_demo(*, output: Path, n_cells: int = 50_000, n_genes: int = 20_000, spec: str | None = None,
             quiet: bool = False, progress_factory: Any = None) -> int:
    from cytodask.orchestration.rebuild import rebuild

    output = output.resolve()
    output.mkdir(parents=True, exist_ok=True)
    atlas_spec = SyntheticAtlasSpec(n_cells=n_cells, n_genes=n_genes)
    atlas = ensure_demo_atlas(output / "demo_atlas.h5ad", atlas_spec)
    os.environ["CYTODASK_DEMO_ATLAS"] = str(atlas)
    samples = output / "demo_samples.csv"  # per-sample metadata as a separate table, as CIMA ships it
    table = donor_table(atlas_spec).rename(columns={"sample": "Sample_name", "age": "Age"})
    if not samples.exists() or not pd.read_csv(samples).equals(table):
        with atomic_path(samples) as tmp:
            table.to_csv(tmp, index=False)
    os.environ["CYTODASK_DEMO_SAMPLES"] = str(samples)
    results = output / "results"
    spec_path = Path(spec) if spec else default_spec()
    progress = progress_factory(not quiet) if progress_factory else None
    if progress is not None:
        with progress:
            reports = rebuild(spec_path, output=results, callbacks=[progress])
    else:
        reports = rebuild(spec_path, output=results)
    computed = sum(r.computed for r in reports)
    reused = sum(r.skipped for r in reports)
    print(f"rebuild done: {computed} block{'' if computed == 1 else 's'} computed, {reused} reused "
          f"(run it again: nothing is recomputed)")
    exports = results / "exports" / "export"
    print(f"results: {results}   exports: {exports}   status: cytodask status {results}")
    rec = planted_recovery(results, atlas_spec)
    ok = True
    for r in rec.itertuples():
        good = r.rank == 1 and r.mean_z >= 3 and r.qvalue < 0.05
        ok &= good
        print(f"planted signal {'recovered' if good else 'NOT recovered'}: {r.cytokine} in disease {r.cell_type} "
              f"ranks {r.rank}/{r.of} (mean z = {r.mean_z:.1f} over {r.n_samples} samples); "
              f"disease vs healthy: Δz = {r.activity_diff:.1f}, q = {r.qvalue:.1e}")
    sys.stdout.flush()
    return 0 if ok else 1


def run_world(atlas: str, *, output: Path, n_cells: int | None = None, n_genes: int | None = None,
              size: str | None = None, seed: int = 0, quiet: bool = False, progress_factory: Any = None,
              batch_size: int = 10_000) -> int:
    """``cytodask demo --atlas``: write a synthetic-world atlas, its sample tables and truth to ``output``."""
    import math
    import time

    from cytodask.demo.world import world_spec, write_world

    spec = world_spec(atlas, size, n_cells=n_cells, n_genes=n_genes, seed=seed)
    progress = progress_factory(not quiet) if progress_factory else None
    t0 = time.perf_counter()
    if progress is not None:
        stage = f"synthetic {atlas}"
        with progress:
            progress({"event": "stage_started", "stage": stage, "skipped": 0,
                      "n_blocks": math.ceil(spec.n_cells / batch_size)})
            paths = write_world(spec, output, batch_size=batch_size, echo=print,
                                progress=lambda done, total: progress({"event": "block_done", "stage": stage}))
    else:
        paths = write_world(spec, output, batch_size=batch_size, echo=print)
    tables = ", ".join(p.name for p in paths.tables.values())
    print(f"{atlas}: {paths.h5ad} ({spec.n_cells} cells x {spec.n_genes} genes), tables: {tables}, "
          f"truth: {paths.truth.name}, {paths.truth_cells.name} ({time.perf_counter() - t0:.1f} s)")
    return 0
