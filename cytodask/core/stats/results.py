"""Result types of the row-block statistics: per-feature outputs and feature × feature matrices."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from cytodask.core.xp import is_dask, to_numpy


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
            v = v.compute() if is_dask(v) else v
            cols[k] = np.asarray(to_numpy(v)).reshape(-1)
        return pd.DataFrame(cols, index=index)


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
