"""Backend choice (NumPy or CuPy) and the CPU thread pool.

:func:`resolve_backend` maps a user's ``backend=`` to an array module;
:func:`ordered_map` is the thread pool of in-process calls. Array-module
dispatch and host↔device transfer live in :mod:`cytodask.core.xp` (re-exported
here for existing imports). CuPy is imported lazily so the package imports and
runs without it.
"""

from __future__ import annotations

import contextvars
import importlib
import os
import sys
import threading
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from functools import lru_cache
from types import ModuleType
from typing import Any, Literal

import numpy as np

from cytodask.core.xp import array_module, is_sparse, sparse_module, to_device, to_numpy

__all__ = [
    "RUN_BACKEND", "Backend", "array_module", "available_threads", "check_threads", "cupy_or_none",
    "gpu_available", "is_sparse", "ordered_map", "resolve_backend", "run_backend", "sparse_module", "to_device",
    "to_numpy",
]  # fmt: skip

Backend = Literal["auto", "numpy", "cupy"]

#: The backend of the run in progress, chosen once from its cluster by :func:`cytodask.core.cluster.cluster`
#: (``"numpy"`` or ``"cupy"``); unset outside a run.
RUN_BACKEND: contextvars.ContextVar[str | None] = contextvars.ContextVar("cytodask_run_backend", default=None)


def run_backend(backend: Backend = "auto") -> Backend:
    """``backend``, or for ``"auto"`` the run's backend (:data:`RUN_BACKEND`), decided once per run.

    Outside a run ``"auto"`` stays ``"auto"``: each task then resolves it where it runs.
    """
    if backend != "auto":
        return backend
    chosen = RUN_BACKEND.get()
    return "auto" if chosen is None else chosen  # type: ignore[return-value]


def cupy_or_none() -> ModuleType | None:
    """Return the ``cupy`` module if it imports and sees a CUDA device, else None."""
    try:
        cp = importlib.import_module("cupy")
        if cp.cuda.runtime.getDeviceCount() < 1:
            return None
    except Exception:  # ImportError, CUDARuntimeError, driver mismatch...
        return None
    return cp


def gpu_available() -> bool:
    """True when CuPy imports and at least one CUDA device is visible."""
    return cupy_or_none() is not None


def resolve_backend(backend: Backend = "auto") -> ModuleType:
    """Map a backend name to an array module.

    ``"auto"`` gives CuPy when a GPU is usable, NumPy otherwise; ``"cupy"``
    without a GPU raises with the fix.
    """
    if backend == "numpy":
        return np
    if backend not in ("auto", "cupy"):
        raise ValueError(f"backend={backend!r} is not one of 'auto', 'numpy', 'cupy'")
    cp = cupy_or_none()
    if cp is None:
        if backend == "cupy":
            raise RuntimeError(
                "backend='cupy' but CuPy is not installed or sees no CUDA device; "
                "install the 'gpu' extra (pip install 'cytodask[gpu]') on a GPU machine "
                "or use backend='numpy'."
            )
        return np
    return cp


def available_threads() -> int:
    """Cores this process may run on (its CPU affinity, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def in_dask_task() -> bool:
    """True inside a task of a Dask worker or of Dask's local thread pool.

    Library calls there use one thread by default (:func:`check_threads`): the
    scheduler already runs tasks in parallel, results must not depend on the
    worker's thread count, and a worker must never change process-wide (BLAS)
    thread limits, as :func:`ordered_map`'s pool does.
    """
    if "distributed" in sys.modules:
        from distributed import get_worker

        try:
            get_worker()
            return True
        except ValueError:
            pass
    threaded = sys.modules.get("dask.threaded")
    if threaded is None:
        return False
    me = threading.current_thread()
    pools = [threaded.default_pool, *(p for per in list(threaded.pools.values()) for p in per.values())]
    if any(me in getattr(p, "_threads", ()) for p in pools if p is not None):
        return True
    # A new pool thread may run its first task before its executor lists it in ``_threads``
    # (the executor adds it after ``start()``); its first argument is a weak reference to the executor.
    args = getattr(me, "_args", ())
    owner = args[0]() if args and isinstance(args[0], weakref.ReferenceType) else None
    return owner is not None and any(owner is p for p in pools)


def check_threads(threads: int | None) -> int:
    """The number of threads a library call uses: ``threads``, or by default all cores — one inside a Dask task."""
    if threads is None:
        return 1 if in_dask_task() else available_threads()
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
        raise ValueError(f"threads={threads!r}: give a positive number of threads, or None for all cores")
    return int(threads)


@lru_cache(maxsize=1)
def _blas_controller() -> Any:
    """threadpoolctl's view of the loaded BLAS libraries, found once (a search costs ~20 ms)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def ordered_map(fn: Callable[[Any], Any], items: Iterable[Any], threads: int) -> Iterator[Any]:
    """``map(fn, items)`` in order, computed on ``threads`` threads with a bounded look-ahead.

    The shared mechanism of cytodask's CPU thread pools (correlation tiles,
    statistics row blocks, permutation batches): items are independent and
    their results are consumed in order, so nothing depends on ``threads``.
    The kernels' sorts, ufuncs, matrix products and SciPy sparse products
    release the GIL; BLAS runs one thread per pool thread (threadpoolctl), as
    its own threads would compete with the pool's.
    """
    if threads <= 1:
        yield from map(fn, items)
        return
    from concurrent.futures import ThreadPoolExecutor

    with _blas_controller().limit(limits=1, user_api="blas"), ThreadPoolExecutor(threads) as pool:
        pending: deque[Any] = deque()
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= 2 * threads:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
