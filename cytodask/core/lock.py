"""An exclusive lock on an output directory, held for the whole run.

``fcntl.flock`` on ``ROOT/.lock``: the kernel drops the lock when the holder
dies (even by ``kill -9``), so a stale lock from a dead process never blocks
the next run. The file records who holds it, for the error message. On
network filesystems without ``flock`` support, point ``output_dir`` at a
filesystem that has it (NFSv4 and Lustre with ``flock`` mount option do).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path
from types import TracebackType


class OutputLockedError(RuntimeError):
    """Another live run holds the output directory."""


class OutputLock:
    """Context manager holding ``ROOT/.lock`` exclusively.

    Parameters
    ----------
    root
        Output directory.
    wait
        Wait for the other run to finish instead of failing (seconds; ``0`` = fail at once,
        ``None`` = wait forever).
    """

    def __init__(self, root: str | os.PathLike[str], *, wait: float | None = 0) -> None:
        self.path = Path(root) / ".lock"
        self.wait = wait
        self._fd: int | None = None

    def __enter__(self) -> OutputLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = None if self.wait is None else time.monotonic() + self.wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if deadline is not None and time.monotonic() >= deadline:
                    holder = self._holder()
                    os.close(fd)
                    raise OutputLockedError(
                        f"output directory {self.path.parent} is in use by another run ({holder}); "
                        "wait for it to finish, pass --wait to queue behind it, or use another --output"
                    ) from None
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        info = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%dT%H:%M:%S")}
        os.write(fd, json.dumps(info).encode())
        self._fd = fd
        return self

    def _holder(self) -> str:
        try:
            info = json.loads(self.path.read_text() or "{}")
            return f"pid {info.get('pid')} on {info.get('host')} since {info.get('since')}"
        except (OSError, json.JSONDecodeError):
            return "unknown holder"

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
