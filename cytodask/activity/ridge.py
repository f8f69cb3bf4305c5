"""Ridge regression activity kernels (pure; one code path for NumPy and CuPy via ``xp``).

With ``X`` the z-scored signature (genes x k) and ``y`` a z-scored expression
profile, activity is ``beta = T y`` with the projection matrix
``T = (X'X + lam I)^-1 X'``. Its significance is judged against gene
permutations of ``y``:

* :func:`ridge_permutation` — ``n_rand`` sampled permutations (R SecAct's test;
  exact parity with ``"srand"`` tables): ``se`` is the standard deviation of
  the permuted betas (population form, as R SecAct and secactpy),
  ``z = (beta - mean_perm) / se`` and ``p = (#{|beta_perm| >= |beta|} + 1) / (n_rand + 1)``.
* :func:`ridge_analytic` — the exact permutation moments in closed form
  (Wald & Wolfowitz 1944; Hoeffding 1951): for ``S = sum_i a_pi(i) b_i`` over
  uniform permutations ``pi`` of ``n`` genes, ``E[S] = (sum a)(sum b) / n`` and
  ``Var[S] = sum (a_i - abar)^2 sum (b_i - bbar)^2 / (n - 1)``; with ``a`` a row
  of ``T`` and ``b`` the profile, ``se = sqrt(Var)``, ``z = (beta - E) / se`` and
  a two-sided normal ``p = erfc(|z| / sqrt 2)``.
* :func:`ridge_sparse` — either test on a sparse cells x genes block without
  densifying it: column standardisation is folded into the product,
  ``T y_std = (T l - T g - mu T 1) / sigma`` for ``y = l - g``.

Permutations are batched: ``B`` permuted copies of ``y`` (or of ``T``) are
stacked so each batch is one GEMM. Algorithm after R SecAct's ``ridgeReg`` and
secactpy's ``ridge.py`` (MIT), reimplemented.

References
----------
Jiang, P. et al. (2021). Systematic investigation of cytokine signaling
activity at the tissue and single-cell levels. Nature Methods 18, 1181-1191.
Wald, A. & Wolfowitz, J. (1944). Statistical tests based on permutations of the
observations. Ann. Math. Statist. 15, 358-372.
Hoeffding, W. (1951). A combinatorial central limit theorem. Ann. Math.
Statist. 22, 558-566.
R SecAct: https://github.com/data2intelligence/SecAct; secactpy 0.3.1 (MIT).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from types import ModuleType
from typing import Any, Literal, NamedTuple

import numpy as np
import scipy.linalg
import scipy.special

from cytodask.core.backend import ordered_map
from cytodask.core.spmm import csr_matmul, csr_matmul_accumulate, worth_compiling

from .preprocess import sparse_column_moments

Method = Literal["permutation", "analytic"]

EPS = 1e-12  # se at or below this gives z = 0 (secactpy's convention)
_BATCH_BYTES = 256 * 2**20  # memory target for one stacked batch (dense GEMMs)
_SPARSE_BATCH_BYTES = 16 * 2**20  # stacked operand per batch; gene slices (_PART_BYTES) keep each product in L2


class RidgeStats(NamedTuple):
    """Activity statistics, each signatures x samples."""

    beta: Any
    se: Any
    zscore: Any
    pvalue: Any


def _linalg(xp: ModuleType) -> ModuleType:  # SciPy's imported with the module, not on the first call
    return scipy.linalg if xp is np else importlib.import_module("cupyx.scipy.linalg")


def _special(xp: ModuleType) -> ModuleType:
    return scipy.special if xp is np else importlib.import_module("cupyx.scipy.special")


def projection_matrix(x: Any, lam: float = 5e5, *, xp: ModuleType = np) -> Any:
    """``T = (X'X + lam I)^-1 X'`` through a Cholesky factorisation (as R SecAct's GSL code).

    Parameters
    ----------
    x
        Z-scored signature over the common genes, genes x k.
    lam
        Ridge penalty (``lambda`` of R SecAct; 5e5 by default).

    Returns
    -------
    k x genes float64 array.
    """
    if not lam >= 0:
        raise ValueError(f"lam must be >= 0, got {lam}.")
    x = xp.asarray(x, dtype=xp.float64)
    k = x.shape[1]
    gram = x.T @ x + lam * xp.eye(k, dtype=xp.float64)
    try:
        chol = xp.linalg.cholesky(gram)
    except np.linalg.LinAlgError:
        chol = xp.full_like(gram, np.nan)
    if not bool(xp.isfinite(chol).all()):  # CuPy reports failure as NaN
        raise ValueError("X'X + lam I is not positive definite (collinear signatures); use lam > 0.")
    # (X'X + lam I)^-1 = L^-T L^-1 from the Cholesky factor, then one GEMM with X'
    # (cheaper than two triangular solves against X' when genes >> k).
    linv = _linalg(xp).solve_triangular(chol, xp.eye(k, dtype=xp.float64), lower=True)
    return (linv.T @ linv) @ x.T


def analytic_stats(
    T: Any, beta: Any, sum_b: Any, ss_b: Any, n: int, *, xp: ModuleType = np
) -> RidgeStats:
    """Closed-form permutation moments given per-sample ``sum b`` and ``sum (b - bbar)^2``.

    For ``S = sum_i a_pi(i) b_i`` over the ``n!`` equally likely permutations,
    ``E[S] = (sum a)(sum b) / n`` and ``Var[S] = sum (a - abar)^2 sum (b - bbar)^2 / (n - 1)``
    (Wald & Wolfowitz 1944; Hoeffding 1951). With ``a`` the row ``T_k``:
    ``E = (sum_i T_ki) sum_b / n``, ``se = sqrt(sum_i (T_ki - Tbar_k)^2 ss_b / (n - 1))``,
    ``z = (beta - E) / se`` (0 when ``se <= EPS``) and ``p = erfc(|z| / sqrt 2)``
    (two-sided, normal approximation of the permutation distribution).

    Parameters
    ----------
    T
        Projection matrix, k x genes.
    beta
        ``T y``, k x samples.
    sum_b, ss_b
        Per sample: ``sum_i y_i`` and ``sum_i (y_i - ybar)^2`` over the ``n`` genes.
    n
        Number of genes.
    """
    sum_a = T.sum(axis=1)
    ss_a = ((T - (sum_a / n)[:, None]) ** 2).sum(axis=1)
    mean = sum_a[:, None] * sum_b[None, :] / n
    se = xp.sqrt(xp.maximum(ss_a[:, None] * ss_b[None, :] / (n - 1), 0.0))
    z = xp.where(se > EPS, (beta - mean) / xp.where(se > EPS, se, 1.0), 0.0)
    p = _special(xp).erfc(xp.abs(z) / np.sqrt(2.0))
    return RidgeStats(beta, se, z, p)


def ridge_analytic(T: Any, y: Any, *, xp: ModuleType = np) -> RidgeStats:
    """Ridge activity with closed-form permutation z-scores.

    ``beta = T y``; ``se = sqrt(Var[beta_perm])`` and ``z = (beta - E[beta_perm]) / se``
    with the exact moments of :func:`analytic_stats` (Wald & Wolfowitz 1944;
    Hoeffding 1951); ``p = erfc(|z| / sqrt 2)``. For z-scored ``y``,
    ``E = 0`` and ``se_k = ||T_k - Tbar_k||``: what ``n_rand`` sampled
    permutations estimate, without Monte-Carlo noise.

    Parameters
    ----------
    T
        Projection matrix, k x genes.
    y
        Expression, genes x samples (z-scored columns in the SecAct pipeline).

    Returns
    -------
    RidgeStats
        k x samples beta, se, zscore, pvalue.
    """
    y = xp.asarray(y, dtype=xp.float64)
    n = y.shape[0]
    sum_b = y.sum(axis=0)
    ss_b = ((y - sum_b[None, :] / n) ** 2).sum(axis=0)
    return analytic_stats(T, T @ y, sum_b, ss_b, n, xp=xp)


def permutation_stats(beta: Any, batches: Iterator[Any], n_rand: int, *, xp: ModuleType = np) -> RidgeStats:
    """Reduce permuted betas (an iterator of ``B x k x m`` arrays) to se, z and p.

    Accumulates ``sum``, ``sum of squares`` and the exceedance count as R SecAct
    does; ``se = sqrt(sum2 / n - mean^2)``.
    """
    s1 = xp.zeros_like(beta)
    s2 = xp.zeros_like(beta)
    count = xp.zeros_like(beta)
    ref = xp.abs(beta)
    for bp in batches:
        s1 += bp.sum(axis=0)
        s2 += (bp * bp).sum(axis=0)
        count += (xp.abs(bp) >= ref[None]).sum(axis=0)
    mean = s1 / n_rand
    se = xp.sqrt(xp.maximum(s2 / n_rand - mean * mean, 0.0))
    z = xp.where(se > EPS, (beta - mean) / xp.where(se > EPS, se, 1.0), 0.0)
    return RidgeStats(beta, se, z, (count + 1.0) / (n_rand + 1.0))


def _batch_size(batch_size: int | None, per_perm: int, n_rand: int, budget: int = _BATCH_BYTES) -> int:
    if batch_size is None:
        batch_size = budget // max(8 * per_perm, 1)
    return int(max(1, min(batch_size, n_rand)))


def _check_table(perm_table: Any, n: int, xp: ModuleType) -> Any:
    table = xp.asarray(perm_table)
    if table.ndim != 2 or table.shape[1] != n:
        raise ValueError(f"perm_table must be n_rand x {n} (genes), got shape {tuple(table.shape)}.")
    return table


def _inverse(tb: Any, xp: ModuleType) -> Any:
    inv = xp.empty_like(tb)
    inv[xp.arange(tb.shape[0])[:, None], tb] = xp.arange(tb.shape[1])[None, :]
    return inv


def ridge_permutation(
    T: Any, y: Any, perm_table: Any, *, batch_size: int | None = None, xp: ModuleType = np
) -> RidgeStats:
    """Ridge activity with a sampled permutation test.

    Parameters
    ----------
    T
        Projection matrix, k x genes.
    y
        Z-scored expression, genes x samples.
    perm_table
        ``n_rand x genes`` forward permutations (:func:`~cytodask.activity.rng.permutation_table`);
        on GPU pass it as a device array once.
    batch_size
        Permutations per GEMM (default: about 256 MB of stacked operand).

    Notes
    -----
    With fewer samples than signatures, permuted copies of ``y`` are stacked
    (``T @ [y[p1] | y[p2] | ...]``), otherwise permuted copies of ``T``
    (``[T[:, inv p1]; ...] @ y``); both equal ``T @ y[p]``.
    """
    y = xp.asarray(y, dtype=xp.float64)
    n, m = y.shape
    k = T.shape[0]
    table = _check_table(perm_table, n, xp)
    n_rand = table.shape[0]
    rows_mode = m < k
    bs = _batch_size(batch_size, n * m + k * m if rows_mode else k * n + k * m, n_rand)

    def batches() -> Iterator[Any]:
        for start in range(0, n_rand, bs):
            tb = table[start : start + bs]
            b = tb.shape[0]
            if rows_mode:
                stacked = y[tb].transpose(1, 0, 2).reshape(n, b * m)
                yield (T @ stacked).reshape(k, b, m).transpose(1, 0, 2)
            else:
                stacked = T[:, _inverse(tb, xp)].transpose(1, 0, 2).reshape(b * k, n)
                yield (stacked @ y).reshape(b, k, m)

    return permutation_stats(T @ y, batches(), n_rand, xp=xp)


def ridge_sparse(
    T: Any,
    block: Any,
    *,
    gene_mean: Any | None = None,
    method: Method = "analytic",
    perm_table: Any | None = None,
    batch_size: int | None = None,
    threads: int = 1,
    compiled: bool | None = None,
    xp: ModuleType = np,
) -> RidgeStats:
    """Ridge activity for a sparse cells x genes block, never densified.

    Parameters
    ----------
    T
        Projection matrix, k x genes (the block's columns are the common genes, in T's order).
    block
        CSR (SciPy or CuPy), cells x genes, normalized expression ``l``
        (e.g. :func:`~cytodask.activity.preprocess.normalize_sparse`).
    gene_mean
        Per-gene means ``g`` subtracted from every cell (global, from an earlier
        pass); None for none.
    method
        ``"analytic"`` or ``"permutation"`` (then ``perm_table`` is required).
    perm_table, batch_size
        As for :func:`ridge_permutation`.
    threads
        Permutation batches computed concurrently (NumPy only); results do not
        depend on it. Keep 1 inside Dask tasks (the scheduler spreads blocks).
    compiled
        Observed betas through the compiled product (:func:`~cytodask.core.spmm.csr_matmul`)
        rather than SciPy's; None: always for permutations (compiled anyway), else when
        this block's work repays loading it. Pass the whole job's choice for its blocks.

    Notes
    -----
    For each cell ``y = l - g`` is standardised over the genes with
    ``mu``/``sigma`` from sparse sums (:func:`~cytodask.activity.preprocess.sparse_column_moments`),
    so ``beta = (T l - T g - mu T 1) / sigma``; a permutation ``p`` changes only
    the gene order, giving ``(T[:, inv p] l - T[:, inv p] g - mu T 1) / sigma``.
    Constant profiles give ``beta = 0``. Returns k x cells statistics.
    """
    if method not in ("analytic", "permutation"):
        raise ValueError(f"method={method!r} is not 'analytic' or 'permutation'.")
    cells, n = block.shape
    k = T.shape[0]
    if T.shape[1] != n:
        raise ValueError(f"block has {n} genes but T has {T.shape[1]}; restrict the block to the common genes.")
    mu, sigma, const = sparse_column_moments(block, gene_mean, xp=xp)
    inv_sigma = xp.where(const, 0.0, 1.0 / xp.where(const, 1.0, sigma))
    g = xp.zeros(n) if gene_mean is None else xp.asarray(gene_mean, dtype=xp.float64)
    c = T.sum(axis=1)
    tt = xp.ascontiguousarray(T.T)  # genes x k

    def standardise(raw: Any, tg: Any) -> Any:  # raw: (..., k, cells), tg: (..., k)
        return (raw - tg[..., None] - c[:, None] * mu[None, :]) * inv_sigma[None, :]

    if compiled is None:
        compiled = method == "permutation" or worth_compiling(float(block.nnz) * k)
    beta = standardise(csr_matmul(block, tt, compiled=compiled, xp=xp).T, T @ g)
    if method == "analytic":
        ss_b = xp.where(const, 0.0, float(n - 1))
        return analytic_stats(T, beta, xp.zeros(cells), ss_b, n, xp=xp)
    if perm_table is None:
        raise ValueError("method='permutation' needs perm_table (cytodask.activity.rng.permutation_table).")
    table = _check_table(perm_table, n, xp)
    n_rand = table.shape[0]
    bs = _batch_size(batch_size, n * k, n_rand, _SPARSE_BATCH_BYTES if xp is np else _BATCH_BYTES)
    parts = _gene_parts(block, n * bs * k * 8, xp)

    def one(start: int) -> Any:
        inv = _inverse(table[start : start + bs], xp)
        b = inv.shape[0]
        stacked = tt[inv.T]  # genes x b x k: T[:, inv p].T side by side, contiguous
        wide = stacked.reshape(n, b * k)
        raw = xp.zeros((cells, b * k), dtype=xp.float64)
        for g0, g1, part in parts:  # gene slices keep the dense operand in cache
            csr_matmul_accumulate(part, wide[g0:g1], raw, xp=xp)
        raw = raw.reshape(cells, b, k).transpose(1, 2, 0)
        return standardise(raw, xp.einsum("nbk,n->bk", stacked, g))

    return permutation_stats(beta, ordered_map(one, range(0, n_rand, bs), threads if xp is np else 1), n_rand,
                             xp=xp)


_PART_BYTES = 1 << 20  # dense operand rows per gene slice: about one core's L2


def _gene_parts(block: Any, dense_bytes: int, xp: ModuleType) -> list[tuple[int, int, Any]]:
    """Column slices of a CSR block such that each slice's dense operand fits in L2 (CPU only)."""
    n = block.shape[1]
    count = 1 if xp is not np else max(1, min(16, -(-dense_bytes // _PART_BYTES)))
    edges = np.linspace(0, n, count + 1).astype(int)
    if count == 1:
        return [(0, n, block)]
    return [(int(a), int(b), block[:, a:b]) for a, b in zip(edges[:-1], edges[1:], strict=True)]
