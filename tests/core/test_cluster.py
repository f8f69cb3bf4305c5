"""Cluster management: kind selection, local clusters, and an existing scheduler in other processes."""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
import warnings
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


# The options of dask-cuda's worker command (``dask_cuda/cli.py`` of dask-cuda 26.10, ``@cuda.command("worker")``)
# that a cytodask job passes, as argparse reads them: a word the real command would not take fails here too.
# The gpu-marked test_slurm_command_parsed_by_dask_cuda parses the same line with dask-cuda's own click command.
def _dask_cuda_worker_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m dask_cuda.cli", exit_on_error=False, allow_abbrev=False)
    p.add_argument("scheduler")
    p.add_argument("--name")
    p.add_argument("--nthreads", type=int)
    p.add_argument("--memory-limit")
    p.add_argument("--death-timeout")
    p.add_argument("--local-directory")
    p.add_argument("--interface")
    p.add_argument("--protocol")
    p.add_argument("--rmm-pool-size")
    p.add_argument("--set-rmm-allocator-for-libs", dest="rmm_allocator_external_lib_list", choices=["cupy", "torch"])
    return p


def _worker_argv(script: str, module: str) -> list[str]:
    """The worker command of a job script, after ``python -m MODULE`` (dask-jobqueue's ``%(worker_command)s``)."""
    (line,) = [ln for ln in script.splitlines() if f" -m {module}" in ln]
    words = shlex.split(line)
    return words[words.index(module) + 1:]


GPU_SLURM = {"cluster": "slurm", "dashboard_address": ":0", "rmm_pool_size": "20GB",
             "slurm": {"queue": "gpu", "account": "cytoatlas", "cores": 16, "memory": "128GB",
                       "gpus": 2, "walltime": "04:00:00", "job_extra": ["--constraint=a100"]}}


def _job_script(cfg: Config) -> tuple[str, str]:
    c = cl.slurm_cluster(cfg, scale=False)
    try:
        return c.job_script(), c.scheduler_address
    finally:
        c.close()


def test_slurm_job_script_from_config():
    """The SLURM worker job that cluster = "slurm" submits (built, not submitted: no SLURM here).

    ``python -m dask_cuda.cli`` runs dask-cuda's worker command itself: the scheduler address comes
    next (a ``worker`` word there would be read as the scheduler address).
    """
    cfg = Config.from_dict(GPU_SLURM)
    assert cl.cluster_kind(cfg) == "slurm"
    script, address = _job_script(cfg)
    for line in ("#SBATCH -p gpu", "#SBATCH -A cytoatlas", "#SBATCH -n 1", "#SBATCH --cpus-per-task=16",
                 "#SBATCH -t 04:00:00", "#SBATCH --gres=gpu:2", "#SBATCH --constraint=a100"):
        assert line in script, (line, script)
    args = _dask_cuda_worker_parser().parse_args(_worker_argv(script, "dask_cuda.cli"))
    assert args.scheduler == address and address.startswith("tcp://")
    assert args.rmm_pool_size == "20GB" and args.rmm_allocator_external_lib_list == "cupy"
    assert args.name  # dask-jobqueue names the job's workers; dask-cuda suffixes -0, -1 per GPU
    with pytest.raises(ValueError, match="unknown key 'gpu'"):
        Config.from_dict({"slurm": {"gpu": 1}})


def test_slurm_gpu_job_memory_and_threads_per_process():
    """dask-cuda starts one worker per GPU and applies --nthreads/--memory-limit to each: per-GPU figures."""
    from dask.utils import parse_bytes

    script, _ = _job_script(Config.from_dict(GPU_SLURM))
    args = _dask_cuda_worker_parser().parse_args(_worker_argv(script, "dask_cuda.cli"))
    assert args.nthreads == 16 // 2
    per_worker = parse_bytes(args.memory_limit)
    assert 2 * per_worker <= parse_bytes("128GB")  # was 2 x 119 GiB = 238 GiB for a 128 GB job
    assert per_worker == pytest.approx(parse_bytes("64GB"), rel=1e-3)
    # dask-jobqueue's own bookkeeping agrees: two worker processes per job, named as dask-cuda names them
    kw = cl.slurm_kwargs(Config.from_dict(GPU_SLURM))
    assert kw["processes"] == 2 and kw["worker_command"] == "dask_cuda.cli"


def test_slurm_cpu_job_keeps_dask_worker():
    cfg = Config.from_dict({"cluster": "slurm", "dashboard_address": ":0",
                            "slurm": {"cores": 8, "memory": "32GB", "processes": 2}})
    script, address = _job_script(cfg)
    argv = _worker_argv(script, "distributed.cli.dask_worker")
    assert argv[0] == address and "--nworkers" in argv and argv[argv.index("--nworkers") + 1] == "2"
    assert argv[argv.index("--nthreads") + 1] == "4"
    assert "dask_cuda" not in script and "--gres" not in script


