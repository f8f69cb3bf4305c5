"""Permutation tables for the ridge permutation test.

One table serves every block of a run: row ``p`` is the gene permutation of the
``p``-th randomisation, applied as ``y[table[p]]`` (equivalently
``T[:, inverse[p]] @ y``). Three generators:

``"srand"``
    The C library ``srand(seed)``/``rand()`` stream of glibc (TYPE_3 additive
    feedback generator) feeding the Fisher-Yates variant of R SecAct's C code,
    ``j = i + rand() / (RAND_MAX / (n - i) + 1)``, applied cumulatively (each
    permutation shuffles the previous one). Reproduces the tables of R SecAct
    and secactpy (``rng_method="srand"``) exactly, on any platform.
``"gsl"``
    The same shuffle fed by MT19937 seeded as GSL's ``gsl_rng_mt19937`` does
    (seed 0 means 4357) with ``RAND_MAX = 2**32 - 1`` (secactpy's ``GSLRNG``).
``"numpy"``
    Independent uniform permutations from ``numpy.random.default_rng(seed)``;
    fastest, not R compatible.

The glibc generator (Peter Selinger, "The GLIBC pseudo-random number
generator", 2007): ``r[0] = seed`` (0 → 1), ``r[i] = 16807 r[i-1] mod
(2**31 - 1)`` for ``i < 31``, ``r[i] = r[i-31]`` for ``31 <= i < 34``,
``r[i] = r[i-31] + r[i-3] mod 2**32`` afterwards, and the ``k``-th output is
``r[k + 344] >> 1``. The recurrence is linear, so blocks of ``K`` outputs are
one integer matrix product of a fixed ``K x 31`` coefficient matrix with the
31-word state; the products are evaluated exactly with float64 GEMMs on 16-bit
limbs. Table construction follows secactpy's ``rng.py`` (MIT), reimplemented.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

import numpy as np

RNGName = Literal["srand", "gsl", "numpy"]

_RAND_MAX_GLIBC = 2**31 - 1
_MASK32 = 0xFFFFFFFF
_BLOCK = 8192  # outputs per block of the glibc matrix method


def glibc_rand(seed: int, count: int) -> np.ndarray:
    """The first ``count`` values of glibc ``rand()`` after ``srand(seed)``.

    Parameters
    ----------
    seed
        ``unsigned int`` seed, ``0 <= seed < 2**32``.
    count
        Number of outputs.

    Returns
    -------
    numpy.ndarray of int64, values in ``[0, 2**31 - 1]``.
    """
    seed = _check_seed(seed)
    r = _glibc_head(seed)  # r[0..343]
    out = np.empty(count, dtype=np.int64)
    state = np.array(r[313:344], dtype=np.uint64)  # r[i-31..i-1] for i = 344
    coef, jump = _glibc_matrices(_BLOCK)
    n_blocks = -(-count // _BLOCK)
    states = np.empty((31, max(n_blocks, 1)), dtype=np.uint64)
    for b in range(n_blocks):
        states[:, b] = state
        state = _mulmod32(jump, state[:, None])[:, 0]
    words = _mulmod32(coef, states[:, :n_blocks])  # (BLOCK, n_blocks)
    out[:] = (words.T.reshape(-1)[:count] >> np.uint64(1)).astype(np.int64)
    return out


def _check_seed(seed: int) -> int:
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise TypeError(f"seed must be an integer, got {type(seed).__name__}")
    if not 0 <= int(seed) < 2**32:
        raise ValueError(f"seed={seed} is outside [0, 2**32); pass a non-negative 32-bit seed.")
    return int(seed)


def _glibc_head(seed: int) -> list[int]:
    """``r[0..343]`` of the glibc TYPE_3 sequence (plain integers, C semantics)."""
    word = seed if seed != 0 else 1
    if word >= 2**31:  # srandom_r stores the seed in an int32_t
        word -= 2**32
    r = [word & _MASK32]
    for _ in range(1, 31):
        hi, lo = int(word / 127773), word - int(word / 127773) * 127773  # C truncation
        word = 16807 * lo - 2836 * hi
        if word < 0:
            word += 2147483647
        r.append(word & _MASK32)
    r.extend(r[0:3])
    for i in range(34, 344):
        r.append((r[i - 31] + r[i - 3]) & _MASK32)
    return r


@lru_cache(maxsize=4)
def _glibc_matrices(k: int) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients of the next ``k`` words and of the state ``k`` steps on, in terms of the state."""
    c = np.zeros((k + 31, 31), dtype=np.uint64)
    c[:31] = np.eye(31, dtype=np.uint64)
    for i in range(31, k + 31):
        c[i] = (c[i - 31] + c[i - 3]) & np.uint64(_MASK32)
    coef = c[31:]
    coef.setflags(write=False)
    jump = c[k : k + 31].copy()
    jump.setflags(write=False)
    return coef, jump


