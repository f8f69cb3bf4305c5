"""The result store: one Zarr group per stage, block records and manifests.

Layout of a result store rooted at ``ROOT``::

    ROOT/
      .cytodask                   marker: a result directory cytodask made (others are never written into)
      .lock                       held (flock) by the run writing ROOT
      run-log.jsonl               one JSON event per line, every run
      spec.json                   the resolved spec of the last run (for `cytodask status`)
      stages/<name>/manifest.json stage, fingerprint, params, n_blocks, state
      stages/<name>/blocks/<i>.json  completion record of block i (written after its data)
      stages/<name>/data.zarr/    the stage's outputs (a Zarr group; AnnData layout where it is one)

Bookkeeping stays outside the Zarr hierarchy, so ``anndata.read_zarr`` and
``zarr.open_group`` see only data.

A block counts as done only if its record exists *and* carries the stage's
current fingerprint. Records are written atomically after the block's data
has been written (and ``fsync``-ed), so a block being written when the
process died is never counted as done.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cytodask.core.atomic import atomic_write_json, fsync_path, read_json, remove_tree
from cytodask.core.outputs import check_creatable, refuse_foreign, refuse_overlap

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]*$")


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


class StageState:
    """Manifest and block records of one stage.

    Parameters
    ----------
    meta_dir
        Directory of the manifest and block records.
    data_path
        The stage's outputs (a Zarr group root); default ``meta_dir/data.zarr``.
    fsync
        Make records durable with ``fsync`` before they count.
    """

    def __init__(self, meta_dir: str | os.PathLike[str], data_path: str | os.PathLike[str] | None = None,
                 *, fsync: bool = True) -> None:
        self.meta_dir = Path(meta_dir)
        self.path = Path(data_path) if data_path is not None else self.meta_dir / "data.zarr"
        self.fsync = fsync

    @property
    def blocks_dir(self) -> Path:
        return self.meta_dir / "blocks"

    def manifest(self) -> dict[str, Any] | None:
        """The stage manifest, or ``None`` if the stage never started."""
        return read_json(self.meta_dir / "manifest.json")

    def begin(self, fingerprint: str, info: dict[str, Any]) -> bool:
        """Prepare the directory for a run with ``fingerprint``.

        An existing directory from a different fingerprint (changed inputs,
        parameters or code) is removed first. Returns ``True`` when the stage
        is already complete with this fingerprint (nothing to do).
        """
        m = self.manifest()
        same = m is not None and m.get("fingerprint") == fingerprint
        if same and (self.path.exists() or m.get("state") != "complete"):
            return m.get("state") == "complete"
        self.reset()
        self.blocks_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(
            self.meta_dir / "manifest.json",
            {**info, "fingerprint": fingerprint, "state": "running", "started": _now()},
            fsync=self.fsync,
        )
        return False

    def reset(self) -> None:
        """Forget everything: outputs, records and manifest (each removal atomic)."""
        remove_tree(self.path)
        remove_tree(self.meta_dir)

    def update(self, **fields: Any) -> None:
        """Merge ``fields`` into the manifest (atomically)."""
        m = self.manifest() or {}
        m.update(fields)
        atomic_write_json(self.meta_dir / "manifest.json", m, fsync=self.fsync)

    def complete(self, summary: dict[str, Any] | None = None) -> None:
        """Mark the stage complete; only called after every block and the finalisation."""
        self.update(state="complete", finished=_now(), summary=summary or {})

    def record_block(self, index: int, fingerprint: str, info: dict[str, Any] | None = None) -> None:
        """Write the completion record of block ``index`` (call only after its data is durable).

        Fault injection for resume tests: ``CYTODASK_FAULT_RECORD_DELAY=SECONDS``
        sleeps before each record, widening the window in which a test kills the run.
        """
        delay = float(os.environ.get("CYTODASK_FAULT_RECORD_DELAY", "0") or 0)
        if delay > 0:
            time.sleep(delay)
        atomic_write_json(
            self.blocks_dir / f"{index:08d}.json",
            {"block": index, "fingerprint": fingerprint, **(info or {})},
            fsync=self.fsync,
        )

    def block_record(self, index: int, fingerprint: str) -> dict[str, Any] | None:
        """The record of block ``index`` if it is valid for ``fingerprint``."""
        rec = read_json(self.blocks_dir / f"{index:08d}.json")
        if rec is None or rec.get("fingerprint") != fingerprint or rec.get("block") != index:
            return None
        return rec

    def done_blocks(self, fingerprint: str) -> set[int]:
        """Indices of blocks with a valid completion record for ``fingerprint``."""
        done: set[int] = set()
        if not self.blocks_dir.is_dir():
            return done
        for f in self.blocks_dir.glob("*.json"):
            rec = read_json(f)
            if rec and rec.get("fingerprint") == fingerprint and f.stem == f"{rec.get('block', -1):08d}":
                done.add(int(rec["block"]))
        return done

    def status(self, expected_fingerprint: str | None = None) -> dict[str, Any]:
        """One of complete / partial / stale / not started, with block counts."""
        m = self.manifest()
        if m is None:
            return {"state": "not started", "done": 0, "n_blocks": None}
        fp = m.get("fingerprint")
        n = m.get("n_blocks")
        done = len(self.done_blocks(fp)) if fp else 0
        if expected_fingerprint is not None and fp != expected_fingerprint:
            state = "stale"
        elif m.get("state") == "complete":
            state = "complete"
        else:
            state = "partial"
        return {"state": state, "done": done, "n_blocks": n, "manifest": m}


def fsync_zarr_region(array: Any, selection: tuple[slice, ...]) -> None:
    """``fsync`` the chunk files of a local Zarr array that ``selection`` touches.

    Zarr's local store already writes chunks atomically (temp file + rename);
    this adds durability, so a completion record never outlives its data after
    a power loss. Non-local stores are left to their own guarantees.
    """
    root = getattr(array.store, "root", None)
    if root is None:
        return
    chunks = array.chunks
    ranges = []
    for sl, c, n in zip(selection, chunks, array.shape, strict=False):
        start, stop, _ = sl.indices(n)
        if stop <= start:
            return
        ranges.append(range(start // c, (stop - 1) // c + 1))
    base = Path(root) / array.path
    dirs: set[Path] = set()
    for coords in _product(ranges):
        f = base / array.metadata.encode_chunk_key(tuple(coords))
        fsync_path(f)
        dirs.add(f.parent)
    for d in dirs:
        fsync_path(d)


def _product(ranges: list[range]) -> Iterable[list[int]]:
    if not ranges:
        yield []
        return
    for head in ranges[0]:
        for tail in _product(ranges[1:]):
            yield [head, *tail]


class ResultStore:
    """Root of a rebuild's outputs: stage directories, lock, run log.

    Parameters
    ----------
    root
        Directory (created if missing). Must be on a filesystem every worker
        sees when running on a multi-machine cluster.
    fsync
        Durable records (see :class:`StageState`).
    """

    def __init__(self, root: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self.root = Path(root)
        self.fsync = fsync

    def stage(self, name: str) -> StageState:
        if not _NAME.match(name):
            raise ValueError(
                f"stage name {name!r} is not allowed: use letters, digits, '_' or '-', starting with a letter"
            )
        return StageState(self.root / "stages" / name, fsync=self.fsync)

    def stage_path(self, name: str) -> Path:
        """Where stage ``name`` keeps its outputs (a Zarr group)."""
        return self.stage(name).path

    def stage_names(self) -> list[str]:
        d = self.root / "stages"
        if not d.is_dir():
            return []
        return sorted(p.name for p in d.iterdir() if (p / "manifest.json").exists())

    @property
    def log_path(self) -> Path:
        return self.root / "run-log.jsonl"

    def ensure(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if self.fsync:
            fsync_path(self.root.parent)

    MARKER = ".cytodask"

    def is_own(self) -> bool:
        """Whether ``root`` is a result directory cytodask made (its marker, run log or a stage manifest)."""
        return ((self.root / self.MARKER).is_file() or (self.root / "run-log.jsonl").is_file()
                or bool(self.stage_names()))

    def claim(self, *, inputs: Iterable[str | os.PathLike[str]] = (), flag: str = "--output") -> None:
        """Create ``root`` for a run, refusing a path whose files cytodask did not make.

        Refused (``ValueError`` naming the path and the fix), before anything
        is written: a root that is, contains or lies inside one of ``inputs``;
        a regular file or a path below one; an unwritable place; an existing
        non-empty directory that is not a result directory (a user's files are
        never mixed with, or replaced by, results). A new root gets a marker.
        """
        refuse_overlap(self.root, inputs, what="result directory")
        check_creatable(self.root, what="result directory", flag=flag)
        refuse_foreign(self.root, owned=self.is_own(), what="result directory", flag=flag)
        self.ensure()
        marker = self.root / self.MARKER
        if not marker.exists():
            atomic_write_json(marker, {"created_by": "cytodask", "kind": "result directory"}, fsync=self.fsync)
