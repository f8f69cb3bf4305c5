"""The Inflammation-like synthetic world (cytodask.demo.world, unit size) rebuilt once per test session with
every disease stage, for the truth-recovery tests of tests/disease/test_world.py.

The response stage runs with small settings (4 folds, 1 repeat, 4 permutations, 25 trees): the stage's
plumbing is what the rebuild checks; the AUC proof calls the function with enough permutations.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path

import anndata as ad

SPEC = """
[atlas]
name = "inflammation-world"
[config]
batch_size = 4096
cluster = "none"
[source]
path = "{h5ad}"

[[stages]]
name = "pseudobulk"
type = "pseudobulk"
inputs = ["convert"]
by = ["Level2", "sampleID"]
carry = ["patientID", "studyID", "disease", "therapyResponse", "timepoint"]
exclude = {{ Level1 = ["Doublets", "LowQuality_cells"] }}
min_cells = 10
[[stages]]
name = "activity"
type = "activity"
inputs = ["pseudobulk"]
signature = "CytoSig"

[[stages]]
name = "profiles"
type = "disease_profiles"
inputs = ["activity"]
[[stages]]
name = "disease_vs_healthy"
type = "disease_vs_healthy"
inputs = ["activity"]
study_col = "studyID"
patient_col = "patientID"
[[stages]]
name = "disease_vs_all_healthy"
type = "disease_vs_healthy"
inputs = ["activity"]
patient_col = "patientID"
[[stages]]
name = "drivers"
type = "disease_drivers"
inputs = ["disease_vs_healthy"]
[[stages]]
name = "conserved"
type = "disease_conserved"
inputs = ["disease_vs_healthy"]
[[stages]]
name = "response"
type = "treatment_response"
inputs = ["activity"]
n_splits = 4
n_repeats = 1
n_permutations = 4
n_estimators = 25
[[stages]]
name = "longitudinal"
type = "disease_longitudinal"
inputs = ["activity"]
[[stages]]
name = "export"
type = "export"
inputs = ["profiles", "disease_vs_healthy", "drivers", "conserved", "response", "longitudinal"]
formats = ["parquet", "json"]
"""


@lru_cache(maxsize=1)
def world_run() -> tuple[Path, dict]:
    """``(output dir, truth)`` of the unit-size Inflammation-like world rebuilt from :data:`SPEC`."""
    from cytodask.demo.world import truth, world_spec, write_world
    from cytodask.orchestration.rebuild import rebuild

    base = Path(tempfile.mkdtemp(prefix="cytodask-disease-world-"))
    atexit.register(shutil.rmtree, base, True)
    spec = world_spec("inflammation", size="unit")
    paths = write_world(spec, base / "world")
    (base / "spec.toml").write_text(SPEC.format(h5ad=paths.h5ad))
    rebuild(base / "spec.toml", output=base / "out", echo=None)
    return base / "out", truth(spec)


def stage_data(out: Path, name: str) -> Path:
    return out / "stages" / name / "data.zarr"


def read_activity(out: Path) -> ad.AnnData:
    return ad.read_zarr(stage_data(out, "activity"))
