"""The scAtlas-like synthetic world (cytodask.demo.world) rebuilt once per test session with every cancer and
organ stage, for the truth-recovery tests of tests/cancer and tests/organ."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path

import anndata as ad
import pandas as pd

SPEC = """
[atlas]
name = "scatlas-world"
[config]
batch_size = 4096
cluster = "none"
[source]
path = "{h5ad}"

[[stages]]
name = "pseudobulk"
type = "pseudobulk"
inputs = ["convert"]
by = ["cellType1", "tissue", "donorID", "sampleID"]
carry = ["cancerType", "organ"]
min_cells = 5
[[stages]]
name = "activity"
type = "activity"
inputs = ["pseudobulk"]
[[stages]]
name = "activity_cells"
type = "activity"
inputs = ["convert"]
layer = "X"

[[stages]]
name = "tumor_vs_adjacent"
type = "tumor_vs_adjacent"
inputs = ["activity"]
[[stages]]
name = "cancer_type"
type = "cancer_type_specificity"
inputs = ["activity"]
[[stages]]
name = "infiltration"
type = "immune_infiltration"
inputs = ["convert", "activity"]
atlas = "scatlas"
[[stages]]
name = "exhaustion"
type = "t_cell_exhaustion"
inputs = ["convert", "activity_cells"]
atlas = "scatlas"
[[stages]]
name = "caf"
type = "caf_subtypes"
inputs = ["convert", "activity_cells"]
atlas = "scatlas"
[[stages]]
name = "organ"
type = "organ_specificity"
inputs = ["activity"]
tissue_col = "tissue"
[[stages]]
name = "composition"
type = "organ_composition"
inputs = ["convert"]
tissue_col = "tissue"
[[stages]]
name = "export"
type = "export"
inputs = ["tumor_vs_adjacent", "cancer_type", "infiltration", "exhaustion", "caf", "organ", "composition"]
formats = ["parquet", "json"]
"""


@lru_cache(maxsize=1)
def world_run() -> tuple[Path, dict, pd.DataFrame]:
    """``(output dir, truth, truth_cells)`` of the unit-size scAtlas-like world rebuilt from :data:`SPEC`."""
    from cytodask.demo.world import truth, truth_cells, world_spec, write_world
    from cytodask.orchestration.rebuild import rebuild

    base = Path(tempfile.mkdtemp(prefix="cytodask-world-"))
    atexit.register(shutil.rmtree, base, True)
    spec = world_spec("scatlas", size="unit")
    paths = write_world(spec, base / "world")
    (base / "spec.toml").write_text(SPEC.format(h5ad=paths.h5ad))
    rebuild(base / "spec.toml", output=base / "out", echo=None)
    return base / "out", truth(spec), truth_cells(spec)


def stage_data(out: Path, name: str) -> Path:
    return out / "stages" / name / "data.zarr"


def read_activity(out: Path, name: str = "activity") -> ad.AnnData:
    return ad.read_zarr(stage_data(out, name))
