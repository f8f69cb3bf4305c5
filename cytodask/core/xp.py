"""Array-module dispatch, special functions and host↔device transfer (NumPy or CuPy).

Kernels take ``xp`` (``numpy`` or ``cupy``) explicitly; graph builders and
drivers pick it from a block, or from a Dask array's ``_meta``, with
:func:`array_module`. Special functions come from ``scipy.special`` for NumPy
and from ``cupyx.scipy.special`` for CuPy; a function CuPy lacks is evaluated
on the host (p-values are one number per feature or pair, so the copy is
small). CuPy is imported lazily so the package imports and runs without it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np
import scipy.special


def array_module(x: Any) -> ModuleType:
    """The array module of ``x``: ``cupy`` for CuPy arrays (dense or sparse), else ``numpy``.

    Works on Dask arrays through their ``_meta``.
    """
    meta = getattr(x, "_meta", x)
    mod = type(meta).__module__
    if mod.startswith("cupy") or mod.startswith("cupyx"):
        return importlib.import_module("cupy")
    return np


def is_dask(x: Any) -> bool:
    """True for a Dask array (checked by module, so Dask is not imported)."""
    return type(x).__module__.startswith("dask.array")


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


def special(xp: ModuleType, name: str) -> Callable[..., Any]:
    """The special function ``name`` (``ndtr``, ``stdtr``, ``betaincc``…) for ``xp``."""
    host = getattr(scipy.special, name)
    if xp is np:
        return host
    try:
        fn = getattr(importlib.import_module("cupyx.scipy.special"), name)
    except (ImportError, AttributeError):
        fn = None
    if fn is not None:
        return fn

    def on_host(*args: Any) -> Any:
        return xp.asarray(host(*[to_numpy(a) for a in args]))

    return on_host


def reverse_cummin(a: Any, xp: ModuleType) -> Any:
    """Cumulative minimum from the end of the last axis: ``out[..., i] = min(a[..., i:])``."""
    try:
        return xp.minimum.accumulate(a[..., ::-1], axis=-1)[..., ::-1]
    except (AttributeError, NotImplementedError, TypeError):  # CuPy builds without accumulate
        host = np.minimum.accumulate(to_numpy(a)[..., ::-1], axis=-1)[..., ::-1]
        return xp.asarray(np.ascontiguousarray(host))
