"""core.persist: lazy results written block by block into Zarr regions, made durable, then recorded;
a resumed run computes only the blocks without a record and gives identical bits."""

from __future__ import annotations

from pathlib import Path

import dask
import dask.array as da
import numpy as np
import pytest
import zarr

from cytodask.core import persist
from cytodask.core.config import Config
from cytodask.core.persist import persist_blocks, row_blocks, share
from cytodask.core.stage import StageContext
from cytodask.core.store import StageState

ROWS = (4, 4, 3, 5)  # uneven last blocks on purpose
COLS = 6


def _lazy(calls: list[int]) -> dict[str, da.Array]:
    """Two outputs sliced from one computation per block (as a family's graph gives), and a flag vector."""

    def block(i: int, n: int) -> np.ndarray:
        calls.append(i)
        rng = np.random.default_rng(i)
        return rng.normal(size=(2, n, COLS))

    parts = [da.from_delayed(dask.delayed(block)(i, n), shape=(2, n, COLS), dtype=np.float64)
             for i, n in enumerate(ROWS)]
    stacked = da.concatenate(parts, axis=1)
    return {"a": stacked[0], "b": stacked[1] * 3.0, "flag": stacked[0][:, 0] > 0}


def _context(tmp_path: Path, *, fsync: bool = False) -> tuple[StageContext, dict[str, Path]]:
    state = StageState(tmp_path / "stage", fsync=fsync)
    state.begin("fp-1234abcd", {"stage": "toy"})
    root = zarr.open_group(str(state.path), mode="w", zarr_format=3)
    n = sum(ROWS)
    root.create_array("a", shape=(n, COLS), chunks=(4, COLS), dtype=np.float64)
    layers = root.create_group("layers")
    layers.create_array("b", shape=(n, COLS), chunks=(4, COLS), dtype=np.float64)
    root.create_array("flag", shape=(n,), chunks=(4,), dtype=bool)
    targets = {"a": state.path / "a", "b": state.path / "layers" / "b", "flag": state.path / "flag"}
    return StageContext("toy", state, "fp-1234abcd", Config(cluster="none")), targets


def _read(ctx: StageContext) -> dict[str, np.ndarray]:
    root = zarr.open_group(str(ctx.path), mode="r")
    return {"a": root["a"][:], "b": root["layers"]["b"][:], "flag": root["flag"][:]}


def test_resume_computes_only_unrecorded_blocks_with_identical_bits(tmp_path: Path):
    calls: list[int] = []
    ctx, targets = _context(tmp_path / "resumed")
    # first run "killed" after blocks 0 and 2: only those are written and recorded
    dask.compute(*persist_blocks(_lazy(calls), targets, ctx, [0, 2]), scheduler="sync")
    assert sorted(calls) == [0, 2]
    assert ctx.state.done_blocks(ctx.fingerprint) == {0, 2}
    rec = ctx.state.block_record(2, ctx.fingerprint)
    assert rec is not None and rec["rows"] == [8, 11]
    # resume: the runner passes the blocks without a record; recorded ones are never recomputed
    calls.clear()
    missing = sorted(set(range(len(ROWS))) - ctx.state.done_blocks(ctx.fingerprint))
    results = dask.compute(*persist_blocks(_lazy(calls), targets, ctx, missing), scheduler="sync")
    assert sorted(calls) == [1, 3]  # one computation per block even though three outputs share it
    assert [r["block"] for r in results] == [1, 3]
    assert ctx.state.done_blocks(ctx.fingerprint) == {0, 1, 2, 3}

    # a run that was never interrupted, and the lazy result itself: the same bits
    once, once_targets = _context(tmp_path / "once")
    dask.compute(*persist_blocks(_lazy([]), once_targets, once, range(len(ROWS))), scheduler="sync")
    want = dict(zip(("a", "b", "flag"), dask.compute(*_lazy([]).values(), scheduler="sync"), strict=True))
    for got in (_read(ctx), _read(once)):
        for key, value in want.items():
            assert got[key].dtype == value.dtype and np.array_equal(got[key], value), key


