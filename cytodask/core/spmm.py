"""Sparse × dense products accumulated in place: ``out += A @ W`` for a CSR ``A``.

The permutation test multiplies one sparse block by many dense operands
(stacked permuted projection matrices), so this product is where permutation
mode spends its time. On CuPy it is cuSPARSE's ``A @ W`` added to ``out``. On
NumPy a compiled kernel (numba, when importable) runs it: four stored values
of a row at a time, so each output row is read and written once per four
rows of ``W`` instead of once per row, in SIMD over the columns; it releases
the GIL, so thread pools run it in parallel. Without numba, SciPy's product is
used. Both give ``A @ W`` up to rounding (the kernel adds in another order:
relative differences ~1e-15).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np


@functools.cache
def _kernel() -> Callable[..., None] | None:
    try:
        import numba
    except ImportError:  # pragma: no cover - numba is a dependency; SciPy is the fallback
        return None

    @numba.njit(nogil=True, fastmath=True, boundscheck=False, cache=True)
    def accumulate(indptr, indices, data, w, out):  # pragma: no cover - compiled; tested through the wrapper
        width = w.shape[1]
        for i in range(indptr.size - 1):
            row = out[i]
            j, end = indptr[i], indptr[i + 1]
            while j + 4 <= end:
                a0, a1, a2, a3 = data[j], data[j + 1], data[j + 2], data[j + 3]
                w0, w1, w2, w3 = w[indices[j]], w[indices[j + 1]], w[indices[j + 2]], w[indices[j + 3]]
                for c in range(width):
                    row[c] += a0 * w0[c] + a1 * w1[c] + a2 * w2[c] + a3 * w3[c]
                j += 4
            while j < end:
                a, wr = data[j], w[indices[j]]
                for c in range(width):
                    row[c] += a * wr[c]
                j += 1

    return accumulate


def compiled() -> bool:
    """True when the compiled NumPy kernel is available (numba imports)."""
    return _kernel() is not None


COMPILE_MIN_WORK = 3e9  # multiply-adds from which loading the kernel (~1 s: numba import, cache) pays off


def worth_compiling(work: float) -> bool:
    """Whether a job of ``work`` multiply-adds repays loading the compiled kernel."""
    return work >= COMPILE_MIN_WORK


def csr_matmul(block: Any, dense: Any, *, compiled: bool, xp: ModuleType = np) -> Any:
    """``block @ dense`` as a new C-contiguous float64 array.

    ``compiled``: the compiled kernel (NumPy only, when numba imports) rather than
    SciPy's product. The two differ by rounding only; callers decide from their
    job's size (:func:`worth_compiling`), never from process state, so a result
    does not depend on what ran before it.
    """
    if xp is np and compiled and _kernel() is not None:
        return csr_matmul_accumulate(block, dense, np.zeros((block.shape[0], dense.shape[1])), xp=xp)
    return xp.ascontiguousarray(xp.asarray(block @ dense), dtype=xp.float64)


def csr_matmul_accumulate(block: Any, dense: Any, out: Any, *, xp: ModuleType = np) -> Any:
    """``out += block @ dense`` in place and return ``out``.

    Parameters
    ----------
    block
        CSR matrix (SciPy or CuPy), rows × n.
    dense
        n × width array on the same device.
    out
        rows × width float64 array, C-contiguous; accumulated into.
    """
    if block.shape[1] != dense.shape[0] or out.shape != (block.shape[0], dense.shape[1]):
        raise ValueError(f"shapes do not chain: {block.shape} @ {dense.shape} into {out.shape}")
    kernel = _kernel() if xp is np else None
    if kernel is None or not out.flags.c_contiguous:
        out += xp.asarray(block @ dense)
        return out
    data = block.data if block.data.dtype == np.float64 else block.data.astype(np.float64)
    w = np.ascontiguousarray(dense, dtype=np.float64)
    kernel(block.indptr, block.indices, data, w, out)
    return out
