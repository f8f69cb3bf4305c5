"""Durable, atomic file operations: a file is either absent or complete.

Every record, manifest and export goes through :func:`atomic_write_bytes`:
write a temporary file in the same directory, ``fsync`` it, ``os.replace`` it
over the target and ``fsync`` the directory. A process killed at any point
leaves either the old file or the new one, never a torn one.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def fsync_path(path: str | os.PathLike[str]) -> None:
    """``fsync`` a file or directory if it exists (missing paths are ignored)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(path: str | os.PathLike[str]) -> list[Path]:
    """``fsync`` every file below ``path``, then its directories (deepest first); returns the files."""
    files = sorted(Path(d) / n for d, _, names in os.walk(path) for n in names)
    for f in files:
        fsync_path(f)
    for d in sorted({f.parent for f in files} | {Path(path)}, key=lambda p: -len(p.parts)):
        fsync_path(d)
    return files


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, fsync: bool = True) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success move it into place.

    Works for files and directories (e.g. an ``.h5ad`` or a ``.zarr`` export).
    On error the temporary is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        yield tmp
        if fsync:
            if tmp.is_dir():
                for sub in tmp.rglob("*"):
                    if sub.is_file():
                        fsync_path(sub)
            else:
                fsync_path(tmp)
        if path.is_dir() and tmp.is_dir():
            trash = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.old")
            os.replace(path, trash)
            os.replace(tmp, path)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(tmp, path)
        if fsync:
            fsync_path(path.parent)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *, fsync: bool = True) -> None:
    """Write ``data`` to ``path`` atomically (and durably when ``fsync``)."""
    with atomic_path(path, fsync=fsync) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)


def atomic_write_json(path: str | os.PathLike[str], obj: Any, *, fsync: bool = True) -> None:
    """Write ``obj`` as JSON to ``path`` atomically."""
    atomic_write_bytes(path, json.dumps(obj, indent=1, sort_keys=True, default=str).encode(), fsync=fsync)


def read_json(path: str | os.PathLike[str]) -> Any | None:
    """Parse a JSON file; ``None`` when it is missing or unreadable (never half-trusted)."""
    try:
        return json.loads(Path(path).read_text())
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return None


def remove_tree(path: str | os.PathLike[str]) -> None:
    """Remove a directory tree so no reader ever sees it half-deleted.

    The tree is first renamed to a hidden sibling (atomic), then deleted.
    """
    path = Path(path)
    if not path.exists():
        return
    trash = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.trash")
    os.replace(path, trash)
    shutil.rmtree(trash, ignore_errors=True)


# The hidden siblings made above: .NAME.<8 hex>.tmp (atomic_path), .old (a replaced directory), .trash (remove_tree).
TEMPORARY = re.compile(r"^\..+\.[0-9a-f]{8}\.(tmp|old|trash)$")


def sweep_temporaries(directory: str | os.PathLike[str], *, prefix: str = "") -> list[Path]:
    """Remove the temporaries that a killed run left in ``directory``; returns them.

    Only names this module makes (``.NAME.<id>.tmp|old|trash``) that start with ``.{prefix}``
    are touched. Call it only while no other run can be writing there (under the output's lock,
    before the run's first write).
    """
    d = Path(directory)
    if not d.is_dir():
        return []
    gone = [p for p in d.iterdir() if TEMPORARY.match(p.name) and p.name.startswith(f".{prefix}")]
    for p in gone:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
    return gone
