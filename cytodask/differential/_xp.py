"""Small array-module helpers shared by the statistics kernels.

Special functions come from ``scipy.special`` for NumPy and from
``cupyx.scipy.special`` for CuPy; a function CuPy lacks is evaluated on the
host (p-values are one number per feature or pair, so the copy is small).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np
import scipy.special

from cytodask.core.backend import to_numpy


def special(xp: ModuleType, name: str) -> Callable[..., Any]:
    """The special function ``name`` (``ndtr``, ``stdtr``, ``betaincc``…) for ``xp``."""
    host = getattr(scipy.special, name)
    if xp is np:
        return host
    try:
        fn = getattr(importlib.import_module("cupyx.scipy.special"), name)
    except (ImportError, AttributeError):
        fn = None
    if fn is not None:
        return fn

    def on_host(*args: Any) -> Any:
        return xp.asarray(host(*[to_numpy(a) for a in args]))

    return on_host


def reverse_cummin(a: Any, xp: ModuleType) -> Any:
    """Cumulative minimum from the end of the last axis: ``out[..., i] = min(a[..., i:])``."""
    try:
        return xp.minimum.accumulate(a[..., ::-1], axis=-1)[..., ::-1]
    except (AttributeError, NotImplementedError, TypeError):  # CuPy builds without accumulate
        host = np.minimum.accumulate(to_numpy(a)[..., ::-1], axis=-1)[..., ::-1]
        return xp.asarray(np.ascontiguousarray(host))


def two_sided_t_pvalue(t: Any, df: Any, xp: ModuleType) -> Any:
    """``2 · T_df(−|t|)``: scipy's ``_get_pvalue`` for a Student t statistic."""
    return 2.0 * special(xp, "stdtr")(df, -xp.abs(t))


def two_sided_normal_pvalue(z: Any, xp: ModuleType) -> Any:
    """``2 · Φ(−|z|)``: scipy's ``_get_pvalue`` for a standard normal statistic."""
    return 2.0 * special(xp, "ndtr")(-xp.abs(z))
