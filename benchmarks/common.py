"""What every benchmark row records, the same way on both sides (issue 17, items 4 and 8).

- :func:`best`: the best of ``repeats`` timed calls (each side gets the same
  warm-up and the same repeats; the caller does the warm-up);
- :class:`PeakRSS`: the peak resident memory of this process during a block,
  sampled every 5 ms by a thread (the process's ``ru_maxrss`` is a lifetime
  maximum and cannot tell one call from the previous);
- :func:`blas`: the BLAS/OpenMP libraries and their thread counts, from
  ``threadpoolctl``, as one string;
- :func:`threads`: run a block with every BLAS/OpenMP pool and Numba limited
  to ``n`` threads, so a "1 thread" label is true of the whole call;
- :func:`row`: one result row with the fields RESULTS.md shows.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psutil


def best(fn: Callable[[], Any], repeats: int) -> tuple[float, Any, float]:
    """``(seconds, result, peak GiB)``: the fastest of ``repeats`` calls of ``fn`` and the peak RSS over them."""
    fastest, out = float("inf"), None
    with PeakRSS() as peak:
        for _ in range(repeats):
            t = time.perf_counter()
            out = fn()
            fastest = min(fastest, time.perf_counter() - t)
    return fastest, out, peak.gib


class PeakRSS:
    """``with PeakRSS() as peak: ...`` then ``peak.gib``: the highest RSS seen inside the block (GiB)."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._proc = psutil.Process()

    def _watch(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRSS:
        self.peak = self._proc.memory_info().rss
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)

    @property
    def gib(self) -> float:
        return self.peak / 2**30


def blas() -> str:
    """``"openblas 0.3.27 (pthreads) 2 threads; openmp 1 thread"``: the pools this process has loaded."""
    from threadpoolctl import threadpool_info

    parts = [f"{p.get('internal_api', p['user_api'])} {p.get('version') or ''} {p['num_threads']} threads".replace("  ", " ")
             for p in threadpool_info()]
    return "; ".join(parts) or "no BLAS/OpenMP pool loaded"


#: ``blas()`` read inside ``threads(n)``, by ``n``: what a row with ``threads=n`` reports as its pools.
LIMITED: dict[int, str] = {}


@contextlib.contextmanager
def threads(n: int | None) -> Iterator[None]:
    """Limit BLAS/OpenMP pools (threadpoolctl) and Numba to ``n`` threads inside the block (None: no limit)."""
    if n is None:
        yield
        return
    import scipy.linalg  # noqa: F401  (load SciPy's own OpenBLAS now: threadpoolctl limits the pools loaded at entry)
    from threadpoolctl import threadpool_limits

    try:
        import numba
    except ImportError:  # pragma: no cover - numba is a dependency
        numba = None
    before = numba.get_num_threads() if numba else None
    with threadpool_limits(limits=n):
        if numba:
            numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
        LIMITED[n] = blas()  # the pools as the timed code saw them (row() reports these for threads=n)
        try:
            yield
        finally:
            if numba:
                numba.set_num_threads(before)


def cores() -> int:
    return os.cpu_count() or 1


def row(pipeline: str, task: str, ours: float | None, reference: str, ref_s: float | None, *,
        key: str, threads: int | str, reference_threads: int | str, backend: str = "numpy",
        like_for_like: bool, **details: Any) -> dict[str, Any]:
    """One benchmark row. ``key`` names the measurement across runs (the README cites rows by key).

    ``like_for_like`` is False when the two sides differ in method or threads;
    the row's ``label`` then says how.
    """
    # pools during the timed calls when they ran under threads(n); else as loaded in this process
    details.setdefault("blas", LIMITED.get(threads) if isinstance(threads, int) and threads in LIMITED else blas())
    details.setdefault("reference_blas", "same process")
    return {"key": key, "pipeline": pipeline, "task": f"{task} [{backend}]", "cytodask_s": ours,
            "reference": reference, "reference_s": ref_s,
            "ratio": (ref_s / ours) if (ours and ref_s) else None,
            "threads": threads, "reference_threads": reference_threads, "backend": backend,
            "like_for_like": like_for_like, "date": dt.date.today().isoformat(), **details}
