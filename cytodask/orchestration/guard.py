"""Refuse to start worker processes from a script without the ``__main__`` guard (issue 14.2).

Dask starts local worker processes with Python's ``spawn`` method: each new process
imports the script that started it again. A script that runs cytodask at its top level,
outside ``if __name__ == "__main__":``, therefore starts the same run again in every
worker, which fails (the output is locked by the first run, the nanny never starts)
with messages that name nothing useful. :func:`check_main_guard` finds that case
before any process starts, and inside such a re-import, and says what to do.
"""

from __future__ import annotations

import ast
import multiprocessing
import sys
import threading
from pathlib import Path
from types import FrameType

_FIX = ("put the code that runs cytodask under `if __name__ == \"__main__\":` (as in the README's Python "
        "example; every Dask program with process workers needs it), or use thread workers: "
        "Config(processes=False) (or cluster = \"none\": no cluster, in this process)")


def check_main_guard(kind: str, processes: bool) -> None:
    """Raise ``RuntimeError`` if starting a cluster of kind ``kind`` would re-run an unguarded script.

    Parameters
    ----------
    kind
        :func:`cytodask.core.cluster.cluster_kind`: only ``local`` (with ``processes``) and ``cuda``
        clusters start processes on this machine.
    processes
        ``Config.processes``.
    """
    if not (kind == "cuda" or (kind == "local" and processes)):
        return
    if getattr(multiprocessing.current_process(), "_inheriting", False):
        raise RuntimeError("cytodask was started while a new worker process was importing the script that "
                           f"started the run (no `if __name__ == \"__main__\":` guard around it): {_FIX}")
    import dask

    if dask.config.get("distributed.worker.multiprocessing-method", "spawn") == "fork":
        return  # forked workers do not import the script again
    where = unguarded_call_site()
    if where is not None:
        raise RuntimeError(f"{where} starts cytodask with a local cluster of worker processes outside "
                           "`if __name__ == \"__main__\":`; each worker process imports the script again and "
                           f"would start the run again. To fix it, {_FIX}")


def unguarded_call_site() -> str | None:
    """``FILE:LINE`` of the top-level statement of the main script that led here, if it is not inside an
    ``if __name__ == "__main__":`` block; ``None`` when it is, or when there is no main script file
    (an interactive session, Jupyter, ``python -c``)."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    frame = _script_frame(sys._getframe(1), main)
    if frame is None and threading.current_thread() is not threading.main_thread():
        # started from a thread of the script (a thread pool, a web app): the script's own statement is the
        # one the main thread is running now (e.g. waiting on the thread's result)
        frame = _script_frame(sys._current_frames().get(threading.main_thread().ident), main)
    if path is None or frame is None:
        return None
    try:
        tree = ast.parse(Path(path).read_text(), filename=path)
    except (OSError, SyntaxError, ValueError):
        return None
    line = frame.f_lineno
    for node in tree.body:
        if isinstance(node, ast.If) and _is_main_test(node.test) and node.lineno <= line <= (node.end_lineno or 0):
            return None
    return f"{path}:{line}"


def _script_frame(frame: FrameType | None, main: object) -> FrameType | None:
    """The main script's top-level frame among ``frame`` and its callers, or ``None``."""
    while frame is not None and not (frame.f_globals is getattr(main, "__dict__", None)
                                     and frame.f_code.co_name == "<module>"):
        frame = frame.f_back
    return frame


def _is_main_test(test: ast.expr) -> bool:
    """``__name__ == "__main__"`` (either side)."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = [test.left, test.comparators[0]]
    return (any(isinstance(s, ast.Name) and s.id == "__name__" for s in sides)
            and any(isinstance(s, ast.Constant) and s.value == "__main__" for s in sides))
