"""Lazy builders of the correlation family: Dask collections in, Dask collections out; nothing computes.

Pearson, Spearman and partial correlation have no builder here: their lazy
path is the shared row-block driver (:func:`cytodask.core.stats.driver.run`).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np

from cytodask.core.xp import array_module
from cytodask.correlation.kernels.bins import bin_means_rows, bin_reasons


def bin_means_graph(values: Any, member: np.ndarray, *, min_n: int) -> tuple[Any, Any, Any, Any]:
    """Dask graph of binned means: one kernel per block of features; the bin matrix is one shared chunk.

    Parameters
    ----------
    values
        Dask array, features × samples.
    member
        samples × bins weights (:func:`cytodask.correlation.kernels.bin_membership`).
    min_n
        Bins with fewer non-missing samples give NaN and a reason.

    Returns
    -------
    tuple
        Lazy ``mean``, ``n`` (int64), ``weight`` (Σw) and ``reason`` (object), features × bins.
    """
    import dask.array as da

    values = values.rechunk({1: -1})
    meta = array_module(values).empty((0, 0, 0), dtype=np.float64)
    out = da.blockwise(partial(bin_means_rows, min_n=min_n), "ijs", values, "ik", da.from_array(member, chunks=-1),
                       "kj", new_axes={"s": 4}, concatenate=True, dtype=np.float64, meta=meta)  # fmt: skip
    code = out[:, :, 3].map_blocks(bin_reasons, min_n=min_n, dtype=object, meta=np.empty((0, 0), dtype=object))
    return out[:, :, 0], out[:, :, 1].astype(np.int64), out[:, :, 2], code
