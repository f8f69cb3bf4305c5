"""Expression preprocessing kernels (pure; NumPy or CuPy through ``xp``).

The order of operations follows R SecAct / secactpy
(``SecAct.activity.inference*``):

1. ``counts``: scale each sample to ``scale`` total over *all* genes, then
   ``log2(x + 1)`` (:func:`normalize_counts`); then as ``logexpr``.
2. ``logexpr``: subtract each gene's mean across samples, or across the
   control samples (:func:`center_genes`).
3. ``differential``: used as is.
4. Restrict to the common genes and z-score the columns of the signature and
   of the expression (:func:`zscore_columns`, ``ddof=1``, NaN -> 0).

Dense kernels take genes x samples; the sparse kernels take a CSR block of
cells x genes (the AnnData layout) and keep it sparse (``log2(0 + 1) = 0``).
Cells with no counts at all have no library size; they are left at zero,
excluded from the gene means and flagged by the caller.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

_CONST_RTOL = 1e-12  # constant: sum (y - mean)^2 <= _CONST_RTOL * sum y^2


def library_size(counts: Any, *, axis: int, xp: ModuleType = np) -> Any:
    """Total counts per sample: ``axis=0`` for genes x samples, ``axis=1`` for cells x genes (dense or sparse)."""
    return xp.asarray(counts.sum(axis=axis), dtype=xp.float64).ravel()


def normalize_counts(y: Any, totals: Any | None = None, *, scale: float = 1e5, xp: ModuleType = np) -> Any:
    """``log2(y / total * scale + 1)`` per column of a genes x samples matrix.

    ``totals`` defaults to the column sums of ``y``; pass them when ``y`` holds
    only some of the genes. Columns with total 0 become 0.
    """
    totals = library_size(y, axis=0, xp=xp) if totals is None else xp.asarray(totals, dtype=xp.float64)
    safe = xp.where(totals > 0, totals, 1.0)
    return xp.log2(xp.asarray(y, dtype=xp.float64) / safe[None, :] * scale + 1.0)


def normalize_sparse(block: Any, totals: Any, *, scale: float = 1e5, xp: ModuleType = np) -> Any:
    """Sparse counterpart of :func:`normalize_counts` for a CSR block of cells x genes.

    Only the stored values change: ``data = log2(data / total[row] * scale + 1)``,
    element for element the dense formula. Returns a new float64 CSR matrix.
    """
    block = block.tocsr()
    totals = xp.asarray(totals, dtype=xp.float64)
    safe = xp.where(totals > 0, totals, 1.0)
    row_total = xp.repeat(safe, xp.diff(block.indptr).astype(xp.int64))  # each stored value's row total
    data = block.data.astype(xp.float64)  # a copy; the steps below work in place on it
    data /= row_total
    data *= scale
    data += 1.0
    xp.log2(data, out=data)
    return type(block)((data, block.indices.copy(), block.indptr.copy()), shape=block.shape)


def gene_sum_partial(block: Any, valid: Any | None = None, *, axis: int = 0, xp: ModuleType = np) -> tuple[Any, int]:
    """Mergeable partial of the gene means: (sum over samples, number of samples).

    ``block`` is normalised expression with samples along ``axis`` (0 for a
    cells x genes CSR/dense block). ``valid`` (boolean, per sample) excludes
    empty cells from the count (their normalised values are all zero, so
    they add nothing to the sums). Partials add up across blocks;
    ``gene_mean = sum / n``.
    """
    sums = xp.asarray(block.sum(axis=axis), dtype=xp.float64).ravel()
    n = block.shape[axis] if valid is None else int(xp.asarray(valid).sum())
    return sums, n


def center_genes(
    y: Any, *, control: Any | None = None, gene_mean: Any | None = None, xp: ModuleType = np
) -> Any:
    """Subtract each gene's mean across samples (genes x samples).

    Parameters
    ----------
    y
        Log expression, genes x samples.
    control
        Boolean mask or integer positions of control columns: subtract their mean instead.
    gene_mean
        Precomputed per-gene means (e.g. from :func:`gene_sum_partial` over all blocks).
    """
    y = xp.asarray(y, dtype=xp.float64)
    if gene_mean is None:
        ref = y if control is None else y[:, xp.asarray(control)]
        if ref.shape[1] == 0:
            raise ValueError("control selects no samples; pass at least one control column.")
        gene_mean = ref.mean(axis=1)
    return y - xp.asarray(gene_mean, dtype=xp.float64)[:, None]


def zscore_columns(a: Any, *, xp: ModuleType = np) -> Any:
    """Column z-scores ``(a - mean) / sd`` with ``ddof=1`` (R's ``scale()``); constant columns -> 0.

    A column is constant when ``sum (a - mean)^2 <= 1e-12 sum a^2`` (this absorbs
    rounding in the mean of an exactly constant column, where R would give NaN
    and secactpy 0).
    """
    a = xp.asarray(a, dtype=xp.float64)
    mean = a.mean(axis=0)
    centred = a - mean[None, :]
    n = a.shape[0]
    ss = (centred * centred).sum(axis=0)
    sd = xp.sqrt(ss / max(n - 1, 1))
    const = ss <= _CONST_RTOL * (a * a).sum(axis=0)
    out = centred / xp.where(const, 1.0, sd)[None, :]
    out = xp.where(const[None, :], 0.0, out)
    return xp.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)


def sparse_column_moments(block: Any, gene_mean: Any | None = None, *, xp: ModuleType = np) -> tuple[Any, Any, Any]:
    """Per-cell mean, sd (ddof=1) and constancy of ``y = block_row - gene_mean`` over the genes.

    From sparse sums only: with ``L`` the block and ``g`` the gene means,
    ``sum y = sum L - sum g`` and
    ``sum (y - mean)^2 = sum L^2 - 2 L.g + sum g^2 - n mean^2``.

    Returns
    -------
    mu, sigma, const
        Arrays over cells; ``const`` marks cells whose profile is constant.
    """
    n = block.shape[1]
    s1 = xp.asarray(block.sum(axis=1), dtype=xp.float64).ravel()
    s2 = xp.asarray(block.power(2).sum(axis=1), dtype=xp.float64).ravel()
    if gene_mean is None:
        g1 = g2 = 0.0
        lg = xp.zeros_like(s1)
    else:
        g = xp.asarray(gene_mean, dtype=xp.float64)
        g1, g2 = float(g.sum()), float((g * g).sum())
        lg = xp.asarray(block @ g, dtype=xp.float64).ravel()
    mu = (s1 - g1) / n
    ss = s2 - 2.0 * lg + g2 - n * mu * mu
    sigma = xp.sqrt(xp.maximum(ss, 0.0) / max(n - 1, 1))
    const = ss <= _CONST_RTOL * (s2 - 2.0 * lg + g2)
    return mu, sigma, const
