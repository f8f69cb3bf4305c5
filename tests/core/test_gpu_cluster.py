"""GPU clusters (issue 15.4/5/6/7): a LocalCUDACluster with an RMM pool that CuPy uses, the run's backend,
GPU-worker threads, an activity rebuild through it equal to the CPU's, and the SLURM worker command
read by dask-cuda's own command line parser. Skipped without a CUDA device (and without dask-cuda / rmm).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import anndata as ad
import numpy as np
import pytest

from cytodask import Config
from cytodask.activity.stage import ActivityStage
from cytodask.core import cluster as cl
from cytodask.core.backend import run_backend
from cytodask.core.runner import run_stages
from cytodask.core.store import ResultStore
from cytodask.demo import SyntheticAtlasSpec, write_h5ad
from cytodask.ingest import ConvertStage, LocalH5ADSource
from tests.core.test_cluster import GPU_SLURM, _job_script, _worker_argv
from tests.gpu_util import requires_gpu

pytestmark = requires_gpu


def _worker_gpu_state() -> dict:
    import cupy

    state = {"allocator": getattr(cupy.cuda.get_allocator(), "__name__", "cupy"),
             "devices": int(cupy.cuda.runtime.getDeviceCount()),
             "visible": os.environ.get("CUDA_VISIBLE_DEVICES", "")}
    try:
        import rmm

        state["resource"] = type(rmm.mr.get_current_device_resource()).__name__
    except ImportError:
        state["resource"] = None
    return state


SPEC = SyntheticAtlasSpec(n_cells=1200, n_genes=5000, n_donors=6, seed=5)


def _activity(h5ad: Path, store: ResultStore, cfg: Config, client=None) -> ad.AnnData:
    stages = [ConvertStage("convert", LocalH5ADSource(h5ad), batch_size=400),
              ActivityStage("act", inputs=("convert",), layer="X", method="analytic")]
    run_stages(stages, store, cfg, client=client)
    return ad.read_zarr(store.stage_path("act"))


def test_local_cuda_cluster_rmm_pool_and_rebuild(tmp_path: Path):
    """One LocalCUDACluster (one start: they are slow): CuPy allocates from the RMM pool, each worker sees its
    own GPU and has cuda_threads threads, the run's backend is CuPy, and an activity rebuild of the demo's
    int32 store on it equals the NumPy run (float64 rounding on another device: atol 1e-8)."""
    pytest.importorskip("dask_cuda")
    has_rmm = importlib.util.find_spec("rmm") is not None
    write_h5ad(SPEC, tmp_path / "a.h5ad")
    cpu_cfg = Config(cluster="none", gpu_devices=[])
    with cl.cluster(cpu_cfg, echo=None):
        assert run_backend() == "numpy"
        cpu = _activity(tmp_path / "a.h5ad", ResultStore(tmp_path / "cpu"), cpu_cfg)
    cfg = Config(cluster="cuda", rmm_pool_size="1GB" if has_rmm else None, dashboard_address=":0")
    seen: list[str] = []
    with cl.cluster(cfg, echo=seen.append) as client:
        assert "LocalCUDACluster" in seen[0]
        assert run_backend() == "cupy"
        states = client.run(_worker_gpu_state)
        n_gpus = cl._visible_gpus(cfg)
        assert len(states) == n_gpus
        for state in states.values():
            assert state["devices"] == 1, state  # each worker pinned to its own GPU
            if has_rmm:
                assert state["allocator"] == "rmm_cupy_allocator", state  # CuPy allocates from the RMM pool
                assert "Pool" in str(state["resource"]), state
        assert set(client.nthreads().values()) == {cl.cuda_threads(cfg, n_gpus)}
        gpu = _activity(tmp_path / "a.h5ad", ResultStore(tmp_path / "gpu"), cfg, client)
    assert run_backend() == "auto"
    np.testing.assert_allclose(gpu.X, cpu.X, rtol=0, atol=1e-8)
    np.testing.assert_allclose(gpu.layers["pvalue"], cpu.layers["pvalue"], rtol=0, atol=1e-8)
    if not has_rmm:
        pytest.skip("rmm not installed: the pool checks did not run (the rebuild did)")


def test_slurm_command_parsed_by_dask_cuda():
    """The job's worker line, read by dask-cuda's own click command (``python -m dask_cuda.cli`` runs it)."""
    pytest.importorskip("dask_jobqueue")
    dask_cuda_cli = pytest.importorskip("dask_cuda.cli")
    from dask.utils import parse_bytes

    script, address = _job_script(Config.from_dict(GPU_SLURM))
    ctx = dask_cuda_cli.worker.make_context("dask_cuda.cli", _worker_argv(script, "dask_cuda.cli"))
    p = ctx.params
    assert p["scheduler"] == address and p["preload_argv"] == ()
    assert p["nthreads"] == 8 and 2 * parse_bytes(p["memory_limit"]) <= parse_bytes("128GB")
    assert p["rmm_pool_size"] == "20GB" and list(p["rmm_allocator_external_lib_list"]) == ["cupy"]
