"""Convert any :class:`~cytodask.ingest.base.DataSource` into an atlas store, resumably.

Conversion is a client-side stage: blocks of cells are read from the source
and appended to the store's CSR arrays in order. After each block's values
and indptr are durable, its completion record (with the running non-zero
offset) is written; a killed conversion resumes after the last recorded
block, and converting an unchanged source again does nothing.
"""

from __future__ import annotations

import math
import os
import warnings
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from cytodask.core.atomic import read_json, sweep_temporaries
from cytodask.core.compat import renamed_kwargs
from cytodask.core.config import Config
from cytodask.core.events import EventBus
from cytodask.core.integrity import region_files
from cytodask.core.outputs import check_creatable, refuse_foreign, refuse_overlap
from cytodask.core.registry import register_stage
from cytodask.core.runner import StageReport, run_stages
from cytodask.core.stage import SpecContext, Stage, StageContext
from cytodask.core.store import ResultStore, StageState, fsync_zarr_region
from cytodask.ingest.atlas import ATTR, create_store
from cytodask.ingest.base import COUNT_MODES, DataSource, check_counts, detect_symbol_column

# Values per Zarr chunk of X/data and X/indices: small enough that a block's write rewrites at most
# two partial chunks of this size and that zarr compresses a block's chunks concurrently, large
# enough to keep the chunk count (files) modest. Measured: 64 MB chunks (one per block) made the
# partial-chunk rewrites and single-threaded compression dominate conversion.
CHUNK_NNZ_MAX = 1 << 20

# What an atlas store holds at its top level (AnnData's Zarr layout).
_STORE_ENTRIES = frozenset({"zarr.json", "obs", "var", "X", "uns", "obsm", "varm", "obsp", "varp", "layers"})


