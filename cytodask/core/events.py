"""Progress events: callbacks, Dask pub/sub and a JSON-lines run log.

Every event is a flat dict with ``event`` (``run_started``, ``stage_started``,
``stage_skipped``, ``block_done``, ``stage_finished``, ``stage_failed``,
``run_finished``, ``run_failed``), ``run_id``, ``time`` and event fields.
Subscribers: Python callbacks (e.g. a web service forwarding to clients), the
Dask scheduler's event log under topic :data:`TOPIC` (``client.subscribe_topic``
from any other client sees them live) and the run log file.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

TOPIC = "cytodask-progress"

Event = dict[str, Any]
Callback = Callable[[Event], None]


class EventBus:
    """Fan events out to callbacks, the Dask scheduler and a run log.

    Parameters
    ----------
    log_path
        JSON-lines file appended to (one event per line), or ``None``.
    callbacks
        Called with each event, in order; a failing callback is reported once
        and dropped, never failing the run.
    """

    def __init__(self, log_path: str | os.PathLike[str] | None = None, callbacks: list[Callback] | None = None) -> None:
        self.run_id = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
        self.log_path = Path(log_path) if log_path else None
        self.callbacks: list[Callback] = list(callbacks or [])
        self.client: Any = None
        self.events: list[Event] = []

    def subscribe(self, callback: Callback) -> None:
        self.callbacks.append(callback)

    def emit(self, event: str, **fields: Any) -> Event:
        ev: Event = {"event": event, "run_id": self.run_id, "time": time.time(), **fields}
        self.events.append(ev)
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.log_path, "a") as fh:
                fh.write(json.dumps(ev, default=str) + "\n")
        if self.client is not None:
            try:
                self.client.log_event(TOPIC, ev)
            except Exception:  # scheduler gone: the run's own error path reports it
                pass
        for cb in list(self.callbacks):
            try:
                cb(ev)
            except Exception as e:  # a broken subscriber must not break the run
                self.callbacks.remove(cb)
                print(f"cytodask: progress callback {cb!r} failed and was removed: {e}")
        return ev


def read_run_log(path: str | os.PathLike[str], run_id: str | None = None) -> list[Event]:
    """Events of one run (the last one by default) from a run log."""
    path = Path(path)
    if not path.exists():
        return []
    events = []
    for line in path.read_text().splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:  # a line torn by a kill: skip it
            continue
    if not events:
        return []
    rid = run_id or events[-1]["run_id"]
    return [e for e in events if e.get("run_id") == rid]
