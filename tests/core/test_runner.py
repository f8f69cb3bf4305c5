"""The runner's resume logic on a small real stage chain (in-process)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dask
import numpy as np
import pytest
import zarr

from cytodask import Config
from cytodask.core.events import EventBus, read_run_log
from cytodask.core.integrity import region_files
from cytodask.core.runner import StageFailed, run_stages, stage_fingerprints
from cytodask.core.stage import Stage, StageContext
from cytodask.core.store import ResultStore, StageState

CALLS: list[tuple[str, int]] = []


def _square(state: StageState, i: int, fp: str, scale: float, src: str | None, fail_at: int | None) -> dict[str, Any]:
    path = str(state.path)
    if fail_at is not None and i == fail_at:
        raise RuntimeError(f"boom at {i}")
    base = zarr.open_array(src, mode="r")[i * 10 : (i + 1) * 10] if src else np.arange(i * 10, (i + 1) * 10.0)
    out = zarr.open_array(path + "/out", mode="r+")
    out[i * 10 : (i + 1) * 10] = base * scale
    CALLS.append((state.meta_dir.name, i))
    state.record_block(i, fp, files=region_files(out, (slice(i * 10, (i + 1) * 10),)))
    return {"block": i}


class Square(Stage):
    version = "1"

    def __init__(self, name: str, *, inputs: tuple[str, ...] = (), scale: float = 2.0, fail_at: int | None = None):
        super().__init__(name, inputs=inputs)
        self.scale, self.fail_at = scale, fail_at

    def params(self) -> dict[str, Any]:
        return {"scale": self.scale}

    def plan(self, ctx: StageContext) -> int:
        g = zarr.open_group(str(ctx.path), mode="a")
        if "out" not in g:
            g.create_array("out", shape=(50,), chunks=(10,), dtype="f8")
        return 5

    def block_tasks(self, ctx: StageContext, blocks: list[int]) -> list[Any]:
        src = str(ctx.input(self.inputs[0]) / "out") if self.inputs else None
        return [dask.delayed(_square)(ctx.state, i, ctx.fingerprint, self.scale, src, self.fail_at) for i in blocks]


def _out(store: ResultStore, name: str) -> np.ndarray:
    return zarr.open_array(str(store.stage_path(name) / "out"), mode="r")[:]


def test_full_run_then_noop(tmp_path: Path):
    CALLS.clear()
    store = ResultStore(tmp_path)
    stages = [Square("a"), Square("b", inputs=("a",), scale=3.0)]
    reports = run_stages(stages, store, Config(cluster="none"), events=EventBus(store.log_path))
    assert [r.computed for r in reports] == [5, 5]
    np.testing.assert_array_equal(_out(store, "b"), np.arange(50.0) * 6)
    CALLS.clear()
    reports = run_stages(stages, store, Config(cluster="none"), events=EventBus(store.log_path))
    assert [r.state for r in reports] == ["skipped", "skipped"] and CALLS == []
    events = read_run_log(store.log_path)
    assert [e["event"] for e in events] == ["run_started", "stage_skipped", "stage_skipped", "run_finished"]


def test_failure_resumes_only_missing_blocks(tmp_path: Path):
    CALLS.clear()
    store = ResultStore(tmp_path)
    with pytest.raises(StageFailed, match="stage 'a' failed in block 3"):
        run_stages([Square("a", fail_at=3)], store, Config(cluster="none"))
    assert store.stage("a").status()["state"] == "partial"
    assert store.stage("a").done_blocks(store.stage("a").manifest()["fingerprint"]) == {0, 1, 2}
    CALLS.clear()
    (rep,) = run_stages([Square("a")], store, Config(cluster="none"))
    assert rep.computed == 2 and rep.skipped == 3
    assert sorted(CALLS) == [("a", 3), ("a", 4)]
    np.testing.assert_array_equal(_out(store, "a"), np.arange(50.0) * 2)


def test_changed_parameter_recomputes_stage_and_dependants_only(tmp_path: Path):
    store = ResultStore(tmp_path)
    cfg = Config(cluster="none")
    run_stages([Square("a"), Square("b", inputs=("a",)), Square("c")], store, cfg)
    CALLS.clear()
    reports = run_stages([Square("a", scale=5.0), Square("b", inputs=("a",)), Square("c")], store, cfg)
    assert {r.name: r.state for r in reports} == {"a": "computed", "b": "computed", "c": "skipped"}
    assert sorted({n for n, _ in CALLS}) == ["a", "b"]
    np.testing.assert_array_equal(_out(store, "b"), np.arange(50.0) * 10)


def test_dependency_errors():
    with pytest.raises(ValueError, match="must be defined before it"):
        stage_fingerprints([Square("b", inputs=("a",)), Square("a")])
    with pytest.raises(ValueError, match="repeated"):
        stage_fingerprints([Square("a"), Square("a")])
    # issue 22.10: a cycle is named as one, not as an ordering problem
    with pytest.raises(ValueError, match=r"in a cycle: 'a' reads 'c' reads 'b' reads 'a'.*remove one of these"):
        stage_fingerprints([Square("a", inputs=("c",)), Square("b", inputs=("a",)), Square("c", inputs=("b",))])
    with pytest.raises(ValueError, match=r"reads \['x'\], which is no stage of this run"):
        stage_fingerprints([Square("a", inputs=("x",))])


def test_runs_on_a_local_cluster(tmp_path: Path):
    from cytodask.core.cluster import cluster

    store = ResultStore(tmp_path)
    cfg = Config(cluster="local", n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0")
    seen: list[str] = []
    with cluster(cfg, echo=seen.append) as client:
        ev = EventBus(store.log_path, callbacks=[lambda e: seen.append(e["event"])])
        ev.client = client
        reports = run_stages([Square("a"), Square("b", inputs=("a",))], store, cfg, client=client, events=ev)
        published = client.get_events("cytodask-progress")
    assert [r.computed for r in reports] == [5, 5]
    assert "dashboard: http" in seen[0]
    assert seen.count("block_done") == 10
    assert sum(1 for _, e in published if e["event"] == "block_done") == 10
    np.testing.assert_array_equal(_out(store, "b"), np.arange(50.0) * 4)


def test_damaged_chunk_recomputes_its_block_and_dependants(tmp_path: Path):
    """Issue 22.4: a truncated, deleted or altered chunk of a finished stage is never trusted."""
    store = ResultStore(tmp_path)
    stages = [Square("a"), Square("b", inputs=("a",), scale=3.0)]
    run_stages(stages, store, Config(cluster="none"))
    ref = _out(store, "b").copy()
    chunk = store.stage_path("a") / "out" / "c" / "2"
    fp = store.stage("a").manifest()["fingerprint"]

    def rerun(**kw: Any) -> list[str]:
        CALLS.clear()
        said: list[str] = []
        run_stages(stages, store, Config(cluster="none"),
                   events=EventBus(callbacks=[lambda e: said.append(e)]), **kw)
        return [e["reason"] for e in said if e["event"] == "stage_repaired"]

    for damage in ("truncate", "delete"):
        if damage == "truncate":
            chunk.write_bytes(chunk.read_bytes()[:-3])
        else:
            chunk.unlink()
        st = store.stage("a").status(fp)
        assert st["state"] == "damaged" and "block 2" in st["problems"][0]
        said = rerun()
        assert sorted(CALLS) == [("a", 2)] + [("b", i) for i in range(5)]  # the block, then every dependant
        assert "damaged block(s) [2]" in said[0] and str(chunk) in said[0]
        assert ("bytes" in said[0]) == (damage == "truncate") and ("missing" in said[0]) == (damage == "delete")
        assert "input ['a'] was recomputed" in said[1]
        np.testing.assert_array_equal(_out(store, "b"), ref)
        assert store.stage("a").status(fp)["state"] == "complete"

    raw = bytearray(chunk.read_bytes())
    raw[-1] ^= 0xFF  # same size, other content: only checksums see it
    chunk.write_bytes(bytes(raw))
    assert rerun() == [] and CALLS == []
    said = rerun(verify=True)
    assert "checksum differs" in said[0] and sorted(CALLS) == [("a", 2)] + [("b", i) for i in range(5)]
    np.testing.assert_array_equal(_out(store, "b"), ref)


def test_deleted_record_or_metadata_is_not_complete(tmp_path: Path):
    """Issue 22.12: a deleted completion record (or an unlisted data file) no longer reads as complete."""
    store = ResultStore(tmp_path)
    stages = [Square("a")]
    run_stages(stages, store, Config(cluster="none"))
    st = store.stage("a")
    fp = st.manifest()["fingerprint"]
    (st.blocks_dir / "00000003.json").unlink()
    status = st.status(fp)
    assert status["state"] == "damaged" and status["problems"] == ["the completion record of block 3 is missing"]
    CALLS.clear()
    run_stages(stages, store, Config(cluster="none"))
    assert sorted(CALLS) == [("a", i) for i in range(5)] and st.status(fp)["state"] == "complete"
    (st.path / "out" / "zarr.json").unlink()  # listed by the stage manifest, in no block record
    assert "out/zarr.json is missing" in st.status(fp)["problems"][0]
