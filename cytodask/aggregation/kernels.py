"""Pure block kernels of aggregation (NumPy or CuPy via ``xp``).

Every function here takes one block (cells × genes, CSR or dense, NumPy/SciPy
or CuPy/cupyx) and an array module ``xp``; none does I/O, touches Dask or
mutates its inputs. Sparse blocks are never densified whole: per-group
statistics are scattered from the stored values only.

Moments are kept as mergeable partials ``(n, S, M2, Q, integral)`` per group
and gene: count, sum, the centred sum of squares ``M2 = Σ (x - x̄)²``, the raw
sum of squares ``Q = Σ x²`` and a per-group flag "every value of the group is
an integer". Partials merge with the pairwise update of Chan, Golub & LeVeque
(1979) for ``M2``::

    n = n_A + n_B,   δ = S_B/n_B − S_A/n_A,   M2 = M2_A + M2_B + δ² · n_A n_B / n

while ``S`` and ``Q`` add and ``integral`` is ANDed.

Exact variance of integer data
------------------------------
Chan's update rounds differently for every partition of the cells into blocks
(and every merge order), so ``M2`` — and the variance — differ across block
sizes at ~1e-15 relative. For integer values (raw counts, the normal case)
:func:`finish_moments` avoids that: when a group is integral, ``Q < 2**53``
and ``n (n − ddof) < 2**53``, every partial ``S`` and ``Q`` is a sum of
integers below ``2**53`` and hence *exact* in float64, whatever the blocks and
the merge order (``|x| ≤ x²`` for integers, so ``Σ|x| ≤ Q`` bounds ``S`` too;
and since float addition of non-negative terms is monotone, the computed ``Q``
is below ``2**53`` exactly when the true one is). The variance is then

.. math:: \\operatorname{var} = \\frac{n Q - S^2}{n (n - \\mathrm{ddof})}

with the numerator evaluated by error-free transformations — Dekker's
two-product (Veltkamp split by ``2**27 + 1``) for ``n·Q`` and ``S·S`` and
Knuth's two-sum for their difference::

    n·Q = p₁ + e₁,   S·S = p₂ + e₂,   p₁ − p₂ = h + l,   N = h + ((l + e₁) − e₂)

All of ``p₁, p₂, e₁, e₂, h, l`` are integers; ``n < 2**27`` and ``Q < 2**53``
give ``p < 2**80``, so ``|l|, |e₁|, |e₂| ≤ 2**27`` and their sum is exact:
``N`` is ``n Q − S²`` *correctly rounded*, and the one division by the exact
integer ``n (n − ddof)`` leaves a relative error ≤ ``2**-52`` (two roundings).
The result is a function of the exact ``(n, S, Q)`` only — bit-identical for
any block size, worker count and backend — and more accurate than Chan's
merge (no cancellation is left: the subtraction is exact). Each step is one
elementwise array operation, so no compiler can contract them into FMAs
(which would break the error-free transformations). Groups with a
non-integer value, or beyond those bounds, fall back to ``M2 / (n − ddof)``.

References
----------
T. F. Chan, G. H. Golub, R. J. LeVeque, "Updating formulae and a pairwise
algorithm for computing sample variances", Stanford CS report STAN-CS-79-773 (1979).
T. J. Dekker, "A floating-point technique for extending the available
precision", Numerische Mathematik 18 (1971) 224–242.
D. E. Knuth, The Art of Computer Programming, vol. 2, §4.2.2 (two-sum).
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
_EXACT = 2.0**53  # integers below this are exact in float64
_SPLIT = 2.0**27 + 1.0  # Veltkamp's splitter for float64 (53-bit significand)
_MAX_N = 2.0**27  # group sizes of the exact variance (keeps n·Q and S² below 2**80)


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
    return bound < _EXACT / 2 and bound * n_max < 2.0**62


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
    chunks = _row_chunks(csr.indptr)
    two_pass = m2 and not _exact_block(_stored_integer_max(data, chunks, xp), n)
    mean = s / xp.maximum(n, 1)[:, None]
    mean_ext = xp.concatenate([mean, xp.zeros((1, n_genes))]).ravel() if two_pass else None
    stored = xp.zeros(size)
    dev_sq = xp.zeros(size) if two_pass else None
    raw_sq = xp.zeros(size) if m2 else None
    non_integer = xp.zeros(n_groups + 1, dtype=xp.int64)
    zeros = xp.zeros(size) if nonzero else None
    for r0, r1, a, b in chunks:
        group = _per_value(codes_ext, indptr, r0, r1, a, b, xp)
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
        out.update(_sparse_moments(_canonical(x), codes, n, s, xp, m2=m2, nonzero=nonzero))
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


def two_sum(a: Any, b: Any) -> tuple[Any, Any]:
    """Knuth's error-free sum: ``a + b = s + e`` exactly, ``s = fl(a + b)`` (round to nearest, no overflow)."""
    s = a + b
    bv = s - a
    e = (a - (s - bv)) + (b - bv)
    return s, e


