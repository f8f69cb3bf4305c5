"""Partial correlation kernels: every row of ``a`` with every row of ``b`` given covariates.

Both vectors are residualised on ``[1, Z]`` by least squares and the
residuals correlated (Fisher 1924): ``r = ⟨e_a, e_b⟩ / (‖e_a‖ ‖e_b‖)`` with
``e = (I − P)v`` and ``P`` the projector onto the columns of ``[1, Z]``;
``t = r √(ν / (1 − r²))`` on ``ν = n − k − 2`` degrees of freedom for ``k``
covariates (as pingouin's ``partial_corr``).

Rows without missing values share one projector (an orthonormal basis ``Q``
of ``[1, Z]``: ``e = v − (vQ)Qᵀ``, one matrix product). Pairs with a missing
value are residualised over their own pairwise-complete samples: a batch of
pairs, each with its Gram matrix ``[1,Z]ᵀ diag(m) [1,Z]`` solved at once.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from cytodask.core.stats import driver
from cytodask.core.xp import to_numpy
from cytodask.correlation.kernels.pearson import finish, t_pvalue

_EPS = float(np.finfo(np.float64).eps)


def design(z: Any, xp: ModuleType) -> Any:
    """``[1, Z]`` with the covariates centred and scaled (same column space, better conditioned)."""
    z = np.asarray(z, dtype=np.float64)
    sd = z.std(axis=0)
    zs = (z - z.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    return xp.asarray(np.column_stack([np.ones(z.shape[0]), zs]))


def _basis(z1: Any, xp: ModuleType) -> Any:
    """Orthonormal basis of the column space of ``z1`` (rank-revealing SVD)."""
    u, s, _ = xp.linalg.svd(z1, full_matrices=False)
    keep = s > s.max() * max(z1.shape) * _EPS
    return u[:, keep]


def _pinv(g: Any, xp: ModuleType) -> Any:
    try:
        return xp.linalg.pinv(g)
    except (NotImplementedError, ValueError, TypeError):  # a backend without batched pinv
        return xp.asarray(np.linalg.pinv(to_numpy(g)))


def paired_partial(a: Any, b: Any, z1: Any, xp: ModuleType) -> tuple[Any, Any, Any]:
    """Row-wise partial correlation of paired rows ``a[k]``, ``b[k]`` over their joint non-NaN samples."""
    m = (~xp.isnan(a) & ~xp.isnan(b)).astype(xp.float64)
    zm = m[:, :, None] * z1[None, :, :]  # pairs × samples × q
    gram_inv = _pinv(xp.swapaxes(zm, 1, 2) @ z1, xp)

    def resid(v: Any) -> Any:
        v0 = xp.where(m > 0, v, 0.0)
        beta = gram_inv @ (xp.swapaxes(zm, 1, 2) @ v0[:, :, None])
        return m * (v0 - (z1 @ beta)[:, :, 0]), (v0 * v0).sum(axis=1)

    ea, raw_a = resid(a)
    eb, raw_b = resid(b)
    n = m.sum(axis=1)
    saa, sbb = (ea * ea).sum(axis=1), (eb * eb).sum(axis=1)
    const = (saa <= 8 * n * _EPS * raw_a) | (sbb <= 8 * n * _EPS * raw_b)
    r = (ea * eb).sum(axis=1) / xp.sqrt(xp.where(const, 1.0, saa * sbb))
    return xp.clip(r, -1.0, 1.0), n, const


def partial_block(a: Any, b: Any, *, xp: ModuleType, z: Any, min_n: int = 10) -> Any:
    """Partial-correlation kernel on a block pair: ``(fa × fb × 4)`` of ``rho, pvalue, n, code``."""
    a, b = a.astype(xp.float64, copy=False), b.astype(xp.float64, copy=False)
    z1 = design(z, xp)
    k = z1.shape[1] - 1
    q = _basis(z1, xp)
    na_a, na_b = xp.isnan(a).any(axis=1), xp.isnan(b).any(axis=1)
    a0, b0 = xp.where(xp.isnan(a), 0.0, a), xp.where(xp.isnan(b), 0.0, b)
    ea, eb = a0 - (a0 @ q) @ q.T, b0 - (b0 @ q) @ q.T
    sa, sb = (ea * ea).sum(axis=1), (eb * eb).sum(axis=1)
    n_s = a.shape[1]
    const_a = (sa <= 8 * n_s * _EPS * (a0 * a0).sum(axis=1)) | (a0 == a0[:, :1]).all(axis=1)
    const_b = (sb <= 8 * n_s * _EPS * (b0 * b0).sum(axis=1)) | (b0 == b0[:, :1]).all(axis=1)
    ea, eb = ea / xp.sqrt(xp.where(const_a, 1.0, sa))[:, None], eb / xp.sqrt(xp.where(const_b, 1.0, sb))[:, None]
    r = xp.clip(ea @ eb.T, -1.0, 1.0)
    const = const_a[:, None] | const_b[None, :]
    ma, mb = (~xp.isnan(a)).astype(xp.float64), (~xp.isnan(b)).astype(xp.float64)
    n = ma @ mb.T
    ii, jj = xp.nonzero((na_a[:, None] | na_b[None, :]) & (n >= min_n))
    step = max(1, driver.PAIR_BLOCK_ELEMENTS // max(1, n_s * (k + 2)))
    for s in range(0, int(ii.size), step):  # blocks of pairs with missing values
        i, j = ii[s : s + step], jj[s : s + step]
        r[i, j], _, const[i, j] = paired_partial(a[i], b[j], z1, xp)
    df = n - k - 2.0
    return finish(r, t_pvalue(r, df, xp), n, const, min_n, xp)
