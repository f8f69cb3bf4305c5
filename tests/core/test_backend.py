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
