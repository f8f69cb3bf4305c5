"""persist_table: a one-block stage's table is written, made durable and recorded with its files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cytodask.core.persist import persist_table
from cytodask.core.store import ResultStore
from cytodask.core.tables import read_table


def _table() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"signature": [f"S{i}" for i in range(50)], "pvalue": rng.random(50),
                         "n": np.arange(50, dtype=np.int64)})


def test_table_round_trips_and_its_record_lists_the_files(tmp_path: Path):
    state = ResultStore(tmp_path).stage("t")
    state.begin("fp", {})
    assert persist_table(state, "fp", _table()) == {"block": 0}
    pd.testing.assert_frame_equal(read_table(state.path), _table())
    rec = state.block_record(0, "fp")
    assert rec["rows"] == 50
    files = {p.relative_to(state.path).as_posix() for p in state.path.rglob("*") if p.is_file()}
    assert set(rec["chunks"]) == files and files  # every file of the group, with size and checksum
    assert state.damage("fp", checksums=True) == ({}, [])


def test_a_damaged_table_is_seen_by_size_and_by_checksum(tmp_path: Path):
    state = ResultStore(tmp_path, fsync=False).stage("t")
    state.begin("fp", {})
    persist_table(state, "fp", _table())
    rec = state.block_record(0, "fp")
    biggest = max(rec["chunks"], key=lambda k: rec["chunks"][k][0])
    path = state.path / biggest
    data = path.read_bytes()
    path.write_bytes(data[:-1])  # truncated: the cheap size check sees it
    assert 0 in state.damage("fp")[0]
    path.write_bytes(bytes([data[0] ^ 0xFF]) + data[1:])  # same size, other bytes: only the checksum sees it
    assert state.damage("fp")[0] == {} and 0 in state.damage("fp", checksums=True)[0]


def test_fsync_tree_syncs_every_file_then_the_directories(tmp_path: Path, monkeypatch):
    from cytodask.core import atomic

    (tmp_path / "d" / "e").mkdir(parents=True)
    for rel in ("a", "d/b", "d/e/c"):
        (tmp_path / rel).write_text(rel)
    synced: list[Path] = []
    monkeypatch.setattr(atomic, "fsync_path", lambda p: synced.append(Path(p)))
    files = atomic.fsync_tree(tmp_path)
    assert files == sorted([tmp_path / "a", tmp_path / "d" / "b", tmp_path / "d" / "e" / "c"])
    assert synced[:3] == files and synced[3:] == [tmp_path / "d" / "e", tmp_path / "d", tmp_path]
