"""Block partials: build one per block, merge them in block order, finish into layers.

A partial is a dict ``{"groups": host int64 (k,), "n": (k,), "sum": (k × genes)
[, "m2", "sq", "integral": bool (k,), "nnz"]}`` over the groups present in a
block (global group ids, sorted). ``m2``, ``sq`` (Σx²) and ``integral`` (and
the block-level bool ``m2_derived``, see
:func:`~cytodask.aggregation.kernels.moments.group_moments`) exist only when the
variance is asked for; with them the variance of integer data is computed
exactly from ``(n, S, Σx²)`` and is identical for any blocks.
The same three functions serve the resumable stage (partials persisted to
Zarr, merged by gene chunk) and the lazy API (partials as Dask tasks, merged
in a tree), so both use one implementation of the statistics.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np

from cytodask.aggregation.kernels.moments import chan_merge, finish_moments, group_moments
from cytodask.core.backend import to_numpy

Partial = dict[str, Any]
MERGE_BYTES = 256 * 2**20  # accumulated (groups × gene chunk) float64 arrays of one merge
_ARRAYS = ("sum", "m2", "sq", "nnz")  # groups × genes, float64
ROW_FLAGS = ("integral",)  # per group, bool: merged by AND, start True


def needs(stats: Sequence[str]) -> tuple[bool, bool]:
    """Which extra partials ``stats`` need: (``m2``/``sq``/``integral`` for var, ``nnz`` for count_nonzero)."""
    return "var" in stats, "count_nonzero" in stats


def merge_width(n_genes: int, n_groups: int, stats: Sequence[str]) -> int:
    """Genes per merge chunk, so that the accumulators of ``n_groups`` groups fit in :data:`MERGE_BYTES`.

    The accumulators are the sums, plus ``m2`` and ``sq`` for ``var`` and ``nnz`` for ``count_nonzero``.
    """
    n_acc = 1 + 2 * ("var" in stats) + ("count_nonzero" in stats)
    return max(1, min(n_genes, MERGE_BYTES // (8 * max(1, n_groups) * n_acc)))


def block_partial(x: Any, codes: Any, stats: Sequence[str], xp: ModuleType) -> Partial:
    """Partial of one block over the groups present in it.

    Parameters
    ----------
    x
        Block of cells × genes (CSR or dense; NumPy or CuPy).
    codes
        Global group id of each row (host or device), ``-1`` = dropped cell.
    stats
        Statistics wanted (see :data:`~cytodask.aggregation.kernels.moments.STATS`).
    """
    codes = np.asarray(to_numpy(codes), dtype=np.int64)
    present = np.unique(codes[codes >= 0])
    local = np.searchsorted(present, codes)
    local[codes < 0] = -1
    m2, nonzero = needs(stats)
    mom = group_moments(x, xp.asarray(local), int(present.size), xp, m2=m2, nonzero=nonzero)
    return {"groups": present, **mom}


def slice_genes(p: Partial, g0: int, g1: int) -> Partial:
    """The genes ``[g0, g1)`` of a partial."""
    return {k: (v[:, g0:g1] if k in _ARRAYS else v) for k, v in p.items()}


def zeros_like(p: Partial, n_groups: int, xp: ModuleType) -> dict[str, Any]:
    """An empty accumulator for ``n_groups`` groups with the arrays of ``p``."""
    acc: dict[str, Any] = {"n": xp.zeros(n_groups, dtype=xp.int64)}
    for k in _ARRAYS:
        if k in p:
            acc[k] = xp.zeros((n_groups, p[k].shape[1]), dtype=xp.float64)
    for k in ROW_FLAGS:
        if k in p:
            acc[k] = xp.ones(n_groups, dtype=bool)
    return acc


def fold(acc: dict[str, Any], p: Partial, rows: np.ndarray, xp: ModuleType) -> None:
    """Merge partial ``p`` into rows ``rows`` of the accumulator ``acc`` (:func:`chan_merge`; in place on ``acc``)."""
    if not len(rows):
        return
    idx = xp.asarray(rows)
    merged = chan_merge({k: v[idx] for k, v in acc.items()}, {k: v for k, v in p.items() if k != "groups"}, xp)
    for k, arr in acc.items():
        arr[idx] = merged[k]


def merge_ordered(parts: Sequence[Partial], xp: ModuleType) -> Partial:
    """Merge partials in the given order over the union of their groups."""
    groups = np.unique(np.concatenate([np.asarray(p["groups"], dtype=np.int64) for p in parts]))
    acc = zeros_like(parts[0], groups.size, xp)
    for p in parts:
        fold(acc, p, np.searchsorted(groups, p["groups"]), xp)
    return {"groups": groups, **acc}


def finish_layers(acc: dict[str, Any], rows: Any, stats: Sequence[str], xp: ModuleType,
                  *, ddof: int = 1) -> dict[str, Any]:
    """Output layers of the accumulated groups ``rows``.

    ``counts`` = sums; ``mean`` = S/n; ``var`` = (n Q − S²)/(n (n − ddof)) for
    integer data (exact numerator), else M2/(n − ddof) (NaN for n ≤ ddof; see
    :func:`~cytodask.aggregation.kernels.moments.finish_moments`); ``count_nonzero`` =
    cells with x ≠ 0 (int64).
    """
    idx = xp.asarray(rows)
    out = {"counts": acc["sum"][idx]}
    if "mean" in stats or "var" in stats:
        var_parts = {k: acc[k][idx] for k in ("m2", "sq", "integral") if "var" in stats and k in acc}
        mean, var = finish_moments(acc["n"][idx], out["counts"], var_parts.get("m2"), xp, ddof=ddof,
                                   sq=var_parts.get("sq"), integral=var_parts.get("integral"))
        if "mean" in stats:
            out["mean"] = mean
        if "var" in stats:
            out["var"] = var
    if "count_nonzero" in stats:
        out["count_nonzero"] = xp.rint(acc["nnz"][idx]).astype(xp.int64)
    return out
