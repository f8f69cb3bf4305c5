"""Write a world atlas: ``<atlas>.h5ad`` (counts streamed block by block), sample tables, truth.

Every file is written under a temporary name and moved into place when
complete; ``world.json`` (the spec and generator version) is written last, so
an interrupted write is redone and a complete one is reused
(:func:`write_world` is resumable and idempotent).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import h5py
import numpy as np

from cytodask.core.atomic import atomic_path
from cytodask.demo.h5ad import _CsrWriter
from cytodask.demo.spec import check_int
from cytodask.demo.world.cells import hidden_frame, iter_blocks, obs_frame
from cytodask.demo.world.genes import var_frame
from cytodask.demo.world.model import world_model
from cytodask.demo.world.spec import GENERATOR, WorldSpec
from cytodask.demo.world.tables import TABLES, sample_tables
from cytodask.demo.world.truth import truth


@dataclass(frozen=True)
class WorldPaths:
    """Where :func:`write_world` put an atlas."""

    h5ad: Path
    tables: dict[str, Path]
    truth: Path
    truth_cells: Path
    stamp: Path


def world_paths(spec: WorldSpec, out_dir: str | os.PathLike[str]) -> WorldPaths:
    """The paths :func:`write_world` writes for ``spec`` in ``out_dir``."""
    out = Path(out_dir)
    return WorldPaths(h5ad=out / f"{spec.atlas}.h5ad",
                      tables={name: out / f"{name}.csv" for name in TABLES[spec.atlas]},
                      truth=out / "truth.json", truth_cells=out / "truth_cells.csv", stamp=out / "world.json")


def write_world(spec: WorldSpec, out_dir: str | os.PathLike[str], *, batch_size: int = 10_000,
                compression: str | None = None, progress: Callable[[int, int], object] | None = None,
                echo: Callable[[str], object] | None = None) -> WorldPaths:
    """Write ``spec``'s atlas, sample tables, truth.json and truth_cells.csv to ``out_dir``.

    Reuses a complete earlier write of the same spec (``world.json`` matches
    and every file exists); otherwise writes everything again, atomically file
    by file. Memory stays flat in ``n_cells`` for the counts (one tile and one
    block at a time); ``obs`` is written whole (about 100 bytes per cell).
    """
    check_int("batch_size", batch_size, 1, "a positive number of cells per block")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = world_paths(spec, out)
    wanted = {**asdict(spec), "generator": GENERATOR}
    files = [paths.h5ad, paths.truth, paths.truth_cells, *paths.tables.values()]
    if paths.stamp.exists() and json.loads(paths.stamp.read_text()) == wanted and all(p.exists() for p in files):
        if echo is not None:
            echo(f"synthetic {spec.atlas} atlas in {out} is up to date ({spec.n_cells} cells)")
        return paths
    if echo is not None:
        echo(f"writing synthetic {spec.atlas} atlas to {out} ({spec.n_cells} cells x {spec.n_genes} genes)...")
    paths.stamp.unlink(missing_ok=True)
    for name, frame in sample_tables(spec).items():
        with atomic_path(paths.tables[name]) as tmp:
            frame.to_csv(tmp, index=False)
    with atomic_path(paths.truth) as tmp:
        Path(tmp).write_text(json.dumps(truth(spec), indent=1, allow_nan=False))
    _write_truth_cells(spec, paths.truth_cells, batch_size)
    _write_h5ad(spec, paths.h5ad, batch_size, compression, progress)
    with atomic_path(paths.stamp) as tmp:
        Path(tmp).write_text(json.dumps(wanted))
    return paths


def _write_truth_cells(spec: WorldSpec, path: Path, batch_size: int) -> None:
    model = world_model(spec)
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        for start in range(0, spec.n_cells, batch_size):
            frame = hidden_frame(model, start, min(start + batch_size, spec.n_cells))
            frame.to_csv(f, header=start == 0, index_label="cell")


def _write_h5ad(spec: WorldSpec, path: Path, batch_size: int, compression: str | None,
                progress: Callable[[int, int], object] | None) -> None:
    from anndata.io import write_elem

    model = world_model(spec)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["encoding-type"] = "anndata"
        f.attrs["encoding-version"] = "0.1.0"
        write_elem(f, "obs", obs_frame(model, 0, spec.n_cells))
        write_elem(f, "var", var_frame(spec.n_genes, ensembl_index=model.design.ensembl_index))
        for key in ("layers", "obsm", "varm", "obsp", "varp", "uns"):
            write_elem(f, key, {})
        target = _CsrWriter(f, "X", spec, np.int32, compression)
        for _, stop, _, counts in iter_blocks(spec, batch_size):
            target.append(counts)
            if progress is not None:
                progress(stop, spec.n_cells)
