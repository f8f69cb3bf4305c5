"""Pure block kernels of aggregation (NumPy or CuPy via ``xp``)."""

from __future__ import annotations

from types import ModuleType
from typing import Any, Literal

from cytodask.core.backend import is_sparse, sparse_module

Normalize = Literal["log2cp1e5", "log2cp1e6", "log1p", "none"]


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
    if method == "log2cp1e5":
        return xp.log2(counts / safe * 1e5 + 1.0)
    if method == "log2cp1e6":
        return xp.log2(counts / safe * 1e6 + 1.0)
    if method == "log1p":
        return xp.log1p(counts / safe * 1e4)
    raise ValueError(f"normalize={method!r} is not one of 'log2cp1e5', 'log2cp1e6', 'log1p', 'none'")
