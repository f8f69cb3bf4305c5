"""Per-group sums of a block's rows: one sparse indicator product (NumPy or CuPy via ``xp``)."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from cytodask.core.backend import is_sparse, sparse_module


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
