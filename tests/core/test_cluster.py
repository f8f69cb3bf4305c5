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
