"""Kill -9 a real rebuild at several points; the next run must resume to bit-identical outputs."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import zarr

from cytodask.core.events import read_run_log
from cytodask.core.store import ResultStore
from tests.e2e import cytodask, popen, write_spec

STAGES = ["convert", "pseudobulk", "activity", "disease_vs_healthy", "donor_correlation", "export"]
pytestmark = pytest.mark.slow


def arrays(root: Path) -> dict[str, bytes]:
    """Every array of every stage's Zarr output, as raw bytes (bit-identity check)."""
    out: dict[str, bytes] = {}
    store = ResultStore(root)
    for name in STAGES:
        g = zarr.open_group(str(store.stage_path(name)), mode="r")
        for path, arr in g.arrays():
            out[f"{name}/{path}"] = np.ascontiguousarray(arr[...]).tobytes()
        for gpath, sub in g.groups():
            for apath, arr in sub.arrays():
                out[f"{name}/{gpath}/{apath}"] = np.ascontiguousarray(arr[...]).tobytes()
    return out


def exports(root: Path) -> dict[str, pd.DataFrame]:
    d = root / "exports" / "export"
    return {p.name: pd.read_parquet(p) for p in sorted(d.glob("*.parquet"))}


def done_counts(root: Path) -> dict[str, int]:
    store = ResultStore(root)
    out = {}
    for name in STAGES:
        st = store.stage(name)
        m = st.manifest()
        out[name] = len(st.done_blocks(m["fingerprint"])) if m else 0
    return out


def n_blocks(root: Path) -> dict[str, int]:
    store = ResultStore(root)
    return {n: int(store.stage(n).manifest()["n_blocks"]) for n in STAGES}


def last_run(root: Path) -> dict[str, dict]:
    ev = read_run_log(root / "run-log.jsonl")
    fin = {e["stage"]: e for e in ev if e["event"] in ("stage_finished", "stage_skipped")}
    return fin


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, e2e_atlas: Path) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("ref")
    spec = write_spec(tmp / "spec.toml", e2e_atlas)
    res = cytodask("rebuild", str(spec), "--output", str(tmp / "out"), "-q")
    assert res.returncode == 0, res.stderr
    return spec, tmp / "out"


def _stage_records(root: Path, stage: str) -> int:
    d = root / "stages" / stage / "blocks"
    return len(list(d.glob("*.json"))) if d.is_dir() else 0


def _manifest_state(root: Path, stage: str) -> str | None:
    try:
        return json.loads((root / "stages" / stage / "manifest.json").read_text()).get("state")
    except (FileNotFoundError, json.JSONDecodeError):
        return None


KILL_POINTS: dict[str, Callable[[Path], bool]] = {
    "early-inside-convert": lambda r: _stage_records(r, "convert") >= 2,
    "inside-pseudobulk": lambda r: _stage_records(r, "pseudobulk") >= 5,
    "between-stages": lambda r: _manifest_state(r, "pseudobulk") == "complete",
}


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_kill9_then_resume_is_bit_identical(tmp_path: Path, e2e_atlas: Path, reference, point: str):
    _, ref_out = reference
    spec = write_spec(tmp_path / "spec.toml", e2e_atlas)
    out = tmp_path / "out"
    proc = popen("rebuild", str(spec), "--output", str(out), "-q",
                 env={"CYTODASK_FAULT_RECORD_DELAY": "0.15"})
    deadline = time.monotonic() + 120
    while not KILL_POINTS[point](out):
        assert proc.poll() is None, f"run ended before the kill point: {proc.communicate()}"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = done_counts(out)
    assert sum(before.values()) < sum(n_blocks(ref_out).values()), "killed too late to test resume"

    res = cytodask("rebuild", str(spec), "--output", str(out), "-q")
    assert res.returncode == 0, res.stderr
    total = n_blocks(ref_out)
    fin = last_run(out)
    for name in STAGES:  # the second run computed exactly the missing blocks
        computed = fin[name].get("computed", 0)
        assert computed == total[name] - before[name], (name, before, fin[name])
    assert arrays(out) == arrays(ref_out)
    ref_ex, got_ex = exports(ref_out), exports(out)
    assert ref_ex.keys() == got_ex.keys() and ref_ex
    for k in ref_ex:
        pd.testing.assert_frame_equal(got_ex[k], ref_ex[k], check_exact=True)


