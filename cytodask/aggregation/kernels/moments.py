"""Per-group moments of a block as mergeable partials (NumPy or CuPy via ``xp``).

Moments are kept as mergeable partials ``(n, S, M2, Q, integral)`` per group
and gene: count, sum, the centred sum of squares ``M2 = Σ (x - x̄)²``, the raw
sum of squares ``Q = Σ x²`` and a per-group flag "every value of the group is
an integer". Partials merge with the pairwise update of Chan, Golub & LeVeque
(1979) for ``M2``::

    n = n_A + n_B,   δ = S_B/n_B − S_A/n_A,   M2 = M2_A + M2_B + δ² · n_A n_B / n

while ``S`` and ``Q`` add and ``integral`` is ANDed.

The variance of integer data is finished exactly from ``(n, S, Q)``
(:mod:`cytodask.aggregation.kernels.exact`).

References
----------
T. F. Chan, G. H. Golub, R. J. LeVeque, "Updating formulae and a pairwise
algorithm for computing sample variances", Stanford CS report STAN-CS-79-773 (1979).
"""

from __future__ import annotations

from collections.abc import Iterable
from types import ModuleType
from typing import Any, Literal

import numpy as np

from cytodask.aggregation.kernels.csr import canonical_csr, per_value, row_chunks
from cytodask.aggregation.kernels.exact import EXACT_INTEGER, exact_variance_mask, integer_m2, integer_variance
from cytodask.aggregation.kernels.sums import group_sums
from cytodask.core.backend import is_sparse

Stat = Literal["sum", "mean", "var", "count_nonzero"]
STATS: tuple[str, ...] = ("sum", "mean", "var", "count_nonzero")


def check_stats(stats: str | Iterable[str]) -> tuple[str, ...]:
    """Validate ``stats``; returns them deduplicated in the canonical order of :data:`STATS`."""
    items = (stats,) if isinstance(stats, str) else tuple(stats)
    bad = [s for s in items if s not in STATS]
    if bad or not items:
        raise ValueError(f"stats={items!r}: {bad or 'empty'} not among {STATS}; "
                         "pass e.g. stats=('sum', 'mean', 'var', 'count_nonzero')")
    return tuple(s for s in STATS if s in items)


def _non_integers(values: Any, xp: ModuleType) -> Any | None:
    """Mask of the non-integer entries of ``values`` (NaN counts as one); ``None`` when there are none.

    Values of an integer (or boolean) dtype are integers by definition and are
    not inspected. (±inf passes as integral; its ``Q`` fails the ``2**53`` bound.)
    """
    if np.dtype(values.dtype).kind in "biu":
        return None
    bad = values != xp.rint(values)
    return bad if bool(bad.any()) else None


def _stored_integer_max(data: Any, chunks: list[tuple[int, int, int, int]], xp: ModuleType) -> float | None:
    """``max |x|`` over the stored values when all are integers (0 for none), else ``None``; chunk by chunk."""
    top = 0.0
    for _, _, a, b in chunks:
        v = data[a:b]
        if _non_integers(v, xp) is not None:
            return None
        top = max(top, float(v.max()), -float(v.min()))
    return top


def _exact_block(abs_max: float | None, n: Any) -> bool:
    """Whether a block's ``M2`` can be computed exactly from its ``(n, S, Q)`` (:func:`integer_m2`).

    Integer values with ``max|x|² · max n < 2**52`` (``S`` and ``Q`` exact in
    float64) and ``max|x|² · (max n)² < 2**62`` (``n Q`` and ``S²`` fit int64).
    The bounds are halved to absorb the host-side rounding of the test.
    """
    if abs_max is None or n.size == 0:
        return False
    n_max = float(n.max())
    bound = abs_max * abs_max * n_max
    return bound < EXACT_INTEGER / 2 and bound * n_max < 2.0**62


