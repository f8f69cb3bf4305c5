"""Activity block kernels: pure functions of one block of samples (cells) and ``xp`` (NumPy or CuPy).

Every executor runs these and only these on its blocks: the in-memory API on
chunks of cells (:mod:`~cytodask.activity.chunked`, thread pool), the lazy
graph on Dask blocks (:mod:`~cytodask.activity.graph`) and the stage on the
store's blocks (:mod:`~cytodask.activity.stage`). A block is samples x all
genes; the shared operands (common-gene positions, projection matrix ``T``,
gene means, permutation table) come from
:func:`~cytodask.activity.operands.prepare_signature` and the gene-mean pass.

1. :func:`prepare_block`: library sizes over all genes, the common genes,
   empty samples, normalization (:mod:`~cytodask.activity.preprocess`);
2. :func:`gene_mean_partial` of every block, merged by :func:`gene_means`;
3. :func:`activity_block`: centring, z-scoring and the ridge test
   (:mod:`~cytodask.activity.ridge`: closed-form moments or permutation batches).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from types import ModuleType
from typing import Any, Literal, NamedTuple

import numpy as np

from cytodask.core.backend import array_module, is_sparse, to_device

from .preprocess import center_genes, empty_samples, gene_sum_partial, library_size, normalize, zscore_columns
from .ridge import Method, RidgeStats, ridge_analytic, ridge_permutation, ridge_sparse

InputKind = Literal["counts", "logexpr", "differential"]


class Prepared(NamedTuple):
    """One block ready for the ridge: normalized common genes, library sizes (``counts``), empty flags."""

    norm: Any
    totals: Any | None
    empty: Any


def prepare_block(rows: Any, genes: Any, *, input_kind: InputKind = "counts", scale: float = 1e5,
                  xp: ModuleType = np) -> Prepared:
    """Normalize a block of samples x all genes (dense or CSR, host or ``xp``'s device) on its common genes.

    Library sizes are summed over all genes where ``rows`` lives; the common-gene selection
    (a fresh copy, normalized in place) then moves to ``xp``'s device. The input is not modified.
    """
    totals = library_size(rows, axis=1, xp=array_module(rows)) if input_kind == "counts" else None
    block = rows[:, genes]
    if not is_sparse(block) and block.dtype.kind != "f":
        block = block.astype(np.float64)
    block = to_device(block, xp)
    totals = None if totals is None else to_device(totals, xp)
    empty = empty_samples(block, totals, input_kind, xp=xp)
    return Prepared(normalize(block, totals, input_kind, scale, copy=False, xp=xp), totals, empty)


def gene_mean_partial(prepared: Prepared, keep: Any | None = None, *, xp: ModuleType = np) -> tuple[Any, int]:
    """Mergeable gene-mean partial ``(sum per gene, non-empty samples)`` over the block's ``keep`` samples.

    ``keep`` (boolean per sample; None: all) selects the samples genes are centred on (controls).
    """
    norm, empty = prepared.norm, prepared.empty
    if keep is not None:
        rows = xp.flatnonzero(xp.asarray(keep))  # positions: CuPy's sparse matrices take no boolean rows
        norm, empty = norm[rows], empty[rows]
    return gene_sum_partial(norm, ~empty, axis=0, xp=xp)


def gene_means(partials: Iterable[tuple[Any, int]], n_samples: int, *, control: bool = False) -> Any | None:
    """Merge gene-mean partials in order (results never depend on threads or workers).

    Returns None (no centring, as secactpy) for a lone sample without controls.
    """
    total, n = None, 0
    for sums, count in partials:
        total = sums if total is None else total + sums
        n += int(count)
    if not control and n_samples == 1:
        warnings.warn(
            "A single sample and no control: genes are not centred (as secactpy). Pass control= or "
            "input_kind='differential'.", UserWarning, stacklevel=3,
        )
        return None
    if n == 0:
        raise ValueError("Every (control) sample is empty; there is nothing to centre the genes on.")
    return total / n


def activity_block(
    T: Any,
    block: Any,
    *,
    totals: Any | None = None,
    gene_mean: Any | None = None,
    input_kind: InputKind = "counts",
    scale: float = 1e5,
    method: Method = "permutation",
    perm_table: Any | None = None,
    batch_size: int | None = None,
    threads: int = 1,
    normalized: Any | None = None,
    compiled: bool | None = None,
    xp: ModuleType = np,
) -> tuple[RidgeStats, Any]:
    """Activity of one block of samples (samples x common genes, dense or CSR, on ``xp``'s device).

    Normalizes (``counts``: with ``totals``, library sizes over all genes),
    subtracts ``gene_mean`` (None: no centring), z-scores each sample over the
    genes and runs the ridge test. Sparse blocks stay sparse (:func:`~cytodask.activity.ridge.ridge_sparse`).
    ``normalized``, when given, is this block already normalized (:func:`prepare_block`),
    so it is not normalized again. ``compiled`` picks the sparse product; ``threads``
    run permutation batches (keep 1 inside Dask tasks).

    Returns
    -------
    stats
        k x samples beta, se, zscore, pvalue.
    empty
        Boolean per sample: no counts (``counts``) or all zero; their beta, se
        and z are 0 and p is 1.
    """
    if method == "permutation" and perm_table is None:
        raise ValueError("method='permutation' needs perm_table (cytodask.activity.rng.permutation_table).")
    empty = empty_samples(block, totals, input_kind, xp=xp)
    expr = normalize(block, totals, input_kind, scale, xp=xp) if normalized is None else normalized
    if is_sparse(expr):
        stats = ridge_sparse(
            T, expr, gene_mean=gene_mean, method=method, perm_table=perm_table, batch_size=batch_size,
            threads=threads, compiled=compiled, xp=xp,
        )
    else:
        y = expr.T if gene_mean is None else center_genes(expr.T, gene_mean=gene_mean, xp=xp)
        y = zscore_columns(y, xp=xp)
        if method == "analytic":
            stats = ridge_analytic(T, y, xp=xp)
        else:
            stats = ridge_permutation(T, y, perm_table, batch_size=batch_size, xp=xp)
    if bool(empty.any()):
        keep = ~empty[None, :]
        stats = RidgeStats(*(xp.where(keep, a, 0.0) for a in stats[:3]), xp.where(keep, stats.pvalue, 1.0))
    return stats, empty


def prepared_activity(T: Any, prepared: Prepared, **kwargs: Any) -> tuple[RidgeStats, Any]:
    """:func:`activity_block` on a :func:`prepare_block` result (no second normalization)."""
    return activity_block(T, prepared.norm, totals=prepared.totals, normalized=prepared.norm, **kwargs)
