"""Cluster management: kind selection, local clusters, and an existing scheduler in other processes."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cytodask import Config
from cytodask.core import cluster as cl
from tests.e2e import cytodask, write_spec


def test_cluster_kind_selection(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(cl, "gpu_available", lambda: False)
    assert cl.cluster_kind(Config(scheduler_address="tcp://h:8786")) == "address"
    assert cl.cluster_kind(Config()) == "local"
    assert cl.cluster_kind(Config(cluster="none")) == "none"
    with pytest.raises(RuntimeError, match="sees no CUDA device"):
        cl.cluster_kind(Config(cluster="cuda"))
    monkeypatch.setattr(cl, "gpu_available", lambda: True)
    assert cl.cluster_kind(Config()) == "cuda"
    assert cl.cluster_kind(Config(gpu_devices=[])) == "local"


def test_local_cluster_closes_on_error():
    cfg = Config(cluster="local", n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0")
    seen: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        with cl.cluster(cfg, echo=seen.append) as client:
            assert client.submit(lambda x: x + 1, 1).result() == 2
            kept = client
            raise KeyboardInterrupt
    assert kept.status == "closed"
    assert "LocalCluster: 1 workers; dashboard: http" in seen[0]
    with cl.cluster(Config(cluster="none")) as none:
        assert none is None


@pytest.mark.slow
def test_rebuild_on_existing_scheduler_and_workers(tmp_path: Path, e2e_atlas: Path):
    sched_file = tmp_path / "scheduler.json"
    bin_dir = Path(sys.executable).parent
    sched = subprocess.Popen([str(bin_dir / "dask"), "scheduler", "--scheduler-file", str(sched_file),
                              "--port", "0", "--dashboard-address", ":0"], stderr=subprocess.DEVNULL)
    workers = []
    try:
        deadline = time.monotonic() + 60
        while not sched_file.exists():
            assert time.monotonic() < deadline
            time.sleep(0.1)
        address = json.loads(sched_file.read_text())["address"]
        for _ in range(2):
            workers.append(subprocess.Popen([str(bin_dir / "dask"), "worker", address, "--nthreads", "1",
                                             "--no-dashboard"], stderr=subprocess.DEVNULL))
        spec = write_spec(tmp_path / "s.toml", e2e_atlas)
        res = cytodask("rebuild", str(spec), "--output", str(tmp_path / "out"), "--scheduler", address, "-q")
        assert res.returncode == 0, res.stderr
        assert "Dask existing cluster" in res.stdout
        assert (tmp_path / "out" / "exports" / "export" / "differential.parquet").exists()
    finally:
        for p in [*workers, sched]:
            p.terminate()
        for p in [*workers, sched]:
            p.wait(timeout=30)


def test_unreachable_scheduler_is_a_clear_error():
    import dask

    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        with pytest.raises(RuntimeError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:9"):
            with cl.cluster(Config(scheduler_address="tcp://127.0.0.1:9"), echo=None):
                pass


def test_slurm_job_script_from_config():
    """The SLURM worker job that cluster = "slurm" submits (built, not submitted: no SLURM here)."""
    cfg = Config.from_dict({"cluster": "slurm", "dashboard_address": ":0", "rmm_pool_size": "20GB",
                            "slurm": {"queue": "gpu", "account": "cytoatlas", "cores": 16, "memory": "128GB",
                                      "gpus": 2, "walltime": "04:00:00", "job_extra": ["--constraint=a100"]}})
    assert cl.cluster_kind(cfg) == "slurm"
    c = cl.slurm_cluster(cfg, scale=False)
    try:
        script = c.job_script()
    finally:
        c.close()
    for line in ("#SBATCH -p gpu", "#SBATCH -A cytoatlas", "#SBATCH -n 1", "#SBATCH --cpus-per-task=16",
                 "#SBATCH -t 04:00:00", "#SBATCH --gres=gpu:2", "#SBATCH --constraint=a100"):
        assert line in script, (line, script)
    assert "dask_cuda.cli worker" in script and "--rmm-pool-size=20GB" in script
    with pytest.raises(ValueError, match="unknown key 'gpu'"):
        Config.from_dict({"slurm": {"gpu": 1}})