def _sparse_moments(csr: Any, codes: Any, n: Any, s: Any, xp: ModuleType, *, m2: bool,
                    nonzero: bool) -> dict[str, Any]:
    """M2, Σx², integral flags and non-zero counts of a canonical CSR block, from stored values, chunk by chunk.

    A block of integers small enough for exact ``S`` and ``Q`` (:func:`_exact_block`)
    gets ``M2 = (n Q − S²) / n`` exactly (:func:`integer_m2`) and skips the pass over deviations.
    """
    n_groups, n_genes = s.shape
    size = (n_groups + 1) * n_genes  # row n_groups collects the dropped cells (code -1), then is cut off
    codes_ext = xp.where(codes >= 0, codes, n_groups).astype(xp.int64)
    indptr, indices, data = xp.asarray(csr.indptr), xp.asarray(csr.indices), xp.asarray(csr.data)
    chunks = row_chunks(csr.indptr)
    two_pass = m2 and not _exact_block(_stored_integer_max(data, chunks, xp), n)
    mean = s / xp.maximum(n, 1)[:, None]
    mean_ext = xp.concatenate([mean, xp.zeros((1, n_genes))]).ravel() if two_pass else None
    stored = xp.zeros(size)
    dev_sq = xp.zeros(size) if two_pass else None
    raw_sq = xp.zeros(size) if m2 else None
    non_integer = xp.zeros(n_groups + 1, dtype=xp.int64)
    zeros = xp.zeros(size) if nonzero else None
    for r0, r1, a, b in chunks:
        group = per_value(codes_ext, indptr, r0, r1, a, b, xp)
        flat = group * n_genes + indices[a:b]
        stored += xp.bincount(flat, minlength=size)
        if m2:
            values = data[a:b].astype(xp.float64)
            squares = values * values if two_pass else xp.multiply(values, values, out=values)
            raw_sq += xp.bincount(flat, weights=squares, minlength=size)
        if two_pass:
            bad = _non_integers(data[a:b], xp)
            if bad is not None:
                non_integer += xp.bincount(group[bad], minlength=n_groups + 1)
            values -= mean_ext[flat]
            values *= values
            dev_sq += xp.bincount(flat, weights=values, minlength=size)
        if nonzero:
            is_zero = data[a:b] == 0  # explicitly stored zeros are not non-zero cells
            if bool(is_zero.any()):
                zeros += xp.bincount(flat[is_zero], minlength=size)
    cut = slice(0, n_groups * n_genes)
    stored = stored[cut].reshape(n_groups, n_genes)
    out = {}
    if m2:
        out["sq"] = raw_sq[cut].reshape(n_groups, n_genes)
        out["integral"] = non_integer[:n_groups] == 0
        out["m2_derived"] = not two_pass
        out["m2"] = (dev_sq[cut].reshape(n_groups, n_genes) + (n[:, None] - stored) * mean * mean if two_pass
                     else integer_m2(n, s, out["sq"], xp))
    if nonzero:
        out["nnz"] = stored - zeros[cut].reshape(n_groups, n_genes)
    return out


def group_moments(x: Any, codes: Any, n_groups: int, xp: ModuleType, *, m2: bool = True,
                  nonzero: bool = True) -> dict[str, Any]:
    """Per-group partials of one block: count, sum, centred and raw sums of squares, non-zeros.

    Within the block, with ``x̄_gj = S_gj / n_g``, the centred sum of squares is
    computed in two passes from the stored values only:

    .. math:: M2_{gj} = \\sum_{i \\in g,\\, x_{ij} \\text{ stored}} (x_{ij} - \\bar x_{gj})^2
              + (n_g - s_{gj})\\, \\bar x_{gj}^2

    where ``s_gj`` is the number of stored entries (the unstored zeros each
    contribute ``x̄²``). Exact for the block; blocks are merged with :func:`chan_merge`.
    With ``m2`` also ``Q_gj = Σ x_ij²`` (stored values only) and the flag
    ``integral_g``: every value of group ``g`` in the block is an integer
    (always true for an integer dtype). They feed the exact integer variance
    of :func:`finish_moments`. When the whole block is integer and small
    enough (raw counts; :func:`_exact_block`), its ``S`` and ``Q`` are exact
    and ``M2 = (n Q − S²) / n`` is computed with an exact int64 numerator
    instead (within 1 ulp; no pass over deviations), and ``m2_derived`` is
    true: ``m2`` equals :func:`integer_m2` of ``(n, sum, sq)`` bit for bit, so
    storage may drop it and rebuild it from them.

    Parameters
    ----------
    x
        Block (cells × genes), CSR or dense, NumPy or CuPy.
    codes
        Group of each row in ``0..n_groups-1``; ``-1`` rows are ignored.
    n_groups
        Number of groups.
    m2, nonzero
        Also compute ``m2``, ``sq`` and ``integral`` (the variance) / ``nnz``
        (count of cells with ``x ≠ 0``).

    Returns
    -------
    ``{"n": int64 (groups,), "sum": float64 (groups × genes)[, "m2", "sq", "integral": bool (groups,),
    "m2_derived": bool, "nnz"]}``.
    """
    codes = xp.asarray(codes)
    n = xp.bincount(codes[codes >= 0], minlength=n_groups).astype(xp.int64)
    s = group_sums(x, codes, n_groups, xp)
    out: dict[str, Any] = {"n": n, "sum": s}
    if not (m2 or nonzero):
        return out
    if is_sparse(x):
        out.update(_sparse_moments(canonical_csr(x), codes, n, s, xp, m2=m2, nonzero=nonzero))
        return out
    valid = xp.nonzero(codes >= 0)[0]
    dense = xp.asarray(x)[valid].astype(xp.float64)
    gv = codes[valid]
    if m2:
        out.update(_dense_variance_parts(xp.asarray(x), dense, codes, n, s, xp))
    if nonzero:
        out["nnz"] = group_sums((dense != 0).astype(xp.float64), gv, n_groups, xp)
    return out


