"""Pure block kernels of the cancer family: one block of cells (CSR or dense) and an array module ``xp``.

No I/O, no Dask, no mutation of inputs; the same code runs on NumPy/SciPy and
CuPy/cupyx blocks. The graph of :mod:`cytodask.cancer.graph` maps them over
the blocks of the atlas store and of the single-cell activity.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import Any

from cytodask.aggregation.kernels.normalize import Normalize, normalize_cells
from cytodask.core.backend import is_sparse


def _rows(x: Any, rows: Any) -> Any:
    return x[rows] if rows is not None else x


def gene_sums_block(x: Any, rows: Any, normalize: Normalize, xp: ModuleType) -> tuple[Any, Any]:
    """Column sums of the normalized selected rows of a block, and their number (a mergeable partial).

    ``rows`` is a boolean mask (or None: all rows); normalisation as
    :func:`cytodask.aggregation.kernels.normalize.normalize_cells`
    (``log1p``: ``log(1 + x/t · 10⁴)``, scanpy's ``normalize_total`` + ``log1p``).
    """
    y = normalize_cells(_rows(x, rows), normalize, xp)
    total = y.sum(axis=0)
    return xp.asarray(total, dtype=xp.float64).ravel(), int(y.shape[0])


def _column_mean(y: Any, idx: Any, xp: ModuleType) -> Any:
    sub = y[:, idx]
    if is_sparse(sub):
        return xp.asarray(sub.sum(axis=1), dtype=xp.float64).ravel() / len(idx)
    return sub.astype(xp.float64).sum(axis=1) / len(idx)


def set_scores_block(x: Any, rows: Any, sets: Sequence[tuple[Any, Any]], normalize: Normalize,
                     xp: ModuleType) -> Any:
    """Gene-set score of every selected cell for each ``(genes, controls)`` pair of column indices.

    ``score = mean_{g ∈ genes} y_g − mean_{c ∈ controls} y_c`` on the
    normalized expression ``y`` of the cell (Satija et al. 2015; scanpy's
    ``tl.score_genes``, whose control genes :func:`cytodask.cancer.api.scoring.control_genes`
    draws). Returns cells × sets float64.
    """
    y = normalize_cells(_rows(x, rows), normalize, xp)
    cols = [_column_mean(y, xp.asarray(g), xp) - _column_mean(y, xp.asarray(c), xp) for g, c in sets]
    return xp.stack(cols, axis=1) if cols else xp.zeros((y.shape[0], 0))


def group_sums_block(values: Any, codes: Any, n_groups: int, xp: ModuleType) -> tuple[Any, Any]:
    """Per group: the sum of the rows of ``values`` (cells × signatures) and their count (mergeable).

    ``codes`` gives each row's group (−1: none). One matrix product with the
    rows × groups indicator, the same on NumPy and CuPy.
    """
    codes = xp.asarray(codes)
    g = (codes[:, None] == xp.arange(n_groups)[None, :]).astype(xp.float64)
    v = xp.asarray(values, dtype=xp.float64)
    return g.T @ v, g.sum(axis=0)
