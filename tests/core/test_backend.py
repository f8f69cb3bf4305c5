from __future__ import annotations

import numpy as np
import pytest

from cytodask.core import backend as be


def test_numpy_dispatch():
    assert be.resolve_backend("numpy") is np
    with pytest.raises(ValueError, match="is not one of"):
        be.resolve_backend("torch")  # type: ignore[arg-type]


def test_cupy_request_without_gpu_is_clear(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(be, "cupy_or_none", lambda: None)
    assert be.resolve_backend("auto") is np
    with pytest.raises(RuntimeError, match="backend='cupy' but CuPy is not installed or sees no CUDA device"):
        be.resolve_backend("cupy")


def test_library_calls_inside_dask_tasks_use_one_thread():
    """check_threads(None) is every core in-process and 1 inside a task (threads and distributed workers)."""
    import dask
    from distributed import Client

    from cytodask.core.backend import available_threads, check_threads, in_dask_task

    assert not in_dask_task() and check_threads(None) == available_threads()
    task = dask.delayed(lambda: (in_dask_task(), check_threads(None), check_threads(3)))
    assert dask.compute(task(), scheduler="threads")[0] == (True, 1, 3)
    with Client(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=":0") as client:
        assert client.compute(task()).result() == (True, 1, 3)


def test_first_task_of_a_fresh_thread_pool_is_seen_as_a_task():
    """A new pool thread runs its first task before its executor lists it: still detected."""
    import subprocess
    import sys

    code = ("import dask; from cytodask.core.backend import in_dask_task; "
            "print(dask.compute(dask.delayed(in_dask_task)(), scheduler='threads')[0])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "True"


def _backend_args(tasks: list, funcs: tuple) -> list:
    """The backend argument (last positional) of every graph task calling one of ``funcs``."""
    import dask

    graph = dict(dask.base.collections_to_expr(tasks).__dask_graph__())
    found = []
    for node in graph.values():
        if getattr(node, "func", None) in funcs:
            args = [getattr(a, "value", a) for a in node.args]
            found.append(args[-1])
    return found


def test_stages_pass_the_runs_backend_to_their_blocks(tmp_path, counts_h5ad):
    """Chosen once per run (RUN_BACKEND, set by core.cluster.cluster), carried by every block task: a CPU
    cluster on a GPU machine computes on NumPy, a GPU run on CuPy, never a per-worker guess (issue 15.7)."""
    import pandas as pd

    from cytodask import Config
    from cytodask.activity import graph as act_graph
    from cytodask.activity.stage import ActivityStage
    from cytodask.aggregation import PseudobulkStage
    from cytodask.aggregation import stage as pb_stage
    from cytodask.core.runner import run_stages
    from cytodask.core.stage import StageContext
    from cytodask.core.store import ResultStore
    from cytodask.ingest import ConvertStage, LocalH5ADSource

    sig = tmp_path / "sig.tsv"
    genes = [f"G{i}" for i in range(300)]
    rng = np.random.default_rng(0)
    pd.DataFrame(rng.standard_normal((300, 3)), index=genes, columns=["A", "B", "C"]).to_csv(sig, sep="\t")
    act = ActivityStage("act", inputs=("convert",), layer="X", signature=str(sig), min_genes=10)
    pb = PseudobulkStage("pb", inputs=("convert",), by=["cell_type"], min_cells=1)
    stages = [ConvertStage("convert", LocalH5ADSource(counts_h5ad), batch_size=500), pb, act]
    store = ResultStore(tmp_path / "out")
    cfg = Config(cluster="none", gpu_devices=[])
    run_stages(stages, store, cfg)
    inputs = {"convert": store.stage_path("convert")}
    for chosen in ("numpy", "cupy", None):
        token = be.RUN_BACKEND.set(chosen)
        try:
            ctx = StageContext("act", store.stage("act"), "fp", cfg, inputs=inputs)
            a = _backend_args(act.block_tasks(ctx, [0, 1]), (act_graph.block_result,))
            ctx = StageContext("pb", store.stage("pb"), "fp", cfg, inputs=inputs)
            p = _backend_args(pb.block_tasks(ctx, [0, 1]), (pb_stage._block,))
        finally:
            be.RUN_BACKEND.reset(token)
        expected = chosen or "auto"  # outside a run: resolved where each task runs, as before
        assert set(a) == {expected} and len(a) >= 2 and p == [expected, expected], (chosen, a, p)
    # an explicit stage backend wins over the run's
    token = be.RUN_BACKEND.set("cupy")
    try:
        assert be.run_backend("numpy") == "numpy"
    finally:
        be.RUN_BACKEND.reset(token)
