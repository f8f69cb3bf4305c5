"""What a user must hear about reaches the command line and the Python echo: cells left out of a pseudobulk."""

from __future__ import annotations

import logging
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


def test_a_failing_task_is_reported_once_without_the_workers_traceback(tmp_path: Path, e2e_atlas: Path, caplog,
                                                                       monkeypatch):
    """Local workers' own 'Compute Failed' tracebacks are not printed; cytodask's message names stage and block."""
    import pytest

    import cytodask.differential.stage as diff_stage
    from tests.e2e import write_spec

    def broken(*args, **kwargs):
        raise RuntimeError("planted failure")

    monkeypatch.setattr(diff_stage, "_block", broken)
    spec = write_spec(tmp_path / "s.toml", e2e_atlas)  # one in-process worker with two threads
    caplog.set_level("ERROR", logger="distributed.worker")
    with pytest.raises(Exception, match=r"stage 'disease_vs_healthy' failed in block 0: RuntimeError: planted"):
        rebuild(spec, output=tmp_path / "out", echo=None)
    assert not [r for r in caplog.records if str(r.msg).startswith("Compute Failed")]
    # outside a cytodask cluster the worker logger is as Dask left it
    assert not [f for f in logging.getLogger("distributed.worker").filters if type(f).__name__ == "QuietTaskFailures"]
