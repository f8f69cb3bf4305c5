"""Issue 14.5: every stage row of the run report showed the same "peak RSS" (the process's maximum so far).

A stage that allocates a large array and a stage after it that allocates nothing: the first reports
at least the array, the second reports far less, and the process's own high-water mark (which
benchmarks read) is left as it was. Once in this process, once on a Dask worker.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import dask
import numpy as np
import pytest

from cytodask import Config
from cytodask.core.events import EventBus
from cytodask.core.runner import peak_rss_mb, run_stages
from cytodask.core.stage import Stage, StageContext
from cytodask.core.stage_memory import StageMemory, max_rss_mb
from cytodask.core.store import ResultStore

BIG_MB = 400  # far above the noise of an idle interpreter's resident size (a few MB between samples)


def _hold(mb: int, seconds: float) -> float:
    """Allocate and touch ``mb`` MiB, keep them ``seconds`` (several samples), free them."""
    if mb == 0:
        return 0.0
    block = np.ones(mb * 2**20 // 8)
    time.sleep(seconds)
    total = float(block[::4096].sum())
    del block
    return total


def _vm_hwm_mb() -> float:
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM")) / 1024


class Holding(Stage):
    """One block that holds ``mb`` MiB for a while: on the client, or as a Dask task."""

    def __init__(self, name: str, *, inputs: tuple[str, ...] = (), mb: int, where: str) -> None:
        super().__init__(name, inputs=inputs)
        self.mb, self.where = mb, where

    def params(self) -> dict[str, Any]:
        return {"mb": self.mb, "where": self.where}

    def plan(self, ctx: StageContext) -> int:
        ctx.path.mkdir(parents=True, exist_ok=True)
        return 1

    def run_block(self, ctx: StageContext, index: int) -> dict[str, Any]:
        _hold(self.mb, 0.4)
        return ctx.record(index)

    def block_tasks(self, ctx: StageContext, blocks: list[int]) -> list[Any]:
        return [dask.delayed(_task, pure=False)(ctx, self.mb) for _ in blocks]


def _task(ctx: StageContext, mb: int) -> dict[str, Any]:
    _hold(mb, 1.2)  # the worker's system monitor samples every 100 ms here (below)
    return ctx.record(0)


def _finished(events: EventBus) -> dict[str, dict[str, Any]]:
    return {e["stage"]: e for e in events.events if e["event"] == "stage_finished"}


def test_each_stage_reports_its_own_peak_in_this_process(tmp_path: Path):
    first = Holding("big", mb=BIG_MB, where="client")
    second = Holding("small", inputs=("big",), mb=0, where="client")
    events = EventBus()
    before = _vm_hwm_mb()
    run_stages([first, second], ResultStore(tmp_path), Config(cluster="none"), events=events)
    rows = _finished(events)
    big, small = rows["big"]["peak_rss_mb"], rows["small"]["peak_rss_mb"]
    assert big >= BIG_MB, rows
    assert small < big - 0.75 * BIG_MB, rows  # the old report: small == big (the process maximum)
    assert rows["big"]["worker_peak_rss_mb"] is None  # no workers: nothing claimed for them
    # the process's high-water mark is untouched (benchmarks read VmHWM and ru_maxrss)
    assert _vm_hwm_mb() >= max(before, big) - 1 and peak_rss_mb() >= big - 1


def test_each_stage_reports_its_own_peak_on_the_workers(tmp_path: Path):
    from distributed import Client

    with dask.config.set({"distributed.admin.system-monitor.interval": "100ms"}), \
            Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=":0") as client:
        events = EventBus()
        stages = [Holding("big", mb=BIG_MB, where="cluster"), Holding("small", inputs=("big",), mb=0,
                                                                       where="cluster")]
        run_stages(stages, ResultStore(tmp_path), Config(cluster="none"), client=client, events=events)
    rows = _finished(events)
    big, small = rows["big"]["worker_peak_rss_mb"], rows["small"]["worker_peak_rss_mb"]
    assert big >= BIG_MB and small < big - 0.75 * BIG_MB, rows


def test_window_without_a_new_process_record_is_sampled():
    """Inside a window the process may stay below its lifetime peak: the samples give the window's own."""
    _hold(BIG_MB + 100, 0.05)  # a lifetime peak above anything the windows below reach
    lifetime = max_rss_mb()
    mem = StageMemory(interval=0.01).start()
    _hold(BIG_MB // 2, 0.3)
    peak, workers = mem.stop()
    assert workers is None
    assert BIG_MB // 2 <= peak < lifetime, (peak, lifetime)
    quiet, _ = StageMemory(interval=0.01).start().stop()
    assert quiet < peak - 0.75 * (BIG_MB // 2)


@pytest.mark.parametrize("interval", [0.0, -1.0])
def test_interval_must_be_positive(interval: float):
    with pytest.raises(ValueError, match=r"interval must be a positive number of seconds"):
        StageMemory(interval=interval)