def _dense_variance_parts(block: Any, dense: Any, codes: Any, n: Any, s: Any, xp: ModuleType) -> dict[str, Any]:
    """``sq``, ``integral`` and ``m2`` of a dense block (``dense``: its kept rows as float64).

    As :func:`_sparse_moments`: an integer block within the bounds of :func:`_exact_block`
    gets ``M2`` from :func:`integer_m2`, any other the two-pass sum of squared deviations.
    """
    n_groups = s.shape[0]
    gv = codes[codes >= 0]
    out = {"sq": group_sums(dense * dense, gv, n_groups, xp)}
    bad = _non_integers(block, xp)
    abs_max = max(float(dense.max()), -float(dense.min())) if dense.size else 0.0
    if bad is None and _exact_block(abs_max, n):
        out["integral"] = xp.ones(n_groups, dtype=bool)
        out["m2"] = integer_m2(n, s, out["sq"], xp)
        out["m2_derived"] = True
        return out
    rows = (bad.any(axis=1) if bad is not None else xp.zeros(block.shape[0], dtype=bool)) & (codes >= 0)
    out["integral"] = xp.bincount(codes[rows], minlength=n_groups) == 0
    dev = dense - (s / xp.maximum(n, 1)[:, None])[gv]
    out["m2"] = group_sums(dev * dev, gv, n_groups, xp)
    out["m2_derived"] = False
    return out


def chan_merge(a: dict[str, Any], b: dict[str, Any], xp: ModuleType) -> dict[str, Any]:
    """Merge two partials of the same groups (Chan, Golub & LeVeque 1979).

    .. math:: n = n_A + n_B,\\quad S = S_A + S_B,\\quad
              M2 = M2_A + M2_B + \\delta^2 \\frac{n_A n_B}{n},\\quad
              \\delta = \\frac{S_B}{n_B} - \\frac{S_A}{n_A}

    Rows with ``n_A = 0`` (or ``n_B = 0``) take the other side unchanged.
    ``sq`` (Σx²) and ``nnz`` (non-zero counts) add, ``integral`` flags AND.
    Keys absent from either side are dropped.
    """
    out: dict[str, Any] = {"n": a["n"] + b["n"], "sum": a["sum"] + b["sum"]}
    if "m2" in a and "m2" in b:
        na = xp.asarray(a["n"], dtype=xp.float64)[:, None]
        nb = xp.asarray(b["n"], dtype=xp.float64)[:, None]
        n = na + nb
        delta = b["sum"] / xp.where(nb > 0, nb, 1.0) - a["sum"] / xp.where(na > 0, na, 1.0)
        out["m2"] = a["m2"] + b["m2"] + delta * delta * (na * nb / xp.where(n > 0, n, 1.0))
    if "sq" in a and "sq" in b:
        out["sq"] = a["sq"] + b["sq"]
    if "integral" in a and "integral" in b:
        out["integral"] = a["integral"] & b["integral"]
    if "nnz" in a and "nnz" in b:
        out["nnz"] = a["nnz"] + b["nnz"]
    return out


def finish_moments(n: Any, s: Any, m2: Any | None, xp: ModuleType, *, ddof: int = 1, sq: Any | None = None,
                   integral: Any | None = None) -> tuple[Any, Any]:
    """Mean ``S / n`` and variance; NaN where ``n ≤ ddof`` (as scanpy).

    The variance is :func:`integer_variance` of ``(n, S, Q)`` where that is
    exact (``sq`` and ``integral`` given, see :func:`exact_variance_mask`),
    ``M2 / (n − ddof)`` elsewhere; both clipped at 0.
    """
    nf = xp.asarray(n, dtype=xp.float64)[:, None]
    mean = s / xp.where(nf > 0, nf, xp.nan)
    var = None
    if m2 is not None:
        dof = nf - ddof
        var = xp.maximum(m2, 0.0) / xp.where(dof > 0, dof, xp.nan)
        if sq is not None and integral is not None:
            exact = exact_variance_mask(n, sq, integral, xp, ddof=ddof)
            # zeros elsewhere keep non-finite values out of the error-free transformations
            exact_var = integer_variance(n, xp.where(exact, s, 0.0), xp.where(exact, sq, 0.0), xp, ddof=ddof)
            var = xp.where(exact, exact_var, var)
    return mean, var
