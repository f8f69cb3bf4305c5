"""Issue 14.1: a relative output folder on an existing cluster whose workers run in another directory.

The user's steps: ``dask scheduler`` and ``dask worker`` started from one directory (as SLURM does),
then, from another one, ``cytodask rebuild my.toml --output rel-dir --scheduler tcp://...`` and
``Pipeline(Config(scheduler_address=...)).process_submission(..., output_dir="rel-dir")``. Every path
must be absolute before it reaches a worker.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cytodask import Config, Pipeline
from cytodask.cli import main
from tests.e2e import write_spec

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def remote_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A scheduler and one worker process started with their working directory in a folder of their own."""
    where = tmp_path_factory.mktemp("cluster-cwd")
    sched_file = where / "scheduler.json"
    procs = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--scheduler-file",
                               str(sched_file), "--port", "0", "--dashboard-address", ":0"], cwd=where,
                              stderr=subprocess.DEVNULL)]
    try:
        deadline = time.monotonic() + 60
        while not sched_file.exists():
            assert time.monotonic() < deadline, "the dask scheduler did not start"
            time.sleep(0.1)
        address = json.loads(sched_file.read_text())["address"]
        procs.append(subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads",
                                       "1", "--no-dashboard", "--no-nanny"], cwd=where,
                                      stderr=subprocess.DEVNULL))
        yield address, where
    finally:
        for p in reversed(procs):  # the worker first: it would wait for a scheduler that is gone
            p.terminate()
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def _nothing_written_in(where: Path) -> None:
    assert sorted(p.name for p in where.iterdir()) == ["scheduler.json"], "results were written where the workers run"


def test_rebuild_with_a_relative_output_on_an_existing_cluster(tmp_path: Path, e2e_atlas: Path, remote_cluster,
                                                               monkeypatch, capsys):
    address, cluster_cwd = remote_cluster
    write_spec(tmp_path / "my.toml", e2e_atlas, batch=1000)
    monkeypatch.chdir(tmp_path)
    assert main(["rebuild", "my.toml", "--output", "rel-dir", "--scheduler", address, "-q"]) == 0, \
        capsys.readouterr().err
    assert "Dask existing cluster" in capsys.readouterr().out
    assert (tmp_path / "rel-dir" / "exports" / "export" / "differential.parquet").exists()
    saved = json.loads((tmp_path / "rel-dir" / "spec.json").read_text())
    assert Path(saved["config"]["output_dir"]).is_absolute()
    _nothing_written_in(cluster_cwd)
    assert main(["status", "rel-dir"]) == 0
    assert "stale" not in capsys.readouterr().out


def test_pipeline_with_a_relative_output_and_input_on_an_existing_cluster(tmp_path: Path, e2e_atlas: Path,
                                                                          remote_cluster, monkeypatch):
    address, cluster_cwd = remote_cluster
    (tmp_path / "upload.h5ad").symlink_to(e2e_atlas)
    monkeypatch.chdir(tmp_path)
    pipe = Pipeline(Config(scheduler_address=address, batch_size=1000))
    res = pipe.process_submission(h5ad_path="upload.h5ad", output_dir="results/", signatures=["CytoSig"],
                                  analyses=["activity", "differential"])
    assert res.output_dir == tmp_path / "results"
    assert res.differential["activity_CytoSig_cell_type_l2"]["pvalue"].notna().any()
    saved = json.loads((tmp_path / "results" / "spec.json").read_text())
    assert saved["source"]["path"] == str(tmp_path / "upload.h5ad")
    _nothing_written_in(cluster_cwd)
