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

from cytodask.core.backend import is_sparse
from cytodask.core.xp import value_rows

_CONST_RTOL = 1e-12  # constant: sum (y - mean)^2 <= _CONST_RTOL * sum y^2


def library_size(counts: Any, *, axis: int, xp: ModuleType = np) -> Any:
    """Total counts per sample, summed in float64: ``axis=0`` for genes x samples, ``axis=1`` for cells x genes.

    Dense or sparse; a CSR block's rows are summed without a copy of the block (:func:`row_sums`).
    """
    if axis == 1 and is_sparse(counts) and counts.format == "csr":
        return row_sums(counts, xp=xp)
    return xp.asarray(counts.sum(axis=axis, dtype=xp.float64)).ravel()


def normalize_counts(y: Any, totals: Any | None = None, *, scale: float = 1e5, xp: ModuleType = np) -> Any:
    """``log2(y / total * scale + 1)`` per column of a genes x samples matrix.

    ``totals`` defaults to the column sums of ``y``; pass them when ``y`` holds
    only some of the genes. Columns with total 0 become 0.
    """
    totals = library_size(y, axis=0, xp=xp) if totals is None else xp.asarray(totals, dtype=xp.float64)
    safe = xp.where(totals > 0, totals, 1.0)
    return xp.log2(xp.asarray(y, dtype=xp.float64) / safe[None, :] * scale + 1.0)


def normalize_sparse(
    block: Any, totals: Any, *, scale: float = 1e5, copy: bool = True, xp: ModuleType = np
) -> Any:
    """Sparse counterpart of :func:`normalize_counts` for a CSR block of cells x genes.

    Only the stored values change: ``data = log2(data / total[row] * scale + 1)``,
    element for element the dense formula. Returns a float64 CSR matrix; with
    ``copy=False`` it reuses the block's index arrays, and its values too when
    they are float64 already (pass a block nothing else holds, e.g. a fresh
    column selection). On the CPU the values are processed in slices of a
    few rows that stay in cache, with no temporary the size of the block.
    """
    block = block.tocsr()
    totals = xp.asarray(totals, dtype=xp.float64)
    safe = xp.where(totals > 0, totals, 1.0)
    src = block.data
    data = src if not copy and src.dtype == xp.float64 else xp.empty(src.shape, dtype=xp.float64)
    if xp is np:
        counts = np.diff(block.indptr)
        for r0, r1, a, b in row_slices(block.indptr):
            seg = data[a:b]
            if data is not src:
                seg[...] = src[a:b]
            seg /= np.repeat(safe[r0:r1], counts[r0:r1])
            seg *= scale
            seg += 1.0
            np.log2(seg, out=seg)
    else:
        data[...] = src
        data /= safe[value_rows(block.indptr, xp, a=0, b=int(src.size))]  # each stored value's row total
        data *= scale
        data += 1.0
        xp.log2(data, out=data)
    indices, indptr = (block.indices.copy(), block.indptr.copy()) if copy else (block.indices, block.indptr)
    return type(block)((data, indices, indptr), shape=block.shape)


_SLICE_VALUES = 1 << 16  # stored values per row slice (512 KB of float64: within L2)


def row_slices(indptr: np.ndarray, values: int = _SLICE_VALUES) -> list[tuple[int, int, int, int]]:
    """``(row0, row1, start, stop)`` slices of a CSR matrix's rows holding about ``values`` values each."""
    n_rows = len(indptr) - 1
    total = int(indptr[-1])
    marks = np.searchsorted(indptr, np.arange(values, total, values), side="right")
    edges = np.unique(np.concatenate([[0], np.minimum(marks, n_rows), [n_rows]]))
    return [(int(r0), int(r1), int(indptr[r0]), int(indptr[r1])) for r0, r1 in zip(edges[:-1], edges[1:], strict=True)]


