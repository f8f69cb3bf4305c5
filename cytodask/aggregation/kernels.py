"""Pure block kernels of aggregation (NumPy or CuPy via ``xp``).

Every function here takes one block (cells × genes, CSR or dense, NumPy/SciPy
or CuPy/cupyx) and an array module ``xp``; none does I/O, touches Dask or
mutates its inputs. Sparse blocks are never densified whole: per-group
statistics are scattered from the stored values only.

Moments are kept as mergeable partials ``(n, S, M2)`` per group and gene:
count, sum and the centred sum of squares ``M2 = Σ (x - x̄)²``. Two partials
merge exactly with the pairwise update of Chan, Golub & LeVeque (1979)::

    n = n_A + n_B,   δ = S_B/n_B − S_A/n_A,   M2 = M2_A + M2_B + δ² · n_A n_B / n

so the variance never goes through the cancellation-prone ``E[x²] − E[x]²``.

References
----------
T. F. Chan, G. H. Golub, R. J. LeVeque, "Updating formulae and a pairwise
algorithm for computing sample variances", Stanford CS report STAN-CS-79-773 (1979).
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import pairwise
from types import ModuleType
from typing import Any, Literal

import numpy as np

from cytodask.core.backend import is_sparse, sparse_module, to_numpy

Normalize = Literal["log2cp1e5", "log2cp1e6", "log1p", "none"]
Stat = Literal["sum", "mean", "var", "count_nonzero"]
STATS: tuple[str, ...] = ("sum", "mean", "var", "count_nonzero")
_NORMALIZE = ("log2cp1e5", "log2cp1e6", "log1p", "none")
_CHUNK_NNZ = 1 << 21  # stored values per pass over a sparse block (bounds the per-value temporaries)


def check_stats(stats: str | Iterable[str]) -> tuple[str, ...]:
    """Validate ``stats``; returns them deduplicated in the canonical order of :data:`STATS`."""
    items = (stats,) if isinstance(stats, str) else tuple(stats)
    bad = [s for s in items if s not in STATS]
    if bad or not items:
        raise ValueError(f"stats={items!r}: {bad or 'empty'} not among {STATS}; "
                         "pass e.g. stats=('sum', 'mean', 'var', 'count_nonzero')")
    return tuple(s for s in STATS if s in items)


def group_sums(x: Any, codes: Any, n_groups: int, xp: ModuleType) -> Any:
    """Sum the rows of ``x`` per group: ``G @ x`` with a sparse indicator ``G``.

    Parameters
    ----------
    x
        Block of cells × genes (CSR or dense, NumPy or CuPy).
    codes
        Group of each row in ``0..n_groups-1``; rows with ``-1`` are ignored.
    n_groups
        Number of groups (rows of the result).

    Returns
    -------
    Dense float64 array (n_groups × genes).
    """
    codes = xp.asarray(codes)
    keep = xp.nonzero(codes >= 0)[0]
    spm = sparse_module(xp)
    g = spm.csr_matrix(
        (xp.ones(keep.size, dtype=xp.float64), (codes[keep], keep)), shape=(n_groups, x.shape[0])
    )
    out = g @ x
    out = out.toarray() if is_sparse(out) else xp.asarray(out)
    return out.astype(xp.float64, copy=False)


def weighted_group_sums(x: Any, codes: Any, weights: Any, n_groups: int, xp: ModuleType) -> Any:
    """Weighted sums per group for several weight vectors at once (bootstrap replicates).

    .. math:: R_{bgj} = \\sum_{i:\\, c_i = g} w_{bi} \\, x_{ij}

    computed as one product of a sparse ``(B·groups × cells)`` weighted
    indicator with ``x``. Parameters as :func:`group_sums`, plus ``weights``
    (B × cells). Returns dense float64 (B × n_groups × genes).
    """
    codes = xp.asarray(codes)
    w = xp.asarray(weights, dtype=xp.float64)
    nb = w.shape[0]
    keep = xp.nonzero(codes >= 0)[0]
    rows = (xp.arange(nb)[:, None] * n_groups + codes[keep][None, :]).ravel()
    cols = xp.broadcast_to(keep[None, :], (nb, keep.size)).ravel()
    vals = w[:, keep].ravel()
    nz = xp.nonzero(vals)[0]
    g = sparse_module(xp).csr_matrix((vals[nz], (rows[nz], cols[nz])), shape=(nb * n_groups, x.shape[0]))
    out = g @ x
    out = out.toarray() if is_sparse(out) else xp.asarray(out)
    return out.astype(xp.float64, copy=False).reshape(nb, n_groups, x.shape[1])


def _canonical(x: Any) -> Any:
    """CSR with sorted, unique indices (a copy only when ``x`` is not already so)."""
    csr = x.tocsr()
    if not csr.has_canonical_format:
        csr = csr.copy()
        csr.sum_duplicates()
    return csr


def _row_chunks(indptr: Any, chunk_nnz: int | None = None) -> list[tuple[int, int, int, int]]:
    """``(r0, r1, a, b)``: row ranges of about ``chunk_nnz`` stored values (bounds per-value temporaries)."""
    chunk_nnz = chunk_nnz or _CHUNK_NNZ
    ptr = np.asarray(to_numpy(indptr), dtype=np.int64)
    starts = np.unique(np.searchsorted(ptr, np.arange(0, int(ptr[-1]), chunk_nnz), side="right") - 1)
    bounds = [*starts.tolist(), ptr.size - 1] if starts.size else [0, ptr.size - 1]
    return [(r0, r1, int(ptr[r0]), int(ptr[r1])) for r0, r1 in pairwise(bounds) if ptr[r1] > ptr[r0]]


def _per_value(row_values: Any, indptr: Any, r0: int, r1: int, a: int, b: int, xp: ModuleType) -> Any:
    """``row_values[i]`` (i = r0..r1-1) repeated for each stored value of row ``i`` (values ``a..b-1``)."""
    if xp is np:  # a repeat is ~15× faster than the search on the CPU
        return np.repeat(row_values[r0:r1], np.diff(indptr[r0:r1 + 1]))
    return row_values[xp.searchsorted(indptr[r0:r1 + 1], xp.arange(a, b), side="right") - 1 + r0]


def _sparse_moments(csr: Any, codes: Any, n: Any, mean: Any, xp: ModuleType, *, m2: bool,
                    nonzero: bool) -> dict[str, Any]:
    """M2 and non-zero counts of a canonical CSR block, scattered from stored values, chunk by chunk."""
    n_groups, n_genes = mean.shape
    size = (n_groups + 1) * n_genes  # row n_groups collects the dropped cells (code -1), then is cut off
    codes_ext = xp.where(codes >= 0, codes, n_groups).astype(xp.int64)
    mean_ext = xp.concatenate([mean, xp.zeros((1, n_genes))]).ravel()
    indptr, indices, data = xp.asarray(csr.indptr), xp.asarray(csr.indices), xp.asarray(csr.data)
    stored = xp.zeros(size)
    sq = xp.zeros(size) if m2 else None
    zeros = xp.zeros(size) if nonzero else None
    for r0, r1, a, b in _row_chunks(csr.indptr):
        flat = _per_value(codes_ext, indptr, r0, r1, a, b, xp) * n_genes + indices[a:b]
        stored += xp.bincount(flat, minlength=size)
        if m2:
            dev = data[a:b].astype(xp.float64)
            dev -= mean_ext[flat]
            dev *= dev
            sq += xp.bincount(flat, weights=dev, minlength=size)
        if nonzero:
            is_zero = data[a:b] == 0  # explicitly stored zeros are not non-zero cells
            if bool(is_zero.any()):
                zeros += xp.bincount(flat[is_zero], minlength=size)
    cut = slice(0, n_groups * n_genes)
    stored = stored[cut].reshape(n_groups, n_genes)
    out = {}
    if m2:
        out["m2"] = sq[cut].reshape(n_groups, n_genes) + (n[:, None] - stored) * mean * mean
    if nonzero:
        out["nnz"] = stored - zeros[cut].reshape(n_groups, n_genes)
    return out


def group_moments(x: Any, codes: Any, n_groups: int, xp: ModuleType, *, m2: bool = True,
                  nonzero: bool = True) -> dict[str, Any]:
    """Per-group partials of one block: count, sum, centred sum of squares, non-zeros.

    Within the block, with ``x̄_gj = S_gj / n_g``, the centred sum of squares is
    computed in two passes from the stored values only:

    .. math:: M2_{gj} = \\sum_{i \\in g,\\, x_{ij} \\text{ stored}} (x_{ij} - \\bar x_{gj})^2
              + (n_g - s_{gj})\\, \\bar x_{gj}^2

    where ``s_gj`` is the number of stored entries (the unstored zeros each
    contribute ``x̄²``). Exact for the block; blocks are merged with :func:`chan_merge`.

    Parameters
    ----------
    x
        Block (cells × genes), CSR or dense, NumPy or CuPy.
    codes
        Group of each row in ``0..n_groups-1``; ``-1`` rows are ignored.
    n_groups
        Number of groups.
    m2, nonzero
        Also compute ``m2`` / ``nnz`` (count of cells with ``x ≠ 0``).

    Returns
    -------
    ``{"n": int64 (groups,), "sum": float64 (groups × genes)[, "m2", "nnz"]}``.
    """
    codes = xp.asarray(codes)
    n = xp.bincount(codes[codes >= 0], minlength=n_groups).astype(xp.int64)
    s = group_sums(x, codes, n_groups, xp)
    out: dict[str, Any] = {"n": n, "sum": s}
    if not (m2 or nonzero):
        return out
    mean = s / xp.maximum(n, 1)[:, None]
    if is_sparse(x):
        out.update(_sparse_moments(_canonical(x), codes, n, mean, xp, m2=m2, nonzero=nonzero))
        return out
    valid = xp.nonzero(codes >= 0)[0]
    dense = xp.asarray(x)[valid].astype(xp.float64)
    gv = codes[valid]
    if m2:
        dev = dense - mean[gv]
        out["m2"] = group_sums(dev * dev, gv, n_groups, xp)
    if nonzero:
        out["nnz"] = group_sums((dense != 0).astype(xp.float64), gv, n_groups, xp)
    return out


def chan_merge(a: dict[str, Any], b: dict[str, Any], xp: ModuleType) -> dict[str, Any]:
    """Merge two partials of the same groups (Chan, Golub & LeVeque 1979).

    .. math:: n = n_A + n_B,\\quad S = S_A + S_B,\\quad
              M2 = M2_A + M2_B + \\delta^2 \\frac{n_A n_B}{n},\\quad
              \\delta = \\frac{S_B}{n_B} - \\frac{S_A}{n_A}

    Rows with ``n_A = 0`` (or ``n_B = 0``) take the other side unchanged.
    ``nnz`` (non-zero counts) add. Keys absent from either side are dropped.
    """
    out: dict[str, Any] = {"n": a["n"] + b["n"], "sum": a["sum"] + b["sum"]}
    if "m2" in a and "m2" in b:
        na = xp.asarray(a["n"], dtype=xp.float64)[:, None]
        nb = xp.asarray(b["n"], dtype=xp.float64)[:, None]
        n = na + nb
        delta = b["sum"] / xp.where(nb > 0, nb, 1.0) - a["sum"] / xp.where(na > 0, na, 1.0)
        out["m2"] = a["m2"] + b["m2"] + delta * delta * (na * nb / xp.where(n > 0, n, 1.0))
    if "nnz" in a and "nnz" in b:
        out["nnz"] = a["nnz"] + b["nnz"]
    return out


def finish_moments(n: Any, s: Any, m2: Any | None, xp: ModuleType, *, ddof: int = 1) -> tuple[Any, Any]:
    """Mean ``S / n`` and variance ``M2 / (n − ddof)``; NaN where ``n ≤ ddof`` (as scanpy)."""
    nf = xp.asarray(n, dtype=xp.float64)[:, None]
    mean = s / xp.where(nf > 0, nf, xp.nan)
    var = None
    if m2 is not None:
        dof = nf - ddof
        var = xp.maximum(m2, 0.0) / xp.where(dof > 0, dof, xp.nan)
    return mean, var


def _scaled_log(values: Any, totals: Any, method: str, xp: ModuleType) -> Any:
    """The normalisation formula on values divided by their row totals (shared by sums and cells)."""
    if method == "log2cp1e5":
        return xp.log2(values / totals * 1e5 + 1.0)
    if method == "log2cp1e6":
        return xp.log2(values / totals * 1e6 + 1.0)
    if method == "log1p":
        return xp.log1p(values / totals * 1e4)
    raise ValueError(f"normalize={method!r} is not one of {', '.join(map(repr, _NORMALIZE))}")


def normalize_sums(counts: Any, totals: Any, method: Normalize, xp: ModuleType) -> Any:
    """Normalise summed counts (groups × genes) given each group's total.

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
    """Per-cell normalisation of a block; for CSR blocks on the stored values only.

    ``y_ij = log2(x_ij / t_i · scale + 1)`` with ``t_i = Σ_j x_ij`` (the formula of
    :func:`normalize_sums` applied per cell; ``log1p`` and ``none`` likewise).
    Zeros stay zero, so a CSR block keeps its sparsity pattern and is never
    densified. Returns a new matrix of the block's kind (``dtype``, default float64).
    """
    dtype = dtype or xp.float64
    if not is_sparse(x):
        dense = xp.asarray(x, dtype=xp.float64)
        return normalize_sums(dense, dense.sum(axis=1), method, xp).astype(dtype, copy=False)
    csr = _canonical(x)
    indptr, data = xp.asarray(csr.indptr), xp.asarray(csr.data)
    values = xp.empty(csr.nnz, dtype=dtype)
    for r0, r1, a, b in _row_chunks(csr.indptr):
        rows = _per_value(xp.arange(csr.shape[0]), indptr, r0, r1, a, b, xp) - r0
        v = data[a:b].astype(xp.float64)
        t = xp.bincount(rows, weights=v, minlength=r1 - r0)[rows]  # float64 totals of the chunk's cells
        values[a:b] = v if method == "none" else _scaled_log(v, xp.where(t > 0, t, 1.0), method, xp)
    return sparse_module(xp).csr_matrix((values, xp.asarray(csr.indices).copy(), indptr.copy()), shape=csr.shape)