def _veltkamp(a: Any) -> tuple[Any, Any]:
    """Split ``a = hi + lo`` exactly, each half with at most 26 significant bits."""
    c = a * _SPLIT
    hi = c - (c - a)
    return hi, a - hi


def two_product(a: Any, b: Any) -> tuple[Any, Any]:
    """Dekker's error-free product: ``a · b = p + e`` exactly, ``p = fl(a · b)`` (no FMA needed)."""
    p = a * b
    ah, al = _veltkamp(a)
    bh, bl = _veltkamp(b)
    e = ((ah * bh - p) + ah * bl + al * bh) + al * bl
    return p, e


def exact_variance_mask(n: Any, sq: Any, integral: Any, xp: ModuleType, *, ddof: int = 1) -> Any:
    """Where :func:`integer_variance` is exact: integral groups, ``Q < 2**53`` and ``n (n − ddof) < 2**53``."""
    nf = xp.asarray(n, dtype=xp.float64)[:, None]
    small_n = (nf < _MAX_N) & (nf * (nf - ddof) < _EXACT)
    return xp.asarray(integral, dtype=bool)[:, None] & small_n & (sq < _EXACT)


def integer_variance(n: Any, s: Any, sq: Any, xp: ModuleType, *, ddof: int = 1) -> Any:
    """``(n Q − S²) / (n (n − ddof))`` with the numerator correctly rounded (see the module docstring).

    Exact inputs required: integer ``S`` and ``Q < 2**53`` and ``n < 2**27``
    (:func:`exact_variance_mask`); then the relative error is ≤ ``2**-52``.
    NaN where ``n ≤ ddof``; clipped at 0.

    Parameters
    ----------
    n
        Cells per group (groups,).
    s, sq
        Sums and sums of squares (groups × genes), float64.
    """
    nf = xp.asarray(n, dtype=xp.float64)[:, None]
    den = nf * (nf - ddof)
    return xp.maximum(_exact_numerator(nf, s, sq), 0.0) / xp.where(nf > ddof, den, xp.nan)


def _exact_numerator(nf: Any, s: Any, sq: Any) -> Any:
    """``n Q − S²`` correctly rounded, for integer ``S``, ``Q < 2**53`` and ``n < 2**27`` (module docstring)."""
    p1, e1 = two_product(nf, sq)
    p2, e2 = two_product(s, s)
    hi, lo = two_sum(p1, -p2)
    return hi + ((lo + e1) - e2)


def integer_m2(n: Any, s: Any, sq: Any, xp: ModuleType) -> Any:
    """``M2 = (n Q − S²) / n`` of one integer block within the bounds of :func:`_exact_block` (0 for empty groups).

    The numerator is exact in int64 (cheaper than the error-free
    transformations on groups × genes), so ``M2`` is correctly rounded up to
    the one division. Elementwise, so any gene slice of ``s``/``sq`` gives that slice of ``M2``.
    """
    ni = xp.asarray(n, dtype=xp.int64)[:, None]
    si = s.astype(xp.int64)
    num = ni * sq.astype(xp.int64) - si * si
    return num.astype(xp.float64) / xp.maximum(ni, 1)


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
