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
import threading
from collections import OrderedDict
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np
import scipy.special

CUPY_SPARSE_KINDS = "?fdFD"  # dtype chars cupyx.scipy.sparse matrices hold (CuPy 13, 14): no integers


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
    """Move a host array (dense or SciPy sparse) to ``xp``'s device; no-op for NumPy.

    cupyx's sparse matrices hold only bool, float and complex values (CuPy 13 and 14), so a
    sparse matrix of integers (a count store's rows) is cast to float64 on the host first:
    exact for every int32 and for int64 below 2**53.
    """
    if xp is np:
        return to_numpy(x)
    if is_sparse(x):
        if type(x).__module__.startswith("scipy") and x.dtype.char not in CUPY_SPARSE_KINDS:
            x = x.astype(np.float64)
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


def value_rows(indptr: Any, xp: ModuleType, r0: int = 0, r1: int | None = None, a: int | None = None,
               b: int | None = None) -> Any:
    """Row of each stored value ``a..b-1`` of CSR rows ``r0..r1-1`` (default: all), on ``xp``'s device.

    A search of the values' positions in ``indptr``, valid on every CuPy the ``gpu`` extra allows:
    ``cupy.repeat`` with an array of repeats needs CuPy ≥ 14.1 (CPU code uses ``np.repeat``, faster there).
    """
    r1 = len(indptr) - 1 if r1 is None else r1
    a = int(indptr[r0]) if a is None else a
    b = int(indptr[r1]) if b is None else b
    return xp.searchsorted(indptr[r0:r1 + 1], xp.arange(a, b), side="right") - 1 + r0


def reverse_cummin(a: Any, xp: ModuleType) -> Any:
    """Cumulative minimum from the end of the last axis: ``out[..., i] = min(a[..., i:])``."""
    try:
        return xp.minimum.accumulate(a[..., ::-1], axis=-1)[..., ::-1]
    except (AttributeError, NotImplementedError, TypeError):  # CuPy builds without accumulate
        host = np.minimum.accumulate(to_numpy(a)[..., ::-1], axis=-1)[..., ::-1]
        return xp.asarray(np.ascontiguousarray(host))


def nanquantile(a: Any, q: Any, xp: ModuleType, axis: int = 0) -> Any:
    """``numpy.nanquantile(a, q, axis=axis)`` (linear method) for any ``xp``; CuPy has no ``nanquantile``.

    NumPy's own function where the module has one; otherwise a sort (NaN last, on NumPy and CuPy),
    the count of non-NaN values per column and NumPy's linear interpolation between order
    statistics ``(n-1)·q`` (its ``_lerp``), all on ``xp``'s device. An all-NaN column gives NaN.
    """
    fn = getattr(xp, "nanquantile", None)
    if fn is not None:
        return fn(a, xp.asarray(q), axis=axis)
    return sorted_nanquantile(a, q, xp, axis=axis)


def sorted_nanquantile(a: Any, q: Any, xp: ModuleType, axis: int = 0) -> Any:
    """The sort-based :func:`nanquantile` (run on NumPy in the CPU tests, on CuPy where it is needed)."""
    s = xp.moveaxis(xp.sort(xp.asarray(a, dtype=xp.float64), axis=axis), axis, 0)
    q = xp.asarray(q, dtype=xp.float64)
    n = (~xp.isnan(s)).sum(axis=0)  # valid values per column
    pos = q.reshape(q.shape + (1,) * n.ndim) * xp.maximum(n - 1, 0)
    lo = xp.floor(pos).astype(xp.int64)
    hi = xp.minimum(lo + 1, xp.maximum(n - 1, 0))
    t = pos - lo
    flat = s.reshape(s.shape[0], -1)
    take = lambda i: xp.take_along_axis(flat, i.reshape(i.shape[0], -1), axis=0).reshape(i.shape)  # noqa: E731
    lo = xp.broadcast_to(lo, pos.shape)
    hi = xp.broadcast_to(hi, pos.shape)
    below, above = take(lo), take(hi)
    diff = above - below
    out = xp.where(t >= 0.5, above - diff * (1.0 - t), below + diff * t)  # numpy's _lerp
    return xp.where(n == 0, xp.nan, out)


_DEVICE_COPIES: OrderedDict[int, tuple[Any, Any, Any]] = OrderedDict()
_DEVICE_COPIES_KEPT = 8  # T, gene means, permutation table... of the stages of one run
_DEVICE_LOCK = threading.Lock()


def device_copy(a: Any, xp: ModuleType) -> Any:
    """``a`` (a host operand shared by many blocks) on ``xp``'s current device, uploaded once per process.

    A worker holds one host object per shared operand (one graph key, or one scattered copy):
    its device copy is kept, keyed by the object and the device, so the 63-74 MB of SecAct's ``T``
    and permutation table cross the bus once per worker, not once per block. The entry holds the
    host object, so its ``id`` cannot be reused while it is cached; the last few are kept.
    ``None`` stays ``None``; NumPy returns ``a`` itself.
    """
    if a is None or xp is np:
        return a if a is None else to_numpy(a)
    if array_module(a) is xp:
        return a
    device = xp.cuda.Device().id
    key = id(a)
    with _DEVICE_LOCK:
        hit = _DEVICE_COPIES.get(key)
        if hit is not None and hit[0] is a and hit[1] == device:
            _DEVICE_COPIES.move_to_end(key)
            return hit[2]
    copy = to_device(a, xp)
    with _DEVICE_LOCK:
        _DEVICE_COPIES[key] = (a, device, copy)
        while len(_DEVICE_COPIES) > _DEVICE_COPIES_KEPT:
            _DEVICE_COPIES.popitem(last=False)
    return copy
