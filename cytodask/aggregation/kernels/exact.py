"""Exact variance of integer data: error-free transformations (elementwise; NumPy or CuPy via ``xp``).

Chan's update rounds differently for every partition of the cells into blocks
(and every merge order), so ``M2`` — and the variance — differ across block
sizes at ~1e-15 relative. For integer values (raw counts, the normal case)
:func:`~cytodask.aggregation.kernels.moments.finish_moments` avoids that: when a group is integral, ``Q < 2**53``
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

from types import ModuleType
from typing import Any

EXACT_INTEGER = 2.0**53  # integers below this are exact in float64
_SPLIT = 2.0**27 + 1.0  # Veltkamp's splitter for float64 (53-bit significand)
_MAX_N = 2.0**27  # group sizes of the exact variance (keeps n·Q and S² below 2**80)


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
    small_n = (nf < _MAX_N) & (nf * (nf - ddof) < EXACT_INTEGER)
    return xp.asarray(integral, dtype=bool)[:, None] & small_n & (sq < EXACT_INTEGER)


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
    """``M2 = (n Q − S²) / n`` of one integer block whose ``S`` and ``Q`` are exact (0 for empty groups).

    The numerator is exact in int64 (cheaper than the error-free
    transformations on groups × genes), so ``M2`` is correctly rounded up to
    the one division. Elementwise, so any gene slice of ``s``/``sq`` gives that slice of ``M2``.
    """
    ni = xp.asarray(n, dtype=xp.int64)[:, None]
    si = s.astype(xp.int64)
    num = ni * sq.astype(xp.int64) - si * si
    return num.astype(xp.float64) / xp.maximum(ni, 1)