def test_rerun_is_noop_and_parameter_change_recomputes_dependants(tmp_path: Path, e2e_atlas: Path, reference):
    spec, ref = reference
    ref_out = tmp_path / "copy"
    shutil.copytree(ref, ref_out)
    res = cytodask("rebuild", str(spec), "--output", str(ref_out), "-q")
    assert res.returncode == 0, res.stderr
    fin = last_run(ref_out)
    assert all(fin[n]["event"] == "stage_skipped" for n in STAGES)
    assert "0 blocks computed" in res.stdout

    spec2 = write_spec(tmp_path / "spec2.toml", e2e_atlas, lam=1e5)
    res = cytodask("rebuild", str(spec2), "--output", str(ref_out), "-q")
    assert res.returncode == 0, res.stderr
    fin = last_run(ref_out)
    assert {n: fin[n]["event"] for n in STAGES} == {
        "convert": "stage_skipped", "pseudobulk": "stage_skipped", "activity": "stage_finished",
        "disease_vs_healthy": "stage_finished", "donor_correlation": "stage_finished", "export": "stage_finished"}
    status = cytodask("status", str(ref_out), "--spec", str(spec))
    assert "activity            stale" in status.stdout and "pseudobulk          complete" in status.stdout


@pytest.mark.parametrize("damage", ["truncate", "delete", "flip"])
def test_damaged_chunk_is_found_and_recomputed(tmp_path: Path, reference, damage: str):
    """Issue 22.4: a truncated or deleted chunk of stages/pseudobulk/data.zarr is recomputed, with its dependants."""
    spec, ref = reference
    out = tmp_path / "copy"
    shutil.copytree(ref, out)
    chunks = sorted(p for p in (out / "stages" / "pseudobulk" / "data.zarr" / "X").rglob("*")
                    if p.is_file() and p.name != "zarr.json")
    victim = chunks[0]
    if damage == "truncate":
        victim.write_bytes(victim.read_bytes()[: len(victim.read_bytes()) // 2])
    elif damage == "delete":
        victim.unlink()
    else:  # same size, other bytes: only checksums (verify, rebuild --verify) see it
        raw = bytearray(victim.read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        victim.write_bytes(bytes(raw))
    res = cytodask("verify", str(out))
    assert res.returncode == 1 and f"pseudobulk: {victim}" in res.stdout, res.stdout
    assert "run the rebuild again" in res.stderr
    if damage != "flip":
        status = cytodask("status", str(out))
        assert "pseudobulk          damaged" in status.stdout and "the next rebuild recomputes it" in status.stdout
    res = cytodask("rebuild", str(spec), "--output", str(out), "-q", *(["--verify"] if damage == "flip" else []))
    assert res.returncode == 0, res.stderr
    assert f"pseudobulk: {victim}" in res.stderr and "recomputing the stage and the stages that read it" in res.stderr
    fin = last_run(out)
    assert fin["convert"]["event"] == "stage_skipped"
    assert all(fin[n]["event"] == "stage_finished" for n in STAGES[1:])
    assert arrays(out) == arrays(ref)
    assert cytodask("verify", str(out)).returncode == 0


def test_deleted_manifest_and_stale_temporaries(tmp_path: Path, reference):
    """Issue 22.12: a deleted stage manifest leaves no dependant 'complete'; a kill's .tmp files are swept."""
    spec, ref = reference
    out = tmp_path / "copy"
    shutil.copytree(ref, out)
    (out / "stages" / "pseudobulk" / "manifest.json").unlink()
    stale = out / "exports" / ".activity.h5ad.0123abcd.tmp"
    stale.write_bytes(b"half an export")
    status = cytodask("status", str(out))
    lines = dict(line.split(None, 1) for line in status.stdout.splitlines())
    assert lines["pseudobulk"] == "not started" and lines["convert"].startswith("complete")
    assert all(lines[n].startswith("stale") for n in STAGES[2:]), status.stdout
    res = cytodask("rebuild", str(spec), "--output", str(out), "-q")
    assert res.returncode == 0, res.stderr
    assert not stale.exists()
    assert arrays(out) == arrays(ref)
    assert all("complete" in line for line in cytodask("status", str(out)).stdout.splitlines())


def test_damaged_activity_chunk_recomputes_only_its_block(tmp_path: Path, reference):
    """Activity blocks record their chunk files: one truncated chunk recomputes one block (and the dependants)."""
    spec, ref = reference
    out = tmp_path / "copy"
    shutil.copytree(ref, out)
    n = n_blocks(out)["activity"]
    assert n > 1
    victim = out / "stages" / "activity" / "data.zarr" / "X" / "c" / "1" / "0"  # block 1's rows of X
    victim.write_bytes(victim.read_bytes()[:-5])
    res = cytodask("rebuild", str(spec), "--output", str(out), "-q")
    assert res.returncode == 0, res.stderr
    assert str(victim) in res.stderr
    fin = last_run(out)
    assert fin["pseudobulk"]["event"] == "stage_skipped"
    assert fin["activity"]["computed"] == 1 and fin["activity"]["skipped"] == n - 1
    assert arrays(out) == arrays(ref)
