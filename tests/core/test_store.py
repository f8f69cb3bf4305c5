from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import zarr

from cytodask.core.atomic import atomic_path, atomic_write_json, read_json
from cytodask.core.fingerprint import file_fingerprint, hash_obj
from cytodask.core.store import ResultStore, StageState, fsync_zarr_region


def test_records_count_only_with_matching_fingerprint(tmp_path: Path):
    st = StageState(tmp_path / "s.zarr")
    assert st.begin("fp1", {"stage": "s"}) is False
    st.update(n_blocks=4)
    st.record_block(0, "fp1")
    st.record_block(2, "fp1")
    assert st.done_blocks("fp1") == {0, 2}
    assert st.done_blocks("other") == set()
    assert st.status("fp1")["state"] == "partial" and st.status("fp1")["done"] == 2
    # a torn record (process killed mid-write of a non-atomic writer) never counts
    (st.blocks_dir / "00000003.json").write_text('{"block": 3, "fingerp')
    assert st.done_blocks("fp1") == {0, 2}
    # a record copied under the wrong name never counts
    (st.blocks_dir / "00000001.json").write_text((st.blocks_dir / "00000000.json").read_text())
    assert st.done_blocks("fp1") == {0, 2}
    st.complete({"x": 1})
    assert st.begin("fp1", {}) is False  # outputs missing (never written here): not trusted as complete
    st.path.mkdir()
    st.complete({"x": 1})
    assert st.begin("fp1", {}) is True
    assert st.status("fp1")["state"] == "complete"
    assert st.status("fp2")["state"] == "stale"


def test_changed_fingerprint_wipes_stage(tmp_path: Path):
    st = StageState(tmp_path / "s.zarr")
    st.begin("fp1", {})
    st.path.mkdir(parents=True)
    (st.path / "data.bin").write_bytes(b"old")
    st.record_block(0, "fp1")
    assert st.begin("fp2", {}) is False
    assert not (st.path / "data.bin").exists()
    assert st.done_blocks("fp2") == set()
    assert st.manifest()["fingerprint"] == "fp2"
    assert not [p for p in tmp_path.rglob(".*")]  # no trash left behind


def test_not_started_status(tmp_path: Path):
    assert StageState(tmp_path / "none.zarr").status()["state"] == "not started"
    rs = ResultStore(tmp_path)
    assert rs.stage_names() == []
    rs.stage("a").begin("f", {})
    assert rs.stage_names() == ["a"]


def test_atomic_write_failure_leaves_nothing(tmp_path: Path):
    target = tmp_path / "out.json"
    try:
        with atomic_path(target) as tmp:
            tmp.write_text("partial")
            raise RuntimeError("killed")
    except RuntimeError:
        pass
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []
    atomic_write_json(target, {"a": 1})
    assert read_json(target) == {"a": 1}
    assert read_json(tmp_path / "missing.json") is None


def test_atomic_directory_replace(tmp_path: Path):
    target = tmp_path / "export.zarr"
    for content in ("one", "two"):
        with atomic_path(target) as tmp:
            tmp.mkdir()
            (tmp / "f").write_text(content)
    assert (target / "f").read_text() == "two"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export.zarr"]


def test_fingerprints(tmp_path: Path):
    assert hash_obj({"a": 1, "b": [1, 2]}) == hash_obj({"b": [1, 2], "a": 1})
    assert hash_obj({"a": 1}) != hash_obj({"a": 2})
    f = tmp_path / "big.bin"
    data = np.random.default_rng(0).bytes(5 << 20)
    f.write_bytes(data)
    fp = file_fingerprint(f)
    assert file_fingerprint(f) == fp
    full = file_fingerprint(f, full=True)
    # change one byte in the middle sample: both notice
    b = bytearray(data)
    b[len(b) // 2] ^= 1
    f.write_bytes(bytes(b))
    assert file_fingerprint(f) != fp and file_fingerprint(f, full=True) != full
    # same content, new mtime: the sampled fingerprint changes, the full hash does not
    f.write_bytes(data)
    os.utime(f, ns=(1, 1))
    assert file_fingerprint(f, full=True) == full


def test_fsync_region_touches_written_chunks(tmp_path: Path):
    a = zarr.create_array(str(tmp_path / "a.zarr"), shape=(100, 10), chunks=(10, 10), dtype="f8")
    a[20:35] = 1.0
    fsync_zarr_region(a, (slice(20, 35), slice(None)))  # chunks 2 and 3 exist; must not raise
    fsync_zarr_region(a, (slice(90, 100), slice(None)))  # never written: ignored
    assert (tmp_path / "a.zarr" / "c" / "2" / "0").exists()


def test_claim_refuses_what_cytodask_did_not_create(tmp_path: Path):
    """Issue 22.1: `rebuild --output` onto a user's directory must neither write nor delete there."""
    import pytest

    user = tmp_path / "mine"
    user.mkdir()
    (user / "data.csv").write_text("a,b\n")
    with pytest.raises(ValueError, match=r"result directory .*mine is an existing directory that cytodask did not "
                                         r"create \(it holds data\.csv\); nothing was changed"):
        ResultStore(user).claim()
    assert [p.name for p in user.iterdir()] == ["data.csv"]
    with pytest.raises(ValueError, match="lies inside the input"):
        ResultStore(tmp_path / "in.h5ad" / "o").claim(inputs=[tmp_path / "in.h5ad"])
    new = ResultStore(tmp_path / "new")
    new.claim()
    assert (new.root / ".cytodask").is_file()
    new.claim()  # its own directory, again
    legacy = ResultStore(tmp_path / "legacy")  # a result directory written before the marker existed
    StageState(legacy.root / "stages" / "a").begin("fp", {})
    legacy.claim()


def test_same_size_edit_with_preserved_mtime_is_seen(tmp_path: Path):
    """Issue 22.8: an edit outside the sampled bytes, then the old mtime put back (cp -p, rsync -t)."""
    import time

    f = tmp_path / "big.bin"
    data = bytearray(np.random.default_rng(1).bytes(8 << 20))
    f.write_bytes(bytes(data))
    st = f.stat()
    fp = file_fingerprint(f)
    time.sleep(0.01)
    data[(1 << 20) + 12345] ^= 1  # between the start and middle samples
    f.write_bytes(bytes(data))
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert f.stat().st_size == st.st_size and f.stat().st_mtime_ns == st.st_mtime_ns
    assert file_fingerprint(f) != fp  # the inode change time moved


def test_sweep_removes_temporaries_of_killed_runs(tmp_path: Path):
    """Issue 22.12: a kill during export left `.activity.h5ad.<id>.tmp` in exports/ for good."""
    rs = ResultStore(tmp_path / "out")
    StageState(rs.root / "stages" / "a").begin("fp", {})
    left = [rs.root / "exports" / "export" / ".activity.h5ad.0123abcd.tmp",
            rs.root / "exports" / ".export.89abcdef.old",
            rs.root / "stages" / "a" / "blocks" / ".00000001.json.deadbeef.tmp",
            rs.root / ".spec.json.cafe0123.tmp"]
    keep = [rs.root / "exports" / "export" / "activity.h5ad", rs.root / "exports" / "export" / ".hidden.tmp",
            rs.root / "stages" / "a" / "blocks" / "00000001.json"]
    for p in left[:1] + left[2:] + keep:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("x")
    left[1].mkdir()
    (left[1] / "old.parquet").write_text("x")
    assert sorted(rs.sweep()) == sorted(left)
    assert not any(p.exists() for p in left) and all(p.exists() for p in keep)
