"""One driver for row-blocked statistics: tile a block kernel, thread or graph it, package the outputs.

A kernel is a pure function of two blocks of rows (features × samples) and
``xp``; it returns float64 outputs on a last axis named by the caller. Two
layouts (see :mod:`cytodask.core.stats.inputs`):

- *rows*: ``kernel(x, y, *, xp, **options) -> rows × k`` on the same rows of
  ``x`` and ``y`` (a two-sample test per feature), packaged as a
  :class:`~cytodask.core.stats.results.StatResult` (or a DataFrame);
- *pairs*: ``kernel(a, b, *, z, xp, **options) -> fa × fb × k`` on a block of
  ``a`` rows against a block of ``b`` rows (a correlation per pair), packaged
  as a :class:`~cytodask.core.stats.results.CorrelationResult`.

Blocks are rows of features, never one feature at a time. NumPy blocks run on
a thread pool (:func:`~cytodask.core.backend.ordered_map`), each writing its
own slice of the output, so results do not depend on the threads; Dask input
becomes one kernel call per chunk, one thread per task. An output named
``code`` (bit masks) becomes ``reason`` strings, outputs named ``n`` or
``n_*`` become int64.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from cytodask.core.backend import check_threads, ordered_map
from cytodask.core.stats.blocks import CPU_BLOCKS, BlockSizes, block_sizes, rows_per_block
from cytodask.core.stats.inputs import Prepared
from cytodask.core.stats.results import CorrelationResult, StatResult
from cytodask.core.xp import array_module, to_numpy

ROW_BLOCK_ELEMENTS = CPU_BLOCKS.row_elements  # samples × features per rows-kernel call: temporaries stay in cache
PAIR_BLOCK_ELEMENTS = CPU_BLOCKS.pair_elements  # features × samples per operand block of a pairs kernel
MAX_BLOCK_FEATURES = CPU_BLOCKS.max_features  # bounds the fa × fb intermediates of a pairs block
MIN_PARALLEL_WORK = 1 << 22  # fa × fb × samples below which threads cost more than they save
MIN_THREAD_ROWS = 16

TWO_SAMPLE_REASONS = {1: "n_g1<{m}", 2: "n_g2<{m}", 8: "n_pairs<{m}", 4: "zero_variance",
                      16: "all_differences_zero"}  # fmt: skip
CORRELATION_REASONS = {1: "n<{m}", 2: "constant"}


def _block_sizes(xp: Any) -> BlockSizes:
    """This module's CPU sizes (read when called: tests shrink them) for NumPy; device-sized blocks for CuPy."""
    if xp is np:
        return BlockSizes(ROW_BLOCK_ELEMENTS, PAIR_BLOCK_ELEMENTS, MAX_BLOCK_FEATURES)
    return block_sizes(xp)


def check_min_n(min_n: int, *, smallest: int = 1, default: int = 3) -> int:
    """``min_n`` as an int, or a ValueError naming the smallest allowed value and the default."""
    if isinstance(min_n, bool) or not isinstance(min_n, (int, np.integer)) or min_n < smallest:
        raise ValueError(f"min_n={min_n!r}: give a whole number of samples >= {smallest} ({default} is the default)")
    return int(min_n)


def reason_strings(code: Any, min_n: int, reasons: Mapping[int, str]) -> np.ndarray:
    """Reason codes (bit masks of ``reasons``) to strings: ``""`` for a computed result, e.g. ``"n_g1<3"``."""
    code = np.asarray(to_numpy(code)).astype(np.int64)
    size = 2 * max(reasons)
    table = np.empty(size, dtype=object)
    for c in range(size):
        table[c] = ";".join(t.format(m=min_n) for bit, t in reasons.items() if c & bit)
    return table[code]


def map_row_blocks(kernel: Callable[..., Any], x: Any, y: Any, *, n_out: int, threads: int = 1,
                   **options: Any) -> Any:
    """Apply ``kernel`` to blocks of the same rows of ``x`` and ``y``; stack the ``(rows × n_out)`` outputs.

    NumPy blocks run on ``threads`` threads; each block writes its own rows,
    so the result does not depend on ``threads``. CuPy blocks are device-sized
    (:func:`~cytodask.core.stats.blocks.block_sizes`).
    """
    xp = array_module(x)
    rows = x.shape[0]
    step = rows_per_block(x.shape[1] + y.shape[1], _block_sizes(xp))
    out = xp.empty((rows, n_out), dtype=xp.float64)

    def one(start: int) -> None:  # blocks of features: bounded temporaries
        # rows made contiguous per block (a transposed input would make every row-wise sort stride)
        bx = xp.ascontiguousarray(x[start : start + step])
        by = xp.ascontiguousarray(y[start : start + step])
        out[start : start + step] = kernel(bx, by, xp=xp, **options)

    for _ in ordered_map(one, range(0, rows, step), threads if xp is np else 1):
        pass
    return out


