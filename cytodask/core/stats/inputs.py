"""Input handling of the row-block statistics: kinds, orientation and alignment.

Both layouts put features on rows and samples on the last axis:

- *rows* (:func:`prepare_rows`): ``x`` and ``y`` hold the same features (two
  groups of samples, e.g. a rank-sum test per feature);
- *pairs* (:func:`prepare_pairs`): ``x`` (features_a) and ``y`` (features_b)
  hold the same samples, every feature of ``x`` meets every feature of ``y``
  (e.g. correlations), optionally with covariates (samples × k).

Inputs come as NumPy/CuPy arrays, pandas objects (matched by label) or Dask
arrays (samples put in one chunk, features stay split).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from cytodask.core.xp import array_module, is_dask, to_numpy


@dataclass(frozen=True)
class Prepared:
    """Inputs with features on rows and samples on the last axis."""

    kind: str  # "array", "pandas" or "dask"
    x: Any
    y: Any
    z: Any = None  # covariates (samples × k) of the pairs layout, or None
    lead_shape: tuple[int, ...] = ()  # rows layout: the features' shape of array input
    index: pd.Index | None = None  # labels of the rows of x
    columns: pd.Index | None = None  # pairs layout: labels of the rows of y


def _frame(a: Any, axis: int, name: str) -> pd.DataFrame:
    if isinstance(a, pd.Series):
        a = a.to_frame().T
    elif not isinstance(a, pd.DataFrame):
        raise TypeError(f"{name} is a {type(a).__name__} while the other input is a DataFrame; pass both as DataFrames")
    return a.T if axis in (0, -2) else a


def prepare_rows(x: Any, y: Any, *, axis: int = -1, paired: bool = False) -> Prepared:
    """Check and orient two groups of the same features (features × samples after ``axis`` is moved last)."""
    if isinstance(x, (pd.DataFrame, pd.Series)) or isinstance(y, (pd.DataFrame, pd.Series)):
        fx, fy = _frame(x, axis, "x"), _frame(y, axis, "y")
        if not fx.index.equals(fy.index):
            if set(fx.index) != set(fy.index) or not fx.index.is_unique:
                raise ValueError("x and y have different feature labels (rows); reindex y to x.index first")
            fy = fy.reindex(fx.index)
        return Prepared("pandas", fx.to_numpy(), fy.to_numpy(), lead_shape=(len(fx.index),), index=fx.index)
    if is_dask(x) or is_dask(y):
        import dask.array as da

        xd, yd = (a if is_dask(a) else da.asarray(a) for a in (x, y))
        xd, yd = (da.moveaxis(a, axis, -1) for a in (xd, yd))
        if xd.ndim == 1:
            xd, yd = xd[None, :], yd[None, :]
        if xd.ndim != 2 or yd.ndim != 2:
            raise ValueError("Dask inputs must be 1-D or 2-D (features × samples); reshape them first")
        xd = xd.rechunk({1: -1})
        yd = yd.rechunk({0: xd.chunks[0], 1: -1})
        prep = Prepared("dask", xd, yd, lead_shape=(xd.shape[0],))
    else:
        xp = array_module(x)
        xa, ya = xp.moveaxis(xp.asarray(x), axis, -1), xp.moveaxis(xp.asarray(y), axis, -1)
        if xa.shape[:-1] != ya.shape[:-1]:
            raise ValueError(
                f"x has shape {xa.shape} and y {ya.shape} with samples on the last axis: the leading "
                "(feature) shapes must match; pass the samples axis with axis="
            )
        lead = xa.shape[:-1]
        rows = int(np.prod(lead))
        prep = Prepared("array", xa.reshape(rows, xa.shape[-1]), ya.reshape(rows, ya.shape[-1]), lead_shape=lead)
    if prep.x.shape[0] != prep.y.shape[0]:
        raise ValueError(f"x has {prep.x.shape[0]} features and y {prep.y.shape[0]}; they must match")
    if paired and prep.x.shape[1] != prep.y.shape[1]:
        raise ValueError(
            f"paired test needs as many samples in x ({prep.x.shape[1]}) as in y ({prep.y.shape[1]}), "
            "matched by position"
        )
    return prep


def _as_frame(v: Any, name: str) -> pd.DataFrame:
    if isinstance(v, pd.Series):
        return v.to_frame(name=v.name if v.name is not None else name).T
    return v


def prepare_pairs(a: Any, b: Any, covariates: Any = None) -> Prepared:
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
        return Prepared("pandas", fa[common].to_numpy(dtype=np.float64), fb[common].to_numpy(dtype=np.float64),
                        _covariates(z, len(common)), index=fa.index, columns=fb.index)  # fmt: skip
    if isinstance(a, (pd.DataFrame, pd.Series)) or isinstance(b, (pd.DataFrame, pd.Series)):
        raise TypeError("pass a and b both as pandas objects (features × samples) or both as arrays")
    if is_dask(a) or is_dask(b):
        import dask.array as da

        ad, bd = (v if is_dask(v) else da.asarray(v) for v in (a, b))
        ad, bd = (v[None, :] if v.ndim == 1 else v for v in (ad, bd))
        _check_2d(ad, bd)
        z = _covariates(to_numpy(covariates.compute() if is_dask(covariates) else covariates), ad.shape[1])
        return Prepared("dask", ad.rechunk({1: -1}), bd.rechunk({1: -1}), z)
    xp = array_module(a)
    aa, bb = (xp.asarray(v) for v in (a, b))
    aa, bb = (v[None, :] if v.ndim == 1 else v for v in (aa, bb))
    _check_2d(aa, bb)
    return Prepared("array", aa, bb, _covariates(covariates, aa.shape[1]))


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
