"""Normalisation of summed counts per group and of single cells (NumPy or CuPy via ``xp``)."""

from __future__ import annotations

from types import ModuleType
from typing import Any, Literal

from cytodask.aggregation.kernels.csr import canonical_csr, per_value, row_chunks
from cytodask.core.backend import is_sparse, sparse_module

Normalize = Literal["log2cp1e5", "log2cp1e6", "log1p", "none"]
NORMALIZE = ("log2cp1e5", "log2cp1e6", "log1p", "none")


def _scaled_log(values: Any, totals: Any, method: str, xp: ModuleType) -> Any:
    """The normalization formula on values divided by their row totals (shared by sums and cells)."""
    if method == "log2cp1e5":
        return xp.log2(values / totals * 1e5 + 1.0)
    if method == "log2cp1e6":
        return xp.log2(values / totals * 1e6 + 1.0)
    if method == "log1p":
        return xp.log1p(values / totals * 1e4)
    raise ValueError(f"normalize={method!r} is not one of {', '.join(map(repr, NORMALIZE))}")


def normalize_sums(counts: Any, totals: Any, method: Normalize, xp: ModuleType) -> Any:
    """Normalize summed counts (groups × genes) given each group's total.

    ``log2cp1e5``: log2(counts / total · 1e5 + 1) (SecAct's counts path);
    ``log2cp1e6``: the same per million (the old CytoAtlas scripts);
    ``log1p``: natural log1p(counts / total · 1e4) (scanpy's normalize_total + log1p);
    ``none``: counts as float.
    Groups with total 0 give 0.
    """
    counts = xp.asarray(counts, dtype=xp.float64)
    totals = xp.asarray(totals, dtype=xp.float64)[:, None]
    safe = xp.where(totals > 0, totals, 1.0)
    if method == "none":
        return counts
    return _scaled_log(counts, safe, method, xp)


def normalize_cells(x: Any, method: Normalize, xp: ModuleType, *, dtype: Any = None) -> Any:
    """Per-cell normalization of a block; for CSR blocks on the stored values only.

    ``y_ij = log2(x_ij / t_i · scale + 1)`` with ``t_i = Σ_j x_ij`` (the formula of
    :func:`normalize_sums` applied per cell; ``log1p`` and ``none`` likewise).
    Zeros stay zero, so a CSR block keeps its sparsity pattern and is never
    densified. Returns a new matrix of the block's kind (``dtype``, default float64).
    """
    dtype = dtype or xp.float64
    if not is_sparse(x):
        dense = xp.asarray(x, dtype=xp.float64)
        return normalize_sums(dense, dense.sum(axis=1), method, xp).astype(dtype, copy=False)
    csr = canonical_csr(x)
    indptr, data = xp.asarray(csr.indptr), xp.asarray(csr.data)
    values = xp.empty(csr.nnz, dtype=dtype)
    for r0, r1, a, b in row_chunks(csr.indptr):
        rows = per_value(xp.arange(csr.shape[0]), indptr, r0, r1, a, b, xp) - r0
        v = data[a:b].astype(xp.float64)
        t = xp.bincount(rows, weights=v, minlength=r1 - r0)[rows]  # float64 totals of the chunk's cells
        values[a:b] = v if method == "none" else _scaled_log(v, xp.where(t > 0, t, 1.0), method, xp)
    return sparse_module(xp).csr_matrix((values, xp.asarray(csr.indices).copy(), indptr.copy()), shape=csr.shape)