def test_slurm_gpu_job_checks():
    with pytest.raises(ValueError, match="cores = 1 < gpus = 2"):
        cl.slurm_kwargs(Config.from_dict({"slurm": {"cores": 1, "gpus": 2}}))
    with pytest.warns(UserWarning, match="processes = 3 is ignored with gpus = 2"):
        kw = cl.slurm_kwargs(Config.from_dict({"slurm": {"cores": 8, "gpus": 2, "processes": 3}}))
    assert kw["processes"] == 2
    assert "worker_extra_args" not in cl.slurm_kwargs(Config.from_dict({"slurm": {"gpus": 1}}))


def test_local_cuda_cluster_arguments(monkeypatch: pytest.MonkeyPatch):
    """RMM pool used by CuPy too, a few threads per GPU worker, devices as given (no GPU needed to build them)."""
    monkeypatch.setattr(cl, "available_threads", lambda: 32)
    kw = cl.local_cuda_kwargs(Config(gpu_devices=[0, 1], rmm_pool_size="20GB", dashboard_address=":0"), 2)
    assert kw["rmm_pool_size"] == "20GB" and kw["rmm_allocator_external_lib_list"] == ["cupy"]
    assert kw["CUDA_VISIBLE_DEVICES"] == "0,1" and kw["threads_per_worker"] == cl.MAX_CUDA_THREADS
    kw = cl.local_cuda_kwargs(Config(), 1)
    assert "rmm_pool_size" not in kw and "rmm_allocator_external_lib_list" not in kw and "CUDA_VISIBLE_DEVICES" not in kw
    monkeypatch.setattr(cl, "available_threads", lambda: 3)
    assert cl.cuda_threads(Config(), 2) == 1 and cl.cuda_threads(Config(), 1) == 3
    assert cl.cuda_threads(Config(threads_per_worker=7), 8) == 7


def test_rmm_pool_without_rmm_is_a_clear_error(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(sys.modules, "rmm", None)  # import rmm -> ImportError
    with pytest.raises(RuntimeError, match=r"rmm_pool_size = '20GB' needs RMM: pip install 'cytodask\[gpu\]'"):
        cl.check_rmm(Config(rmm_pool_size="20GB"))
    cl.check_rmm(Config())  # no pool asked: nothing to check


def test_gpu_devices_without_gpu_warns_or_refuses(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(cl, "gpu_available", lambda: False)
    with pytest.warns(UserWarning, match=r"gpu_devices = \[0, 1\] but CuPy sees no CUDA device"):
        assert cl.cluster_kind(Config(gpu_devices=[0, 1])) == "local"
    with pytest.raises(RuntimeError, match="cluster = 'cuda' but CuPy sees no CUDA device"):
        cl.cluster_kind(Config(gpu_devices=[0, 1], cluster="cuda"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cl.cluster_kind(Config()) == "local"  # None: any GPU there is, none: no warning
        assert cl.cluster_kind(Config(gpu_devices=[])) == "local"


def test_backend_chosen_once_per_run(monkeypatch: pytest.MonkeyPatch):
    from cytodask.core.backend import run_backend

    monkeypatch.setattr(cl, "gpu_available", lambda: True)
    assert cl.run_backend_for("cuda", Config()) == "cupy"
    assert cl.run_backend_for("local", Config()) == "numpy"  # CPU workers on a GPU machine: NumPy blocks
    assert cl.run_backend_for("none", Config(gpu_devices=[])) == "numpy"
    assert cl.run_backend_for("none", Config()) == "cupy"
    assert cl.run_backend_for("slurm", Config.from_dict({"slurm": {"gpus": 1}})) == "cupy"
    assert cl.run_backend_for("slurm", Config()) == "numpy"

    class Workers:
        def __init__(self, seen):
            self.seen = seen

        def run(self, fn):
            return self.seen

    assert cl.run_backend_for("address", Config(), Workers({"a": True, "b": True})) == "cupy"
    assert cl.run_backend_for("address", Config(), Workers({"a": True, "b": False})) == "numpy"
    assert cl.run_backend_for("address", Config(), Workers({})) == "numpy"

    class Unreachable:
        def run(self, fn):
            raise OSError("timed out")

    assert cl.run_backend_for("address", Config(), Unreachable()) == "auto"
    monkeypatch.setattr(cl, "gpu_available", lambda: False)
    assert run_backend() == "auto" and run_backend("cupy") == "cupy"
    with cl.cluster(Config(cluster="none"), echo=None):
        assert run_backend() == "numpy" and run_backend("cupy") == "cupy"
    cfg = Config(cluster="local", n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0")
    with cl.cluster(cfg, echo=None):
        assert run_backend() == "numpy"
    assert run_backend() == "auto"
