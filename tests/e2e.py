"""End-to-end helpers: a small synthetic atlas, a demo-shaped spec and the real command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from cytodask.demo import SyntheticAtlasSpec

REPO = Path(__file__).resolve().parents[1]
ATLAS = SyntheticAtlasSpec(n_cells=4000, n_genes=5000, n_donors=10, seed=3)

SPEC = """
[atlas]
name = "e2e"
[config]
batch_size = {batch}
cluster = "local"
n_workers = 1
threads_per_worker = 2
processes = {processes}
dashboard_address = ":0"
[config.checkpoint]
fsync = true
[source]
path = "{atlas}"
[[stages]]
name = "pseudobulk"
type = "pseudobulk"
inputs = ["convert"]
by = ["cell_type_l2", "sample"]
carry = ["disease", "donor"]
min_cells = 5
[[stages]]
name = "activity"
type = "activity"
inputs = ["pseudobulk"]
signature = "CytoSig"
lam = {lam}
block_rows = 16
[[stages]]
name = "disease_vs_healthy"
type = "differential"
inputs = ["activity"]
group_col = "disease"
group1 = "disease"
group2 = "healthy"
strata = ["cell_type_l2"]
[[stages]]
name = "donor_correlation"
type = "correlation"
inputs = ["activity"]
metadata = "{samples}"
key = "Sample_name"
on = "sample"
variables = ["Age", "BMI"]
strata = ["cell_type_l2"]
min_n = 5
[[stages]]
name = "export"
type = "export"
inputs = ["activity", "disease_vs_healthy", "donor_correlation"]
formats = ["h5ad", "parquet"]
"""


def samples_csv(atlas: Path) -> Path:
    """The per-sample metadata table written beside the e2e atlas (CIMA-style column names)."""
    return atlas.with_name("samples.csv")


def write_spec(path: Path, atlas: Path, *, batch: int = 250, lam: float = 5e5, processes: bool = False,
               samples: Path | None = None) -> Path:
    path.write_text(SPEC.format(atlas=atlas, batch=batch, lam=lam, processes=str(processes).lower(),
                                samples=samples or samples_csv(atlas)))
    return path


def cytodask(*args: str, env: dict[str, str] | None = None, **kw) -> subprocess.CompletedProcess[str]:
    """Run the real command line in a subprocess."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "cytodask.cli", *args], capture_output=True, text=True,
                          env=full_env, cwd=REPO, timeout=600, **kw)


def popen(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """Start the command line in its own process group (so kill -9 takes its workers too)."""
    return subprocess.Popen([sys.executable, "-m", "cytodask.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})}, cwd=REPO,
                            start_new_session=True)