def _mulmod32(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b mod 2**32`` for uint32-valued matrices, exact via float64 GEMMs on 16-bit limbs.

    With ``a = ah 2^16 + al`` and ``b = bh 2^16 + bl``,
    ``a b = (ah bl + al bh) 2^16 + al bl  (mod 2^32)``; each partial sum of
    at most 31 products of 16-bit numbers is below ``2**37`` and exact in float64.
    """
    lo = np.uint64(0xFFFF)
    ah, al = (a >> np.uint64(16)).astype(np.float64), (a & lo).astype(np.float64)
    bh, bl = (b >> np.uint64(16)).astype(np.float64), (b & lo).astype(np.float64)
    cross = (ah @ bl + al @ bh).astype(np.uint64)
    low = (al @ bl).astype(np.uint64)
    return ((cross << np.uint64(16)) + low) & np.uint64(_MASK32)


def mt19937_gsl(seed: int, count: int) -> np.ndarray:
    """The first ``count`` 32-bit outputs of GSL's ``gsl_rng_mt19937`` seeded with ``seed``.

    GSL (and the reference ``init_genrand``) maps seed 0 to 4357. NumPy's
    MT19937 supplies the stream once its key is set by ``init_genrand``.
    """
    seed = _check_seed(seed) or 4357
    key = np.empty(624, dtype=np.uint32)
    key[0] = seed
    prev = seed
    for i in range(1, 624):
        prev = (1812433253 * (prev ^ (prev >> 30)) + i) & _MASK32
        key[i] = prev
    bitgen = np.random.MT19937()
    bitgen.state = {"bit_generator": "MT19937", "state": {"key": key, "pos": 624}}
    return bitgen.random_raw(count).astype(np.int64)


def _shuffle_tables(raw: np.ndarray, rand_max: int, n: int, n_rand: int) -> np.ndarray:
    """Cumulative R-SecAct Fisher-Yates shuffles driven by ``raw`` (``n_rand * (n-1)`` draws)."""
    draws = raw.reshape(n_rand, n - 1)
    k = np.arange(n, 1, -1, dtype=np.int64)  # n - i for i = 0..n-2
    jidx = np.arange(n - 1, dtype=np.int64) + draws // (rand_max // k + 1)
    # sigma[:, p] is shuffle p applied to the identity (swaps are content-blind);
    # all n_rand shuffles advance together, on the flat (n, n_rand) buffer.
    flat_j = np.ascontiguousarray(jidx.T) * n_rand + np.arange(n_rand)
    sigma = np.tile(np.arange(n, dtype=np.int64)[:, None], (1, n_rand))
    flat = sigma.reshape(-1)
    for i in range(n - 1):
        row = slice(i * n_rand, (i + 1) * n_rand)
        head = flat[row].copy()
        flat[row] = flat.take(flat_j[i])
        flat.put(flat_j[i], head)
    table = np.empty((n_rand, n), dtype=np.intp)
    current = np.arange(n, dtype=np.intp)
    for p in range(n_rand):
        current = current[sigma[:, p]]
        table[p] = current
    return table


@lru_cache(maxsize=8)
def _cached_table(n_genes: int, n_rand: int, seed: int, rng: str) -> np.ndarray:
    if rng == "numpy":
        gen = np.random.default_rng(seed)
        base = np.broadcast_to(np.arange(n_genes, dtype=np.intp), (n_rand, n_genes))
        table = gen.permuted(base, axis=1)
    elif n_genes == 1:
        table = np.zeros((n_rand, 1), dtype=np.intp)
    elif rng == "srand":
        raw = glibc_rand(seed, n_rand * (n_genes - 1))
        table = _shuffle_tables(raw, _RAND_MAX_GLIBC, n_genes, n_rand)
    else:
        raw = mt19937_gsl(seed, n_rand * (n_genes - 1))
        table = _shuffle_tables(raw, _MASK32, n_genes, n_rand)
    table.setflags(write=False)
    return table


def permutation_table(n_genes: int, n_rand: int, seed: int = 0, rng: RNGName = "srand") -> np.ndarray:
    """Gene permutations for ``n_rand`` randomisations.

    Parameters
    ----------
    n_genes
        Number of genes permuted (the common genes of expression and signature).
    n_rand
        Number of permutations.
    seed
        Seed, ``0 <= seed < 2**32``; 0 with ``rng="srand"`` is R SecAct's default.
    rng
        ``"srand"`` (glibc ``rand()``, R SecAct / secactpy exact), ``"gsl"``
        (GSL MT19937) or ``"numpy"`` (``numpy.random.default_rng``).

    Returns
    -------
    numpy.ndarray, shape ``(n_rand, n_genes)``, intp, read-only
        Row ``p`` is permutation ``p``: the permuted profile is ``y[table[p]]``.
        Cached per arguments; copy before modifying.
    """
    if rng not in ("srand", "gsl", "numpy"):
        raise ValueError(f"rng={rng!r} is not one of 'srand', 'gsl', 'numpy'.")
    for name, value in (("n_genes", n_genes), ("n_rand", n_rand)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return _cached_table(int(n_genes), int(n_rand), _check_seed(seed), rng)


def inverse_permutations(table: np.ndarray) -> np.ndarray:
    """Row-wise inverses: ``inv[p, table[p, i]] = i``, so ``T[:, inv[p]] @ y == T @ y[table[p]]``."""
    table = np.asarray(table)
    inv = np.empty_like(table)
    rows = np.arange(table.shape[0])[:, None]
    inv[rows, table] = np.arange(table.shape[1])
    return inv
