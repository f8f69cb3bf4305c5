"""Array-module dispatch: one kernel implementation for NumPy and CuPy.

Kernels take ``xp`` (``numpy`` or ``cupy``) explicitly; graph builders pick it
from the block type with :func:`array_module`. CuPy is imported lazily so the
package imports and runs without it.
"""

from __future__ import annotations

import importlib
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from functools import lru_cache
from types import ModuleType
from typing import Any, Literal

import numpy as np

Backend = Literal["auto", "numpy", "cupy"]


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


def array_module(x: Any) -> ModuleType:
    """The array module of ``x``: ``cupy`` for CuPy arrays (dense or sparse), else ``numpy``.

    Works on Dask arrays through their ``_meta``.
    """
    meta = getattr(x, "_meta", x)
    mod = type(meta).__module__
    if mod.startswith("cupy") or mod.startswith("cupyx"):
        return importlib.import_module("cupy")
    return np


def is_sparse(x: Any) -> bool:
    """True for SciPy or CuPy sparse matrices/arrays."""
    mod = type(x).__module__
    return (mod.startswith("scipy.sparse") or mod.startswith("cupyx.scipy.sparse")) and hasattr(x, "tocsr")


def sparse_module(xp: ModuleType) -> ModuleType:
    """``scipy.sparse`` for NumPy, ``cupyx.scipy.sparse`` for CuPy."""
    if xp is np:
        return importlib.import_module("scipy.sparse")
    return importlib.import_module("cupyx.scipy.sparse")


def to_numpy(x: Any) -> Any:
    """Bring a NumPy/CuPy array (dense or sparse) to host memory."""
    if hasattr(x, "get") and type(x).__module__.startswith(("cupy", "cupyx")):
        return x.get()
    return x


def to_device(x: Any, xp: ModuleType) -> Any:
    """Move a host array (dense or SciPy sparse) to ``xp``'s device; no-op for NumPy."""
    if xp is np:
        return to_numpy(x)
    if is_sparse(x):
        return sparse_module(xp).csr_matrix(x)
    return xp.asarray(x)


def available_threads() -> int:
    """Cores this process may run on (its CPU affinity, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def check_threads(threads: int | None) -> int:
    if threads is None:
        return available_threads()
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