@register_stage("convert")
class ConvertStage(Stage):
    """Source → atlas store (AnnData Zarr, CSR X chunked by blocks of cells).

    Parameters
    ----------
    name
        Stage name.
    source
        What to read.
    batch_size
        Cells per block (store chunking and unit of resume).
    counts
        ``"warn"`` (default): refuse negative/NaN values, warn once about
        non-integer values (normalized data where counts are expected) and
        record it in the store; ``"strict"``: refuse non-integer values too;
        ``"off"``: no checks (e.g. converting log-normalized data on purpose).
    """

    version = "1"
    where = "client"
    spec_keys = ("counts",)  # the source and the block size come from the spec's [source] and [config]

    @classmethod
    def from_spec(cls, name: str, options: dict[str, Any], ctx: SpecContext) -> ConvertStage:
        """A spec's convert stage reads the spec's source in blocks of ``config.batch_size`` cells."""
        return cls(name, ctx.source(), batch_size=ctx.config.batch_size or 10_000,
                   counts=str(options.get("counts", "strict")))

    @renamed_kwargs(block_cells="batch_size")
    def __init__(self, name: str, source: DataSource, *, batch_size: int, counts: str = "warn") -> None:
        super().__init__(name)
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size}: must be ≥ 1")
        if counts not in COUNT_MODES:
            raise ValueError(f"counts={counts!r}: expected one of {COUNT_MODES}")
        self.source = source
        self.batch_size = int(batch_size)
        self.counts = counts
        self._warned = False
        self._pool: ThreadPoolExecutor | None = None
        self._ahead: dict[int, Future[Any]] = {}

    def params(self) -> dict[str, Any]:
        return {"source": self.source.identity(), "batch_size": self.batch_size, "counts": self.counts}

    def external_inputs(self) -> dict[str, Path]:
        return self.source.fingerprint_paths()

    def plan(self, ctx: StageContext) -> int:
        n_obs, n_vars = self.source.shape
        if n_obs == 0 or n_vars == 0:
            raise ValueError(f"{self.source.name}: the matrix is empty ({n_obs} cells × {n_vars} genes)")
        n_blocks = math.ceil(n_obs / self.batch_size)
        m = ctx.state.manifest() or {}
        if not m.get("prepared"):
            nnz = self.source.nnz_hint()
            if nnz is None:
                first = self.source.read_rows(0, min(n_obs, self.batch_size))
                per_block = first.nnz
            else:
                per_block = math.ceil(nnz / n_blocks)
            chunk_nnz = int(min(max(per_block, 4096), CHUNK_NNZ_MAX))
            obs, var = self.source.obs(), self.source.var()
            dup_cells = obs.index[obs.index.duplicated()].unique()
            if len(dup_cells):
                warnings.warn(
                    f"{self.source.name}: {len(dup_cells)} cell names occur more than once (e.g. "
                    f"{list(dup_cells[:5])}); they are kept as in the source, but cell-level outputs then have a "
                    "non-unique index. Call obs_names_make_unique() (or prefix them with the sample) before "
                    "converting to keep them apart",
                    UserWarning, stacklevel=2,
                )
            dup = var.index[var.index.duplicated()].unique()
            if len(dup):
                warnings.warn(
                    f"{self.source.name}: {len(dup)} var names occur more than once (e.g. {list(dup[:5])}); they "
                    "are kept as in the source. Gene matching keeps, per symbol, the gene with the largest total "
                    "expression; call var_names_make_unique() before converting to keep them apart",
                    UserWarning, stacklevel=2,
                )
            create_store(
                ctx.path, obs=obs, var=var, dtype=self.source.dtype,
                block_cells=self.batch_size, chunk_nnz=chunk_nnz,
                info={"source": self.source.name, "symbol_column": detect_symbol_column(var), "complete": False,
                      "duplicate_var_names": len(dup), "duplicate_obs_names": len(dup_cells)},
            )
            ctx.state.update(prepared=True)
        return n_blocks

    def run_block(self, ctx: StageContext, index: int) -> dict[str, Any]:
        start, stop = self._bounds(index)
        block = self._read(index)
        problem = check_counts(block, where=f"{self.source.name} cells {start}..{stop}",
                               layers=getattr(self.source, "layers", None), mode=self.counts,
                               first_row=start, layer=getattr(self.source, "layer", None))
        if problem and not self._warned:
            self._warned = True
            warnings.warn(problem + " (converting anyway: counts='warn'; use --strict to refuse)",
                          UserWarning, stacklevel=2)
        offset = 0
        if index > 0:
            prev = ctx.state.block_record(index - 1, ctx.fingerprint)
            if prev is None:
                raise RuntimeError(f"block {index - 1} of {ctx.path} is not recorded; blocks must be written in order")
            offset = int(prev["nnz_end"])
        end = offset + block.nnz
        x = zarr.open_group(str(ctx.path), mode="r+")["X"]
        files = []
        for key, values in (("data", block.data), ("indices", block.indices.astype(np.int32, copy=False))):
            arr = x[key]
            if arr.shape[0] < end:  # never shrink: a repaired block lies before blocks already written
                arr.resize((end,))
            if block.nnz:
                arr[offset:end] = values
                files += _written(arr, (slice(offset, end),), ctx.fsync)
        indptr = x["indptr"]
        indptr[start + 1 : stop + 1] = offset + block.indptr[1:].astype(np.int64)
        files += _written(indptr, (slice(start + 1, stop + 1),), ctx.fsync)
        info = {"block": index, "cells": [start, stop], "nnz_end": end, "non_integer": bool(problem)}
        ctx.state.record_block(index, ctx.fingerprint, info, files=files)
        return info

    def _bounds(self, index: int) -> tuple[int, int]:
        start = index * self.batch_size
        return start, min(self.source.shape[0], start + self.batch_size)

    def _read(self, index: int) -> Any:
        """Block ``index``, and the next block's read started in the background.

        Blocks are written in order, so reading block i + 1 (source I/O,
        decompression) overlaps writing block i (compression, store I/O).
        At most one block is read ahead; a failed read surfaces when its
        block is written.
        """
        ahead = self._ahead.pop(index, None)
        block = ahead.result() if ahead is not None else self.source.read_rows(*self._bounds(index))
        nxt = index + 1
        if nxt * self.batch_size < self.source.shape[0]:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(1, thread_name_prefix="cytodask-read-ahead")
            self._ahead = {nxt: self._pool.submit(self.source.read_rows, *self._bounds(nxt))}
        return block

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.update(_pool=None, _ahead={})  # threads and futures never travel
        return state

    def finalize(self, ctx: StageContext) -> dict[str, Any]:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool, self._ahead = None, {}
        root = zarr.open_group(str(ctx.path), mode="r+")
        nnz = int(root["X"]["indptr"][-1])
        info = dict(root.attrs[ATTR])
        info["complete"] = True
        info.pop("failed", None)
        info["nnz"] = nnz
        n_blocks = math.ceil(self.source.shape[0] / self.batch_size)
        records = (ctx.state.block_record(i, ctx.fingerprint) or {} for i in range(n_blocks))
        info["non_integer_values"] = any(r.get("non_integer", False) for r in records)
        root.attrs[ATTR] = info
        n_obs, n_vars = self.source.shape
        return {"n_obs": n_obs, "n_vars": n_vars, "nnz": nnz, "batch_size": self.batch_size}


