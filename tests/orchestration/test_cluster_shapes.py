"""One result whatever the cluster (issue 22.3): thread and process workers, thread counts, resumes across them.

A run resumed under another cluster shape mixes blocks from both, so every block must be
bit-identical whoever computes it. Each shape sets the BLAS thread count of its environment:
without cytodask.core.cluster's limits, thread workers compute with the client's BLAS threads,
process workers with Dask's nanny default (one) unless the environment says otherwise — and
OpenBLAS's ``T @ y`` of the activity ridge differs in the last bit between one and two threads.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest

from tests.e2e import cytodask, popen, write_spec
from tests.orchestration.test_resume import STAGES, _stage_records, arrays, done_counts, exports, last_run, n_blocks

pytestmark = pytest.mark.slow

SHAPES = {  # processes, n_workers, threads_per_worker, BLAS threads in the environment
    "threads": (False, 1, 2, 2),
    "processes": (True, 2, 1, 1),
    "processes-blas2": (True, 1, 2, 2),  # a shell that sets OPENBLAS_NUM_THREADS (inherited by the workers)
}


def blas_env(shape: str) -> dict[str, str]:
    n = str(SHAPES[shape][3])
    return {"OPENBLAS_NUM_THREADS": n, "OMP_NUM_THREADS": n, "MKL_NUM_THREADS": n}


def shape_spec(path: Path, atlas: Path, shape: str) -> Path:
    """The e2e spec under a cluster shape, with 4-row activity blocks (13 blocks: room to kill between them)."""
    processes, workers, threads, _ = SHAPES[shape]
    write_spec(path, atlas, processes=processes)
    text = path.read_text()
    for old, new in (("n_workers = 1", f"n_workers = {workers}"),
                     ("threads_per_worker = 2", f"threads_per_worker = {threads}"),
                     ("block_rows = 16", "block_rows = 4")):
        assert old in text, f"tests/e2e.py SPEC no longer has {old!r}"
        text = text.replace(old, new)
    path.write_text(text)
    return path


def rebuild(spec: Path, out: Path, shape: str) -> None:
    res = cytodask("rebuild", str(spec), "--output", str(out), "-q", env=blas_env(shape))
    assert res.returncode == 0, res.stderr


def assert_same(out: Path, ref: Path) -> None:
    """Every array of every stage and every export table, bit for bit."""
    got, want = arrays(out), arrays(ref)
    assert got.keys() == want.keys()
    assert [k for k in want if got[k] != want[k]] == []
    ref_ex, got_ex = exports(ref), exports(out)
    assert ref_ex.keys() == got_ex.keys() and ref_ex
    for k in ref_ex:
        pd.testing.assert_frame_equal(got_ex[k], ref_ex[k], check_exact=True)


@pytest.fixture(scope="module")
def clean_runs(tmp_path_factory: pytest.TempPathFactory, e2e_atlas: Path) -> dict[str, Path]:
    """A clean rebuild under each shape."""
    tmp = tmp_path_factory.mktemp("shapes")
    out = {}
    for shape in SHAPES:
        out[shape] = tmp / shape
        rebuild(shape_spec(tmp / f"{shape}.toml", e2e_atlas, shape), out[shape], shape)
    return out


@pytest.mark.parametrize("shape", ["processes", "processes-blas2"])
def test_thread_and_process_workers_give_identical_bits(clean_runs: dict[str, Path], shape: str):
    assert_same(clean_runs[shape], clean_runs["threads"])


def _kill_inside_activity(spec: Path, out: Path, shape: str, *, group: bool) -> list[psutil.Process]:
    """Start a rebuild, kill -9 it once the activity stage has recorded 3 blocks; the processes it had started."""
    proc = popen("rebuild", str(spec), "--output", str(out), "-q",
                 env={**blas_env(shape), "CYTODASK_FAULT_RECORD_DELAY": "0.15"})
    deadline = time.monotonic() + 120
    while _stage_records(out, "activity") < 3:
        assert proc.poll() is None, f"run ended before the kill point: {proc.communicate()}"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    started = psutil.Process(proc.pid).children(recursive=True)
    if group:
        os.killpg(proc.pid, signal.SIGKILL)
    else:  # the main process alone, as a scheduler's timeout or the OOM killer does
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    proc.stderr.close()
    return started


def _resume(spec: Path, out: Path, shape: str, ref: Path) -> None:
    """Rerun: exactly the missing blocks are computed, and the bits equal the clean run's."""
    before = done_counts(out)
    total = n_blocks(ref)
    assert before["activity"] < total["activity"], "killed too late to test resume"
    rebuild(spec, out, shape)
    fin = last_run(out)
    for name in STAGES:
        assert fin[name].get("computed", 0) == total[name] - before[name], (name, before, fin[name])
    assert_same(out, ref)


@pytest.mark.parametrize(("killed", "resumed"), [("processes", "threads"), ("threads", "processes")])
def test_resume_under_another_shape_is_bit_identical(tmp_path: Path, e2e_atlas: Path, clean_runs, killed: str,
                                                     resumed: str):
    out = tmp_path / "out"
    _kill_inside_activity(shape_spec(tmp_path / "a.toml", e2e_atlas, killed), out, killed, group=True)
    _resume(shape_spec(tmp_path / "b.toml", e2e_atlas, resumed), out, resumed, clean_runs[resumed])


def test_kill9_of_the_main_process_leaves_no_workers_and_resumes(tmp_path: Path, e2e_atlas: Path, clean_runs):
    spec = shape_spec(tmp_path / "s.toml", e2e_atlas, "processes")
    out = tmp_path / "out"
    started = _kill_inside_activity(spec, out, "processes", group=False)
    assert started, "process workers were expected below the rebuild process"
    _, alive = psutil.wait_procs(started, timeout=30)
    try:
        assert alive == [], f"orphaned worker processes after kill -9 of the main process: {alive}"
    finally:
        for p in alive:
            p.kill()
    _resume(spec, out, "processes", clean_runs["processes"])
