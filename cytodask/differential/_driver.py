"""One driver for the per-feature two-sample statistics.

Handles the input kinds (NumPy/CuPy arrays, pandas DataFrames, Dask arrays),
puts samples on the last axis, runs a row-block kernel (blocks of features,
never one feature at a time) and packages named outputs. Kernels have the
signature ``kernel(x, y, *, xp, **options) -> (rows × k) float64 block``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from cytodask.core.backend import array_module, check_threads, ordered_map, to_numpy

ROW_BLOCK_ELEMENTS = 1 << 18  # samples × features per kernel call: temporaries stay in cache and reused heap

REASON_BITS = {1: "n_g1<{m}", 2: "n_g2<{m}", 8: "n_pairs<{m}", 4: "zero_variance", 16: "all_differences_zero"}


def _is_dask(a: Any) -> bool:
    return type(a).__module__.startswith("dask.array")


class StatResult(Mapping[str, Any]):
    """Named per-feature outputs (NumPy, CuPy or lazy Dask arrays); ``res.pvalue`` or ``res["pvalue"]``."""

    def __init__(self, columns: Mapping[str, Any]) -> None:
        self._columns = dict(columns)

    def __getitem__(self, key: str) -> Any:
        return self._columns[key]

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["_columns"][name]
        except KeyError:
            raise AttributeError(f"no output {name!r}; outputs are {list(self.__dict__['_columns'])}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._columns)

    def __len__(self) -> int:
        return len(self._columns)

    def __repr__(self) -> str:
        return f"StatResult({', '.join(self._columns)})"

    def to_frame(self, index: Sequence[Any] | None = None) -> pd.DataFrame:
        """A DataFrame of the (1-D) outputs; computes Dask outputs and copies CuPy to host."""
        cols = {}
        for k, v in self._columns.items():
            v = v.compute() if _is_dask(v) else v
            cols[k] = np.asarray(to_numpy(v)).reshape(-1)
        return pd.DataFrame(cols, index=index)


@dataclass(frozen=True)
class Prepared:
    """Inputs with features on rows and samples on the last axis."""

    kind: str  # "array", "pandas" or "dask"
    x: Any
    y: Any
    lead_shape: tuple[int, ...]
    index: pd.Index | None


def _frame(a: Any, axis: int, name: str) -> pd.DataFrame:
    if isinstance(a, pd.Series):
        a = a.to_frame().T
    elif not isinstance(a, pd.DataFrame):
        raise TypeError(f"{name} is a {type(a).__name__} while the other input is a DataFrame; pass both as DataFrames")
    return a.T if axis in (0, -2) else a


def prepare(x: Any, y: Any, *, axis: int = -1, paired: bool = False) -> Prepared:
    """Check and orient two inputs (features × samples after ``axis`` is moved last)."""
    if isinstance(x, (pd.DataFrame, pd.Series)) or isinstance(y, (pd.DataFrame, pd.Series)):
        fx, fy = _frame(x, axis, "x"), _frame(y, axis, "y")
        if not fx.index.equals(fy.index):
            if set(fx.index) != set(fy.index) or not fx.index.is_unique:
                raise ValueError("x and y have different feature labels (rows); reindex y to x.index first")
            fy = fy.reindex(fx.index)
        return Prepared("pandas", fx.to_numpy(), fy.to_numpy(), (len(fx.index),), fx.index)
    if _is_dask(x) or _is_dask(y):
        import dask.array as da

        xd, yd = (a if _is_dask(a) else da.asarray(a) for a in (x, y))
        xd, yd = (da.moveaxis(a, axis, -1) for a in (xd, yd))
        if xd.ndim == 1:
            xd, yd = xd[None, :], yd[None, :]
        if xd.ndim != 2 or yd.ndim != 2:
            raise ValueError("Dask inputs must be 1-D or 2-D (features × samples); reshape them first")
        xd = xd.rechunk({1: -1})
        yd = yd.rechunk({0: xd.chunks[0], 1: -1})
        prep = Prepared("dask", xd, yd, (xd.shape[0],), None)
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
        prep = Prepared("array", xa.reshape(rows, xa.shape[-1]), ya.reshape(rows, ya.shape[-1]), lead, None)
    if prep.x.shape[0] != prep.y.shape[0]:
        raise ValueError(f"x has {prep.x.shape[0]} features and y {prep.y.shape[0]}; they must match")
    if paired and prep.x.shape[1] != prep.y.shape[1]:
        raise ValueError(
            f"paired test needs as many samples in x ({prep.x.shape[1]}) as in y ({prep.y.shape[1]}), "
            "matched by position"
        )
    return prep


def map_row_blocks(kernel: Callable[..., Any], x: Any, y: Any, *, n_out: int, threads: int = 1,
                   **options: Any) -> Any:
    """Apply ``kernel`` to blocks of rows of ``x`` and ``y``; stack the ``(rows × n_out)`` outputs.

    NumPy blocks run on ``threads`` threads (:func:`~cytodask.core.backend.ordered_map`);
    each block writes its own rows, so the result does not depend on ``threads``.
    """
    xp = array_module(x)
    rows = x.shape[0]
    step = max(1, ROW_BLOCK_ELEMENTS // max(1, x.shape[1] + y.shape[1]))
    out = xp.empty((rows, n_out), dtype=xp.float64)

    def one(start: int) -> None:  # blocks of features: bounded temporaries
        # rows made contiguous per block (a transposed input would make every row-wise sort stride)
        bx = xp.ascontiguousarray(x[start : start + step])
        by = xp.ascontiguousarray(y[start : start + step])
        out[start : start + step] = kernel(bx, by, xp=xp, **options)

    for _ in ordered_map(one, range(0, rows, step), threads if xp is np else 1):
        pass
    return out


def reason_strings(code: Any, min_n: int) -> np.ndarray:
    """Reason codes (bit masks) to strings: ``""`` for a computed result, e.g. ``"n_g1<3"``."""
    code = np.asarray(to_numpy(code)).astype(np.int64)
    table = np.empty(32, dtype=object)
    for c in range(32):
        table[c] = ";".join(t.format(m=min_n) for bit, t in REASON_BITS.items() if c & bit)
    return table[code]


def run(
    kernel: Callable[..., Any], prep: Prepared, names: Sequence[str], *, min_n: int, threads: int | None = None,
    **options: Any
) -> StatResult | pd.DataFrame:
    """Run ``kernel`` over ``prep`` and package its columns ``names`` (``code`` becomes ``reason``).

    Array input runs on ``threads`` threads (default: all available cores);
    Dask input one thread per task.
    """
    n_out = len(names)
    n_threads = 1 if prep.kind == "dask" else check_threads(threads)
    fn = partial(map_row_blocks, kernel, n_out=n_out, min_n=min_n, threads=n_threads, **options)
    if prep.kind == "dask":
        import dask.array as da

        meta = array_module(prep.x).empty((0, 0), dtype=np.float64)
        out = da.blockwise(
            fn, "ij", prep.x, "ik", prep.y, "il", new_axes={"j": n_out}, concatenate=True, dtype=np.float64, meta=meta
        )
    else:
        out = fn(prep.x, prep.y)
    cols: dict[str, Any] = {}
    for j, name in enumerate(names):
        col = out[:, j]
        if name == "code":
            if prep.kind == "dask":
                cols["reason"] = col.map_blocks(
                    reason_strings, min_n=min_n, dtype=object, meta=np.empty((0,), dtype=object)
                )
            else:
                cols["reason"] = reason_strings(col, min_n).reshape(prep.lead_shape)
            continue
        if name.startswith("n_"):
            col = col.astype(np.int64)
        cols[name] = col if prep.kind == "dask" else col.reshape(prep.lead_shape)
    if prep.kind == "pandas":
        return pd.DataFrame({k: to_numpy(v) for k, v in cols.items()}, index=prep.index)
    return StatResult(cols)


def check_min_n(min_n: int) -> int:
    if isinstance(min_n, bool) or not isinstance(min_n, (int, np.integer)) or min_n < 1:
        raise ValueError(f"min_n={min_n!r}: give a whole number of samples >= 1 (3 is the default)")
    return int(min_n)
