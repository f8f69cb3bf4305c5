"""Persist a lazy Dask result into a stage's Zarr arrays, block by block, with completion records.

A cluster stage is its family's lazy graph builder plus :func:`persist_blocks`:
the builder turns a Dask array of the stage's input blocks into lazy results
(cells/rows x columns, NumPy or CuPy blocks); :func:`persist_blocks` gives one
task per missing block that

1. writes the block's rows of every result into its Zarr array (CuPy blocks are
   copied to the host first),
2. makes them durable (``fsync`` of the chunk files, when the stage state asks),
3. writes the block's completion record (:meth:`~cytodask.core.stage.StageContext.record`),

in that order, so a record never outlives its data and a killed run resumes
with the missing blocks only. The tasks plug into :meth:`Stage.block_tasks`.

:func:`share` makes a small operand that every block uses (a projection matrix,
a permutation table) one graph key, or, on a cluster, one scattered copy per
worker, instead of a copy embedded in every task.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import dask
import numpy as np
import pandas as pd
import zarr

from cytodask.core.atomic import fsync_tree
from cytodask.core.backend import to_numpy
from cytodask.core.integrity import region_files, tree_files
from cytodask.core.stage import StageContext
from cytodask.core.store import StageState, fsync_zarr_region
from cytodask.core.tables import write_table

Target = str | os.PathLike[str]


def share(value: Any, client: Any | None = None) -> Any:
    """``value`` as one graph key (``dask.delayed``), or broadcast once to every worker of ``client``.

    Pass the result to ``dask.delayed`` calls in place of ``value``: every task then
    refers to one key instead of holding its own copy, and with a client the graph
    sent to the scheduler does not carry the array at all (no "Sending large graph").
    """
    if value is None:
        return None
    if client is not None:
        return client.scatter(value, broadcast=True)
    return dask.delayed(value, pure=True)


def row_blocks(outputs: Mapping[str, Any]) -> tuple[tuple[int, int], ...]:
    """``(start, stop)`` rows of each block: the chunks along axis 0, shared by every output."""
    bounds: tuple[tuple[int, int], ...] | None = None
    for name, arr in outputs.items():
        edges = np.cumsum((0, *arr.chunks[0]))
        mine = tuple((int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True))
        if bounds is not None and mine != bounds:
            raise ValueError(f"output {name!r} is chunked along its rows unlike the others; "
                             "rechunk the outputs to the same row blocks")
        bounds = mine
    if bounds is None:
        raise ValueError("persist_blocks needs at least one output")
    return bounds


def persist_blocks(outputs: Mapping[str, Any], targets: Mapping[str, Target], ctx: StageContext,
                   blocks: Sequence[int]) -> list[Any]:
    """One delayed task per block of ``blocks``: write its rows of every output, fsync, record.

    Parameters
    ----------
    outputs
        Lazy results (Dask arrays, NumPy or CuPy blocks) chunked along axis 0 into the stage's
        blocks (block ``i`` = the ``i``-th row chunk); other axes may be chunked, they are merged.
    targets
        For every output, the path of an existing Zarr array with the output's shape (the region
        written is the block's rows, all columns).
    ctx
        The stage's context: ``ctx.fsync`` decides durability; records carry ``ctx.fingerprint``.
    blocks
        Indices of the blocks to compute (the missing ones); the others are culled from the graph.

    Returns
    -------
    list of Delayed
        Each returns the block's completion record info (``{"block": i, "rows": [start, stop]}``).
    """
    missing = sorted(set(outputs) - set(targets))
    if missing:
        raise ValueError(f"no target Zarr array for outputs {missing}; pass targets[name] = path of its array")
    bounds = row_blocks(outputs)
    pieces = {}
    for name, arr in outputs.items():
        if arr.ndim > 1 and any(len(c) > 1 for c in arr.chunks[1:]):
            arr = arr.rechunk({axis: -1 for axis in range(1, arr.ndim)})
        # unoptimised: outputs sliced from one computation keep sharing its tasks
        pieces[name] = arr.to_delayed(optimize_graph=False).reshape(len(bounds))
    names = list(outputs)
    paths = [os.fspath(targets[n]) for n in names]
    task = dask.delayed(write_block, pure=True)
    out = []
    for i in blocks:
        if not 0 <= i < len(bounds):
            raise IndexError(f"block {i} is outside the {len(bounds)} row blocks of the outputs")
        start, stop = bounds[i]
        out.append(task(ctx, i, start, stop, paths, *(pieces[n][i] for n in names),
                        dask_key_name=f"persist-{ctx.name}-{i}-{ctx.fingerprint[:8]}"))
    return out


def write_block(ctx: StageContext, index: int, start: int, stop: int, paths: Sequence[str],
                *values: Any) -> dict[str, Any]:
    """Write one block's rows into each Zarr array of ``paths``, make them durable, then record the block."""
    files: list[Any] = []
    for path, value in zip(paths, values, strict=True):
        arr = zarr.open_array(path, mode="r+")
        host = np.asarray(to_numpy(value))
        if host.shape[:1] != (stop - start,) or host.shape[1:] != arr.shape[1:]:
            raise ValueError(f"block {index} of {path} has shape {host.shape}, expected "
                             f"{(stop - start, *arr.shape[1:])}; the graph and the target arrays disagree")
        region = (slice(start, stop),) + (slice(None),) * (arr.ndim - 1)
        arr[region] = host
        written = fsync_zarr_region(arr, region) if ctx.fsync else region_files(arr, region)
        rows = arr.chunks[0]
        if start % rows == 0 and (stop % rows == 0 or stop == arr.shape[0]):
            files += written  # chunk files this block alone writes: their digests let a rerun repair just it
    return ctx.record(index, {"rows": [start, stop]}, files=files)


def persist_table(state: StageState, fingerprint: str, table: pd.DataFrame, *, index: int = 0,
                  info: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A one-block stage's result table: write it, make it durable, then record the block.

    The table goes to the stage's Zarr group (:func:`cytodask.core.tables.write_table`;
    read it back with :func:`~cytodask.core.tables.read_table`); with ``state.fsync`` every
    file and directory of the group is ``fsync``-ed before the record, whose sizes and
    checksums of those files let a later run (and ``cytodask verify``) tell a damaged
    table from a finished one.
    """
    write_table(state.path, table)
    files = fsync_tree(state.path) if state.fsync else sorted(tree_files(state.path))
    state.record_block(index, fingerprint, {"block": index, "rows": int(len(table)), **(info or {})}, files=files)
    return {"block": index}
