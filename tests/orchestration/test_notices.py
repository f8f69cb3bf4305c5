"""What a user must hear about reaches the command line and the Python echo: cells left out of a pseudobulk."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cytodask.cli import main
from cytodask.orchestration.rebuild import rebuild
from tests.conftest import make_counts_adata

SPEC = """
[atlas]
name = "notices"
[config]
cluster = "none"
batch_size = 500
[source]
path = "{atlas}"
[[stages]]
name = "pseudobulk"
type = "pseudobulk"
inputs = ["convert"]
by = ["cell_type", "sample"]
min_cells = 5
"""


def _atlas(tmp_path: Path) -> Path:
    a = make_counts_adata(1000, 50, seed=4)
    labels = a.obs["cell_type"].astype(object).to_numpy()
    labels[np.arange(0, 1000, 50)] = np.nan  # 20 cells without a cell type
    a.obs["cell_type"] = labels
    path = tmp_path / "a.h5ad"
    a.write_h5ad(path)
    spec = tmp_path / "s.toml"
    spec.write_text(SPEC.format(atlas=path))
    return spec


def test_python_echo_names_the_cells_left_out(tmp_path: Path):
    said: list[str] = []
    reports = rebuild(_atlas(tmp_path), output=tmp_path / "out", echo=said.append)
    notice = [s for s in said if "missing label" in s]
    assert notice == ["  pseudobulk: 20 cells with a missing label in ['cell_type', 'sample'] were left out; give "
                      "them a label (e.g. 'unknown') in the atlas to keep them"]
    assert reports[1].summary["dropped_missing_label"] == 20


def test_command_line_says_it_too(tmp_path: Path, capsys):
    spec = _atlas(tmp_path)
    assert main(["rebuild", str(spec), "--output", str(tmp_path / "o"), "-q"]) == 0
    assert "pseudobulk: 20 cells with a missing label" in capsys.readouterr().err
