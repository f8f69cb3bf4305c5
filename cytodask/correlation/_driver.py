"""One driver for the pairwise correlation kernels.

Inputs ``a`` (features_a × samples) and ``b`` (features_b × samples) come as
NumPy/CuPy arrays, pandas objects (samples matched by label) or Dask arrays
(samples put in one chunk, features split). A kernel maps an ``a`` block and a
``b`` block to a ``(fa × fb × 4)`` float64 block of ``rho, pvalue, n, code``;
the driver tiles the kernel over blocks of features and packages the result.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from cytodask.core.backend import array_module, check_threads, ordered_map, to_numpy

BLOCK_ELEMENTS = 1 << 22  # features × samples per operand block
MAX_BLOCK_FEATURES = 2048  # bounds the fa × fb intermediates of a block
MIN_PARALLEL_WORK = 1 << 22  # fa × fb × samples below which threads cost more than they save
MIN_THREAD_ROWS = 16

REASONS = {1: "n<{m}", 2: "constant"}


def is_dask(a: Any) -> bool:
    return type(a).__module__.startswith("dask.array")


@dataclass(frozen=True)
class CorrelationResult:
    """Correlation matrices (features_a × features_b): NumPy, CuPy, Dask or labelled DataFrames.

    ``reason`` is ``""`` where ``rho`` was computed, ``"n<10"`` where fewer
    than ``min_n`` pairwise-complete samples were left, ``"constant"`` where a
    vector was constant over them (rho undefined, as in scipy).
    """

    rho: Any
    pvalue: Any
    n: Any
    reason: Any

    def to_frame(self) -> pd.DataFrame:
        """Long table ``feature_a, feature_b, rho, pvalue, n, reason`` (computes Dask, copies CuPy)."""
        mats = {}
        for name in ("rho", "pvalue", "n", "reason"):
            m = getattr(self, name)
            m = m.compute() if is_dask(m) else m
            mats[name] = m if isinstance(m, pd.DataFrame) else pd.DataFrame(np.asarray(to_numpy(m)))
        rho = mats["rho"]
        fa = np.repeat(rho.index.to_numpy(), rho.shape[1])
        fb = np.tile(rho.columns.to_numpy(), rho.shape[0])
        cols = {k: v.to_numpy().ravel() for k, v in mats.items()}
        return pd.DataFrame({"feature_a": fa, "feature_b": fb, **cols})


@dataclass(frozen=True)
class PreparedAB:
    kind: str  # "array", "pandas" or "dask"
    a: Any
    b: Any
    z: Any  # covariates (samples × k) or None
    index_a: pd.Index | None
    index_b: pd.Index | None


def _as_frame(v: Any, name: str) -> pd.DataFrame:
    if isinstance(v, pd.Series):
        return v.to_frame(name=v.name if v.name is not None else name).T
    return v


def prepare(a: Any, b: Any, covariates: Any = None) -> PreparedAB:
    """Orient and align ``a``, ``b`` (features × samples) and covariates (samples × k)."""
    if isinstance(a, (pd.DataFrame, pd.Series)) and isinstance(b, (pd.DataFrame, pd.Series)):
        fa, fb = _as_frame(a, "a"), _as_frame(b, "b")
        common = fa.columns.intersection(fb.columns, sort=False)
        if isinstance(covariates, (pd.DataFrame, pd.Series)):
            common = common.intersection(covariates.index, sort=False)
        if len(common) == 0:
            raise ValueError(
                "a and b share no sample labels (columns); put samples in the columns of both "
                "(features × samples) or pass NumPy arrays matched by position"
            )
        z = covariates
        if isinstance(covariates, (pd.DataFrame, pd.Series)):
            z = pd.DataFrame(covariates).loc[common].to_numpy(dtype=np.float64)
        return PreparedAB("pandas", fa[common].to_numpy(dtype=np.float64), fb[common].to_numpy(dtype=np.float64),
                          _covariates(z, len(common)), fa.index, fb.index)  # fmt: skip
    if isinstance(a, (pd.DataFrame, pd.Series)) or isinstance(b, (pd.DataFrame, pd.Series)):
        raise TypeError("pass a and b both as pandas objects (features × samples) or both as arrays")
    if is_dask(a) or is_dask(b):
        import dask.array as da

        ad, bd = (v if is_dask(v) else da.asarray(v) for v in (a, b))
        ad, bd = (v[None, :] if v.ndim == 1 else v for v in (ad, bd))
        _check_2d(ad, bd)
        z = _covariates(to_numpy(covariates.compute() if is_dask(covariates) else covariates), ad.shape[1])
        return PreparedAB("dask", ad.rechunk({1: -1}), bd.rechunk({1: -1}), z, None, None)
    xp = array_module(a)
    aa, bb = (xp.asarray(v) for v in (a, b))
    aa, bb = (v[None, :] if v.ndim == 1 else v for v in (aa, bb))
    _check_2d(aa, bb)
    return PreparedAB("array", aa, bb, _covariates(covariates, aa.shape[1]), None, None)


def _check_2d(a: Any, b: Any) -> None:
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError("a and b must be 1-D or 2-D (features × samples)")
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"a has {a.shape[1]} samples (columns) and b {b.shape[1]}; both must be features × samples "
            "with the same samples (transpose a samples × features table with .T)"
        )


def _covariates(z: Any, n: int) -> Any:
    if z is None:
        return None
    z = np.asarray(to_numpy(z), dtype=np.float64)
    z = z[:, None] if z.ndim == 1 else z
    if z.ndim != 2 or z.shape[0] != n:
        raise ValueError(f"covariates must be samples × k with {n} rows (one per sample); got shape {z.shape}")
    return z


def tile(kernel: Callable[..., Any], a: Any, b: Any, *, z: Any = None, threads: int = 1, **options: Any) -> Any:
    """Apply ``kernel`` over blocks of rows of ``a`` and ``b``; assemble the ``(fa × fb × 4)`` result.

    With NumPy blocks and ``threads > 1`` the rows of ``a`` are split so that
    every thread has a block, and blocks run on a thread pool: sorting, the
    matrix products and the special functions all release the GIL. Blocks
    write disjoint slices of the output, so the result does not depend on
    ``threads``.
    """
    xp = array_module(a)
    step = max(1, min(MAX_BLOCK_FEATURES, BLOCK_ELEMENTS // max(1, a.shape[1])))
    parallel = threads > 1 and xp is np and a.shape[0] * b.shape[0] * a.shape[1] >= MIN_PARALLEL_WORK
    step_a = min(step, max(MIN_THREAD_ROWS, -(-a.shape[0] // threads))) if parallel else step
    out = xp.empty((a.shape[0], b.shape[0], 4), dtype=xp.float64)
    jobs = [(i, j) for i in range(0, a.shape[0], step_a) for j in range(0, b.shape[0], step)]

    def one(ij: tuple[int, int]) -> None:  # blocks of features, never single features
        i, j = ij
        out[i : i + step_a, j : j + step] = kernel(a[i : i + step_a], b[j : j + step], z=z, xp=xp, **options)

    for _ in ordered_map(one, jobs, min(threads, len(jobs)) if parallel else 1):
        pass
    return out


def reason_strings(code: Any, min_n: int) -> np.ndarray:
    """Reason bit masks to strings (``""``, ``"n<10"``, ``"constant"``)."""
    code = np.asarray(to_numpy(code)).astype(np.int64)
    table = np.array([";".join(t.format(m=min_n) for bit, t in REASONS.items() if c & bit) for c in range(4)],
                     dtype=object)  # fmt: skip
    return table[code]


def run(kernel: Callable[..., Any], prep: PreparedAB, *, min_n: int, threads: int | None = None,
        **options: Any) -> CorrelationResult:
    """Run a pair kernel over ``prep`` and package ``rho``, ``pvalue``, ``n``, ``reason``.

    NumPy input runs on ``threads`` threads (default: all available cores);
    Dask input one thread per task (the Dask scheduler spreads the blocks).
    """
    n_threads = 1 if prep.kind == "dask" else check_threads(threads)
    fn = partial(tile, kernel, min_n=min_n, threads=n_threads, **options)
    if prep.kind == "dask":
        import dask.array as da

        meta = array_module(prep.a).empty((0, 0, 0), dtype=np.float64)
        if prep.z is None:
            out = da.blockwise(fn, "ijs", prep.a, "ik", prep.b, "jk", new_axes={"s": 4}, concatenate=True,
                               dtype=np.float64, meta=meta)  # fmt: skip
        else:
            zd = da.from_array(prep.z, chunks=-1)  # one shared graph key, not a copy per task
            out = da.blockwise(_with_z, "ijs", prep.a, "ik", prep.b, "jk", zd, "kl", fn=fn, new_axes={"s": 4},
                               concatenate=True, dtype=np.float64, meta=meta)  # fmt: skip
        code = out[:, :, 3].map_blocks(reason_strings, min_n=min_n, dtype=object,
                                       meta=np.empty((0, 0), dtype=object))  # fmt: skip
        return CorrelationResult(out[:, :, 0], out[:, :, 1], out[:, :, 2].astype(np.int64), code)
    out = fn(prep.a, prep.b, z=prep.z)
    rho, p, n = out[:, :, 0], out[:, :, 1], out[:, :, 2].astype(np.int64)
    reason = reason_strings(out[:, :, 3], min_n)
    if prep.kind == "pandas":
        frame = partial(pd.DataFrame, index=prep.index_a, columns=prep.index_b)
        return CorrelationResult(frame(rho), frame(p), frame(n), frame(reason))
    return CorrelationResult(rho, p, n, reason)


def _with_z(a: Any, b: Any, z: Any, *, fn: Callable[..., Any]) -> Any:
    return fn(a, b, z=to_numpy(z))


def check_min_n(min_n: int, smallest: int = 3) -> int:
    if isinstance(min_n, bool) or not isinstance(min_n, (int, np.integer)) or min_n < smallest:
        raise ValueError(f"min_n={min_n!r}: give a whole number of samples >= {smallest} (10 is the default)")
    return int(min_n)


def top_variance(b: Any, k: int | None) -> Any:
    """Keep the ``k`` rows of ``b`` (features × samples) with the largest variance (NaN-aware)."""
    if k is None:
        return b
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"top_variance={k!r}: give a positive number of features to keep, or None")
    if is_dask(b):
        raise TypeError("top_variance= needs the variances now; select rows of the Dask array first (or compute it)")
    if isinstance(b, pd.DataFrame):
        var = b.var(axis=1, skipna=True).to_numpy()
        keep = np.sort(np.argsort(-np.nan_to_num(var, nan=-np.inf), kind="stable")[:k])
        return b.iloc[keep]
    xp = array_module(b)
    with np.errstate(invalid="ignore"):
        var = xp.nanvar(xp.asarray(b, dtype=xp.float64), axis=1, ddof=1)
    order = xp.argsort(-xp.nan_to_num(var, nan=-xp.inf))
    return b[xp.sort(order[:k])]
