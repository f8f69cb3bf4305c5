"""Peak resident memory of one stage, in this process and on each Dask worker (issue 14.5).

The process's ``ru_maxrss`` is the peak of its whole life so far: reported after
every stage, it showed the same number for every stage after the largest one.
:class:`StageMemory` measures the stage's own peak without touching the
process's high-water mark (benchmarks read ``VmHWM``; resetting it through
``/proc/self/clear_refs`` would change what they measure):

- this process: the resident size sampled by a thread every ``interval`` seconds
  from the stage's start to its end; when ``ru_maxrss`` rose during the stage the
  process reached its lifetime peak inside the stage, and that exact value is used;
- each worker (a distributed client): the same rule with the worker's own
  ``ru_maxrss`` and its system monitor's memory samples taken during the stage
  (``distributed.admin.system-monitor.interval``, 500 ms by default), plus its
  resident size at the end; the largest over the workers is reported.

A sampled peak can miss a spike shorter than the sampling interval; it never
reports more than the stage used.
"""

from __future__ import annotations

import resource
import threading
import time
from typing import Any

import psutil

MB = 2**20


def max_rss_mb() -> float:
    """Peak resident memory of this process over its life so far, in MiB (Linux: ``ru_maxrss`` in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class StageMemory:
    """Measure the peak resident memory of the code run between :meth:`start` and :meth:`stop`.

    Parameters
    ----------
    client
        A ``distributed.Client`` whose workers run the stage's tasks (``None``: no workers).
    interval
        Seconds between two samples of this process's resident size.
    """

    def __init__(self, client: Any = None, interval: float = 0.02) -> None:
        if not interval > 0:
            raise ValueError(f"interval must be a positive number of seconds, got {interval!r}")
        self.client = client
        self.interval = interval
        self._proc = psutil.Process()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._peak = 0
        self._t0 = 0.0
        self._max0 = 0.0
        self._workers0: dict[str, float] = {}

    def start(self) -> StageMemory:
        self._t0 = time.time()
        self._max0 = max_rss_mb()
        self._peak = self._rss()
        self._workers0 = _on_workers(self.client, _worker_max_rss) or {}
        self._thread = threading.Thread(target=self._sample, name="cytodask-stage-memory", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> tuple[float, float | None]:
        """``(peak MiB of this process during the stage, largest worker peak MiB or None)``."""
        self._done.set()
        if self._thread is not None:
            self._thread.join()
        self._peak = max(self._peak, self._rss())
        now = max_rss_mb()
        mine = now if now > self._max0 else self._peak / MB
        ends = _on_workers(self.client, _worker_peak_since, self._t0)
        if not ends:
            return mine, None
        peaks = []
        for addr, (lifetime, window) in ends.items():
            start = self._workers0.get(addr)
            peaks.append(lifetime if start is not None and lifetime > start else window)
        return mine, max(peaks)

    def _rss(self) -> int:
        try:
            return int(self._proc.memory_info().rss)
        except psutil.Error:  # pragma: no cover - the process reading itself
            return 0

    def _sample(self) -> None:
        while not self._done.wait(self.interval):
            self._peak = max(self._peak, self._rss())


def _on_workers(client: Any, fn: Any, *args: Any) -> dict[str, Any] | None:
    """``client.run(fn, *args)`` (result by worker address), or ``None`` without a client or on failure."""
    if client is None:
        return None
    try:
        return client.run(fn, *args)
    except Exception:  # memory figures never fail a run
        return None


def _worker_max_rss() -> float:
    return max_rss_mb()


def _worker_peak_since(t0: float, dask_worker: Any = None) -> tuple[float, float]:
    """On a worker: ``(lifetime peak MiB, peak MiB of the monitor's samples since t0 and now)``."""
    rss = [psutil.Process().memory_info().rss]
    monitor = getattr(dask_worker, "monitor", None)
    if monitor is not None:
        times, memory = monitor.quantities.get("time", ()), monitor.quantities.get("memory", ())
        rss += [m for t, m in zip(list(times), list(memory), strict=False) if t >= t0]
    return max_rss_mb(), max(rss) / MB
