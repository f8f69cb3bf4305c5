"""What a completion record needs to verify its block: chunk files, sizes and checksums.

A block's record lists the chunk files it wrote (relative to the stage's data
directory) with their size and CRC-32 (:func:`digests`); a complete stage's
manifest lists the other files of its data directory the same way. Every run
checks existence and sizes (a ``stat`` per file); ``cytodask verify`` and
``rebuild --verify`` also re-read the files and compare checksums
(:func:`check_file`).
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterable, Iterator
from itertools import product
from pathlib import Path
from typing import Any

Digest = list[Any]  # [size in bytes, CRC-32 as 8 hex digits]


def region_files(array: Any, selection: tuple[slice, ...]) -> list[Path]:
    """Chunk files of a local Zarr array that ``selection`` touches (``[]`` for non-local stores).

    Chunks never written (all fill value, or an empty selection) are listed too
    when they exist; the caller keeps the ones that do (:func:`digests`).
    """
    root = getattr(array.store, "root", None)
    if root is None:
        return []
    ranges = []
    for sl, c, n in zip(selection, array.chunks, array.shape, strict=False):
        start, stop, _ = sl.indices(n)
        if stop <= start:
            return []
        ranges.append(range(start // c, (stop - 1) // c + 1))
    ranges += [range(0, -(-n // c)) for c, n in zip(array.chunks[len(ranges):], array.shape[len(ranges):],
                                                    strict=True)]
    base = Path(root) / array.path
    return [base / array.metadata.encode_chunk_key(tuple(coords)) for coords in product(*ranges)]


def checksum(path: str | os.PathLike[str]) -> str:
    """CRC-32 of a file's bytes, as 8 hex digits."""
    crc = 0
    buf = memoryview(bytearray(1 << 20))  # one reused buffer: no allocation per read
    with open(path, "rb", buffering=0) as fh:
        while n := fh.readinto(buf):
            crc = zlib.crc32(buf[:n], crc)
    return f"{crc:08x}"


def digests(files: Iterable[str | os.PathLike[str]], base: str | os.PathLike[str]) -> dict[str, Digest]:
    """``{path relative to base: [size, checksum]}`` of the files that exist."""
    base = Path(base)
    out: dict[str, Digest] = {}
    for f in files:
        f = Path(f)
        try:
            size = f.stat().st_size
        except FileNotFoundError:
            continue
        out[f.relative_to(base).as_posix()] = [size, checksum(f)]
    return out


def tree_files(base: str | os.PathLike[str]) -> Iterator[Path]:
    """Every regular file below ``base`` (none if it does not exist)."""
    for dirpath, _dirs, names in os.walk(base):
        for n in names:
            yield Path(dirpath) / n


def check_file(path: Path, expected: Digest, *, checksums: bool) -> str | None:
    """What is wrong with ``path`` against ``[size, checksum]``, or ``None``."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return "is missing"
    if size != expected[0]:
        return f"has {size} bytes, {expected[0]} were written"
    if checksums and checksum(path) != expected[1]:
        return "has changed content (checksum differs)"
    return None