def row_sums(block: Any, *, square: bool = False, xp: ModuleType = np) -> Any:
    """Per-row float64 sums of a CSR block's stored values (or of their squares), without a copy of the block."""
    if xp is not np:
        data = block.data.astype(xp.float64)  # summed in float64 as on the CPU (a float32 block's own sum is float32)
        part = type(block)((data * data if square else data, block.indices, block.indptr), shape=block.shape)
        return xp.asarray(part.sum(axis=1), dtype=xp.float64).ravel()
    indptr = block.indptr
    out = np.zeros(len(indptr) - 1, dtype=np.float64)
    for r0, r1, a, b in row_slices(indptr):
        starts = indptr[r0:r1]
        full = np.flatnonzero(indptr[r0 + 1 : r1 + 1] > starts)  # rows with values (reduceat cannot skip others)
        if full.size == 0:
            continue
        seg = block.data[a:b].astype(np.float64, copy=False)
        out[r0 + full] = np.add.reduceat(seg * seg if square else seg, starts[full] - a)
    return out


def normalize(
    block: Any, totals: Any | None, input_kind: str, scale: float = 1e5, *, copy: bool = True, xp: ModuleType = np
) -> Any:
    """Step 1 for a samples x genes block (dense or CSR): ``counts`` -> log2 of scaled counts, else float64.

    ``totals`` are the samples' library sizes over all genes (``counts`` only).
    ``copy=False`` lets a sparse block's arrays be reused (see :func:`normalize_sparse`).
    """
    if input_kind != "counts":
        if is_sparse(block):  # no astype(copy=): cupyx's sparse astype takes it from CuPy 14.2 only
            if block.dtype == xp.float64:
                return block.copy() if copy else block
            return block.astype(xp.float64)
        return xp.asarray(block, dtype=xp.float64)
    if totals is None:
        raise ValueError("input_kind='counts' needs totals (library sizes over all genes) for each cell.")
    if is_sparse(block):
        return normalize_sparse(block, totals, scale=scale, copy=copy, xp=xp)
    return normalize_counts(xp.asarray(block).T, totals, scale=scale, xp=xp).T


def empty_samples(block: Any, totals: Any | None, input_kind: str, *, xp: ModuleType = np) -> Any:
    """Boolean per sample: no counts (``counts``, from ``totals``) or all values zero."""
    if input_kind == "counts" and totals is not None:
        return xp.asarray(totals) == 0
    if is_sparse(block):
        return row_sums(block, square=True, xp=xp) == 0
    return (xp.asarray(block) ** 2).sum(axis=1) == 0


def gene_sum_partial(block: Any, valid: Any | None = None, *, axis: int = 0, xp: ModuleType = np) -> tuple[Any, int]:
    """Mergeable partial of the gene means: (sum over samples, number of samples).

    ``block`` is normalized expression with samples along ``axis`` (0 for a
    cells x genes CSR/dense block). ``valid`` (boolean, per sample) excludes
    empty cells from the count (their normalized values are all zero, so
    they add nothing to the sums). Partials add up across blocks;
    ``gene_mean = sum / n``.
    """
    if axis == 0 and xp is np and is_sparse(block) and block.format == "csr":
        sums = np.bincount(block.indices, weights=block.data, minlength=block.shape[1])  # one pass, no copy
    else:
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
    n = a.shape[0]
    squares = xp.einsum("ij,ij->j", a, a)  # sums without temporaries the size of a
    out = a - a.mean(axis=0)[None, :]
    ss = xp.einsum("ij,ij->j", out, out)
    sd = xp.sqrt(ss / max(n - 1, 1))
    const = ss <= _CONST_RTOL * squares
    out /= xp.where(const, 1.0, sd)[None, :]
    out[:, const] = 0.0
    return xp.nan_to_num(out, copy=False, nan=0.0, posinf=0.0, neginf=0.0)


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
    s1 = row_sums(block, xp=xp)
    s2 = row_sums(block, square=True, xp=xp)
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
