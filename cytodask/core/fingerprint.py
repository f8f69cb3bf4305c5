"""Fingerprints: short content hashes of parameters, files and stage inputs.

A stage's fingerprint combines its code version, its parameters and the
fingerprints of its inputs, so a change anywhere upstream changes every
fingerprint downstream and marks those stages stale.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

_SAMPLE = 1 << 20  # bytes hashed at each of the start, middle and end of a file


def hash_obj(obj: Any) -> str:
    """Hash a JSON-able object canonically (sorted keys); 32 hex digits."""
    data = json.dumps(obj, sort_keys=True, default=_default, separators=(",", ":")).encode()
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _default(o: Any) -> Any:
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "tolist"):
        return o.tolist()
    if isinstance(o, (set, frozenset)):
        return sorted(o)
    raise TypeError(f"cannot fingerprint {type(o).__name__}: pass plain data (str, numbers, lists, dicts)")


def file_fingerprint(path: str | os.PathLike[str], *, full: bool = False) -> str:
    """Fingerprint a file or directory tree.

    By default: size, modification time, inode change time and a hash of
    three 1 MiB samples (start, middle, end) of each file — cheap on 100 GB
    atlases and sensitive to any rewrite. The change time (``st_ctime``) is
    set by the kernel on every write and cannot be restored by ``cp -p``,
    ``rsync -t`` or ``touch``, so a same-size edit outside the samples with
    the old mtime preserved is still seen; the price is that a metadata-only
    change (``chmod``, ``chown``, a rename on some filesystems) also marks
    the file changed. ``full=True`` hashes every byte and ignores both times
    (a file rewritten with the same content keeps its fingerprint).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"input {path} does not exist")
    h = hashlib.blake2b(digest_size=16)
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for f in files:
        st = f.stat()
        stamp = "" if full else f"|{st.st_mtime_ns}|{st.st_ctime_ns}"
        h.update(f"{f.relative_to(path) if f != path else f.name}|{st.st_size}{stamp}|".encode())
        with open(f, "rb") as fh:
            if full or st.st_size <= 3 * _SAMPLE:
                for chunk in iter(lambda: fh.read(1 << 22), b""):
                    h.update(chunk)
            else:
                for offset in (0, st.st_size // 2, st.st_size - _SAMPLE):
                    fh.seek(offset)
                    h.update(fh.read(_SAMPLE))
    return h.hexdigest()