def test_failed_write_leaves_no_record(tmp_path: Path):
    ctx, targets = _context(tmp_path)
    outputs = _lazy([])
    outputs["a"] = outputs["a"][:, :3]  # does not fit its target: the task fails before recording
    with pytest.raises(ValueError, match="block 1 of .* has shape"):
        dask.compute(*persist_blocks(outputs, targets, ctx, [1]), scheduler="sync")
    assert ctx.state.done_blocks(ctx.fingerprint) == set()


def test_fsync_follows_the_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    synced: list[tuple[str, tuple[slice, ...]]] = []
    monkeypatch.setattr(persist, "fsync_zarr_region", lambda arr, region: synced.append((arr.path, region)))
    for fsync in (False, True):
        ctx, targets = _context(tmp_path / str(fsync), fsync=fsync)
        dask.compute(*persist_blocks(_lazy([]), targets, ctx, [3]), scheduler="sync")
    assert len(synced) == 3 and all(region[0] == slice(11, 16) for _, region in synced)


def test_inputs_are_checked(tmp_path: Path):
    ctx, targets = _context(tmp_path)
    outputs = _lazy([])
    with pytest.raises(ValueError, match=r"no target Zarr array for outputs \['b'\]"):
        persist_blocks(outputs, {"a": targets["a"], "flag": targets["flag"]}, ctx, [0])
    with pytest.raises(IndexError, match="block 4 is outside the 4 row blocks"):
        persist_blocks(outputs, targets, ctx, [4])
    with pytest.raises(ValueError, match="chunked along its rows unlike the others"):
        row_blocks({"a": outputs["a"], "odd": outputs["b"].rechunk((8, COLS))})
    # column chunks are merged: each block is one region of whole rows
    outputs["b"] = outputs["b"].rechunk({1: 2})
    dask.compute(*persist_blocks(outputs, targets, ctx, [0]), scheduler="sync")
    assert ctx.state.done_blocks(ctx.fingerprint) == {0}


def test_share_is_one_graph_key():
    big = np.arange(10_000.0)
    op = share(big)
    tasks = [dask.delayed(np.dot)(op, np.full(big.size, float(i))) for i in range(5)]
    graph = dict(dask.base.collections_to_expr(tasks).__dask_graph__())
    holders = [k for k, v in graph.items() if _holds(v, big)]
    assert len(holders) == 1
    assert share(None) is None


def _holds(node: object, value: np.ndarray) -> bool:
    if node is value:
        return True
    inner = getattr(node, "value", None)  # dask's DataNode
    if inner is value:
        return True
    return any(_holds(a, value) for a in getattr(node, "args", ()) if not isinstance(a, str))


def test_block_records_let_a_rerun_repair_just_the_damaged_block(tmp_path: Path):
    """Blocks aligned with the chunk grid record their chunk files; one truncated chunk damages one block."""
    ctx, targets = _context(tmp_path)
    dask.compute(*persist_blocks(_lazy([]), targets, ctx, range(len(ROWS))), scheduler="sync")
    assert ctx.state.damage(ctx.fingerprint, checksums=True) == ({}, [])
    rec0 = ctx.state.block_record(0, ctx.fingerprint)
    assert sorted(rec0["chunks"]) == ["a/c/0/0", "flag/c/0", "layers/b/c/0/0"]  # rows 0-4: chunk 0 of each
    # blocks 2 (rows 8-11) and 3 (11-16) share chunk 2: they record nothing rather than a digest another overwrites
    assert "chunks" not in ctx.state.block_record(2, ctx.fingerprint)
    chunk = ctx.state.path / "layers" / "b" / "c" / "1" / "0"  # block 1 (rows 4-8)
    chunk.write_bytes(chunk.read_bytes()[:-3])
    bad, _ = ctx.state.damage(ctx.fingerprint)
    assert list(bad) == [1]