def _written(arr: Any, region: tuple[slice, ...], fsync: bool) -> list[Path]:
    """The chunk files a write of ``region`` touched (made durable first when ``fsync``)."""
    return fsync_zarr_region(arr, region) if fsync else region_files(arr, region)


@renamed_kwargs(block_cells="batch_size")
def convert(
    source: DataSource,
    store: str | os.PathLike[str],
    *,
    batch_size: int = 10_000,
    counts: str = "warn",
    events: EventBus | None = None,
    fsync: bool = True,
    full_hash: bool = False,
) -> StageReport:
    """Convert ``source`` into the atlas store at ``store`` (resumable, idempotent).

    ``counts`` is as in :class:`ConvertStage` (``"warn"``, ``"strict"`` or ``"off"``).
    ``full_hash`` fingerprints the input by its full content (default: size, times and samples;
    see :func:`~cytodask.core.fingerprint.file_fingerprint`).

    A conversion stopped by bad input data (a ``ValueError``: NaN, negative or non-integer
    counts) is recorded in the store, whose readers then say the input must be fixed.

    Completion records live beside the store, in the hidden directory
    ``.STORE.cytodask/`` (outside the Zarr hierarchy). Re-running on an unchanged source does nothing; a
    changed source or ``batch_size`` rewrites the store.
    """
    store = Path(store)
    meta = store.parent / f".{store.name}.cytodask"
    check_output_store(store, source, meta)
    for d, prefix in ((store.parent, f"{store.name}."), (meta, ""), (meta / "blocks", "")):
        sweep_temporaries(d, prefix=prefix)  # of a killed conversion
    stage = ConvertStage("convert", source, batch_size=batch_size, counts=counts)

    class _SingleDir(ResultStore):
        def stage(self, name: str) -> StageState:
            return StageState(meta, store, fsync=fsync)

    rs = _SingleDir(store.parent, fsync=fsync)
    try:
        (report,) = run_stages([stage], rs, Config(cluster="none"), events=events, full_hash=full_hash)
    except ValueError as e:
        _mark_failed(store, str(e))
        raise
    return report


def _mark_failed(store: Path, reason: str) -> None:
    """Record in an atlas store that its conversion stopped on bad input (see :func:`open_atlas`)."""
    if not (store / "zarr.json").exists():
        return
    root = zarr.open_group(str(store), mode="r+")
    info = dict(root.attrs.get(ATTR, {}))
    if info:
        root.attrs[ATTR] = {**info, "failed": reason.splitlines()[0] if reason else "bad input data"}


def check_output_store(store: Path, source: DataSource, meta: Path) -> None:
    """Refuse a ``store`` path that would overwrite the input or a directory cytodask did not create.

    Called before anything is written: the output must not be, contain or lie
    inside an input file or directory, must be creatable, and an existing
    non-empty directory must be an atlas store (its ``zarr.json`` carries the
    cytodask layout) or one whose conversion started here (``meta`` holds its
    manifest and it holds only AnnData's entries).
    """
    inputs = list(source.fingerprint_paths().values())
    path = getattr(source, "path", None)
    if isinstance(path, Path):
        inputs.append(path)
    refuse_overlap(store, inputs, what="atlas store")
    check_creatable(store, what="atlas store", flag="STORE")
    refuse_foreign(store, owned=_is_own_store(store, meta), what="atlas store", flag="STORE")


def _is_own_store(store: Path, meta: Path) -> bool:
    if not store.is_dir():
        return False
    attrs = (read_json(store / "zarr.json") or {}).get("attributes") or {}
    if ATTR in attrs:
        return True
    return (meta / "manifest.json").exists() and all(p.name in _STORE_ENTRIES for p in store.iterdir())