def map_pair_blocks(kernel: Callable[..., Any], a: Any, b: Any, *, n_out: int, z: Any = None, threads: int = 1,
                    **options: Any) -> Any:
    """Apply ``kernel`` over blocks of rows of ``a`` × blocks of rows of ``b``; assemble ``(fa × fb × n_out)``.

    With NumPy blocks and ``threads > 1`` the rows of ``a`` are split so that
    every thread has a block, and blocks run on a thread pool (sorting, matrix
    products and special functions release the GIL). Blocks write disjoint
    slices of the output, so the result does not depend on ``threads``.
    """
    xp = array_module(a)
    sizes = _block_sizes(xp)  # CPU: cache-sized; CuPy: device-sized blocks
    step = max(1, min(sizes.max_features, sizes.pair_elements // max(1, a.shape[1])))
    parallel = threads > 1 and xp is np and a.shape[0] * b.shape[0] * a.shape[1] >= MIN_PARALLEL_WORK
    step_a = min(step, max(MIN_THREAD_ROWS, -(-a.shape[0] // threads))) if parallel else step
    out = xp.empty((a.shape[0], b.shape[0], n_out), dtype=xp.float64)
    jobs = [(i, j) for i in range(0, a.shape[0], step_a) for j in range(0, b.shape[0], step)]

    def one(ij: tuple[int, int]) -> None:  # blocks of features, never single features
        i, j = ij
        out[i : i + step_a, j : j + step] = kernel(a[i : i + step_a], b[j : j + step], z=z, xp=xp, **options)

    for _ in ordered_map(one, jobs, min(threads, len(jobs)) if parallel else 1):
        pass
    return out


def _with_z(a: Any, b: Any, z: Any, *, fn: Callable[..., Any]) -> Any:
    return fn(a, b, z=to_numpy(z))


def _lazy(fn: Callable[..., Any], prep: Prepared, n_out: int, pairs: bool) -> Any:
    """The Dask graph: one kernel call per chunk of rows (per pair of chunks for ``pairs``)."""
    import dask.array as da

    meta = array_module(prep.x).empty((0,) * (3 if pairs else 2), dtype=np.float64)
    common = {"concatenate": True, "dtype": np.float64, "meta": meta}
    if not pairs:
        return da.blockwise(fn, "ij", prep.x, "ik", prep.y, "il", new_axes={"j": n_out}, **common)
    if prep.z is None:
        return da.blockwise(fn, "ijs", prep.x, "ik", prep.y, "jk", new_axes={"s": n_out}, **common)
    zd = da.from_array(prep.z, chunks=-1)  # one shared graph key, not a copy per task
    return da.blockwise(_with_z, "ijs", prep.x, "ik", prep.y, "jk", zd, "kl", fn=fn, new_axes={"s": n_out},
                        **common)  # fmt: skip


def run(kernel: Callable[..., Any], prep: Prepared, names: Sequence[str], *, min_n: int,
        reasons: Mapping[int, str], pairs: bool = False, threads: int | None = None,
        **options: Any) -> StatResult | CorrelationResult | pd.DataFrame:
    """Run ``kernel`` over ``prep`` and package its outputs ``names`` (``code`` becomes ``reason``).

    ``pairs=False``: the rows layout, a :class:`StatResult` (a DataFrame for
    pandas input). ``pairs=True``: the pairs layout, a
    :class:`CorrelationResult` (of labelled DataFrames for pandas input; the
    outputs must be ``rho, pvalue, n, code``). Array input runs on
    ``threads`` threads (default: all available cores); Dask input one
    thread per task.
    """
    n_out = len(names)
    lazy = prep.kind == "dask"
    n_threads = 1 if lazy else check_threads(threads)
    mapper = map_pair_blocks if pairs else map_row_blocks
    fn = partial(mapper, kernel, n_out=n_out, min_n=min_n, threads=n_threads, **options)
    if lazy:
        out = _lazy(fn, prep, n_out, pairs)
    else:
        out = fn(prep.x, prep.y, z=prep.z) if pairs else fn(prep.x, prep.y)
    to_reasons = partial(reason_strings, min_n=min_n, reasons=reasons)
    cols: dict[str, Any] = {}
    for j, name in enumerate(names):
        col = out[..., j]
        if name == "code":
            meta = np.empty((0,) * col.ndim, dtype=object)
            name, col = "reason", col.map_blocks(to_reasons, dtype=object, meta=meta) if lazy else to_reasons(col)
        elif name == "n" or name.startswith("n_"):
            col = col.astype(np.int64)
        cols[name] = col if lazy or pairs else col.reshape(prep.lead_shape)
    if pairs:
        if prep.kind == "pandas":
            frame = partial(pd.DataFrame, index=prep.index, columns=prep.columns)
            cols = {k: frame(v) for k, v in cols.items()}
        return CorrelationResult(**cols)
    if prep.kind == "pandas":
        return pd.DataFrame({k: to_numpy(v) for k, v in cols.items()}, index=prep.index)
    return StatResult(cols)
