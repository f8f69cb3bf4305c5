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
current fingerprint *and* the chunk files it lists still have the size (and,
when asked, the checksum) they had when written; a complete stage's manifest
lists its other data files the same way (:mod:`cytodask.core.integrity`).
Records are written atomically after the block's data has been written (and
``fsync``-ed), so a block being written when the process died is never
counted as done.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import re
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cytodask.core.atomic import TEMPORARY, atomic_write_json, fsync_path, read_json, remove_tree, sweep_temporaries
from cytodask.core.integrity import check_file, digests, region_files, tree_files
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
        """Mark the stage complete; only called after every block and the finalisation.

        The manifest lists, with size and checksum, every data file that no block record
        lists (metadata, finalisation outputs, blocks of stages that do not list their files).
        """
        fp = (self.manifest() or {}).get("fingerprint")
        listed = {rel for rec in (self.records(fp) if fp else {}).values() for rel in rec.get("chunks") or {}}
        files = digests((f for f in tree_files(self.path) if f.relative_to(self.path).as_posix() not in listed),
                        self.path)
        self.update(state="complete", finished=_now(), summary=summary or {}, files=files)

    def record_block(self, index: int, fingerprint: str, info: dict[str, Any] | None = None, *,
                     files: Iterable[str | os.PathLike[str]] = ()) -> None:
        """Write the completion record of block ``index`` (call only after its data is durable).

        ``files``: the chunk files the block wrote (see :func:`region_files`); their sizes and
        checksums go into the record so later runs can tell a damaged block from a done one.

        Fault injection for resume tests: ``CYTODASK_FAULT_RECORD_DELAY=SECONDS``
        sleeps before each record, widening the window in which a test kills the run;
        ``CYTODASK_FAULT_RECORD_STAGES=a,b`` limits it to the records of those stages.
        """
        delay = float(os.environ.get("CYTODASK_FAULT_RECORD_DELAY", "0") or 0)
        only = [s for s in os.environ.get("CYTODASK_FAULT_RECORD_STAGES", "").split(",") if s]
        if delay > 0 and (not only or self.meta_dir.name in only):
            time.sleep(delay)
        rec = {"block": index, "fingerprint": fingerprint, **(info or {})}
        chunks = digests(files, self.path)
        if chunks:
            rec["chunks"] = chunks
        atomic_write_json(self.blocks_dir / f"{index:08d}.json", rec, fsync=self.fsync)

    def block_record(self, index: int, fingerprint: str) -> dict[str, Any] | None:
        """The record of block ``index`` if it is valid for ``fingerprint``."""
        rec = read_json(self.blocks_dir / f"{index:08d}.json")
        if rec is None or rec.get("fingerprint") != fingerprint or rec.get("block") != index:
            return None
        return rec

    def records(self, fingerprint: str) -> dict[int, dict[str, Any]]:
        """Valid completion records for ``fingerprint``, by block index."""
        out: dict[int, dict[str, Any]] = {}
        if not self.blocks_dir.is_dir():
            return out
        for f in self.blocks_dir.glob("*.json"):
            rec = read_json(f)
            if rec and rec.get("fingerprint") == fingerprint and f.stem == f"{rec.get('block', -1):08d}":
                out[int(rec["block"])] = rec
        return out

    def done_blocks(self, fingerprint: str) -> set[int]:
        """Indices of blocks with a valid completion record for ``fingerprint``."""
        return set(self.records(fingerprint))

    def damage(self, fingerprint: str, *, checksums: bool = False) -> tuple[dict[int, str], list[str]]:
        """Blocks whose recorded chunk files are missing or changed, and other damaged data files.

        Returns ``({block: what is wrong}, [what is wrong with the stage's other files])``.
        Sizes are always compared (one ``stat`` per file); contents only with ``checksums``.
        A file rewritten by several blocks (in order) is judged by the last one's record; in a stage
        not yet complete, a file of the last recorded block ``k`` that has *grown* while block
        ``k + 1`` has no record is the shared chunk that block ``k + 1`` was extending when the run
        was killed (it rewrites it on resume), not damage.
        """
        recs = self.records(fingerprint)
        expected, writers = _chunk_writers(recs)
        m = self.manifest() or {}
        complete = m.get("state") == "complete"
        bad: dict[int, str] = {}
        for rel, dig in expected.items():
            problem = check_file(self.path / rel, dig, checksums=checksums)
            if problem and not complete and writers[rel][-1] + 1 not in recs:
                with contextlib.suppress(FileNotFoundError):
                    if (self.path / rel).stat().st_size > dig[0]:
                        problem = None
            if problem:
                for i in writers[rel]:
                    bad.setdefault(i, f"{self.path / rel} {problem}")
        other = []
        if complete:
            for rel, dig in (m.get("files") or {}).items():
                problem = check_file(self.path / rel, dig, checksums=checksums)
                if problem:
                    other.append(f"{self.path / rel} {problem}")
            n = m.get("n_blocks")
            if n is not None:
                other += [f"the completion record of block {i} is missing" for i in range(int(n)) if i not in recs]
        return bad, other

    def forget_blocks(self, fingerprint: str, blocks: Iterable[int], *, checksums: bool = False) -> None:
        """Forget ``blocks`` (found damaged by :meth:`damage`) so they are recomputed; reopen the stage.

        Their damaged chunk files are deleted too (a damaged chunk cannot be partly rewritten);
        :meth:`damage` flags every block that wrote such a file, so no other block's data goes with it.
        """
        recs = self.records(fingerprint)
        expected, _ = _chunk_writers(recs)
        for i in blocks:
            for rel in recs.get(i, {}).get("chunks") or {}:
                if check_file(self.path / rel, expected[rel], checksums=checksums) is not None:
                    (self.path / rel).unlink(missing_ok=True)
            (self.blocks_dir / f"{i:08d}.json").unlink(missing_ok=True)
        if (self.manifest() or {}).get("state") == "complete":
            self.update(state="running")

    def status(self, expected_fingerprint: str | None = None) -> dict[str, Any]:
        """One of complete / damaged / partial / stale / not started, with block counts.

        ``damaged``: marked complete, but a data file or a block record is missing or has another
        size (``problems`` says which); the next run recomputes what it belongs to.
        """
        m = self.manifest()
        if m is None:
            return {"state": "not started", "done": 0, "n_blocks": None}
        fp = m.get("fingerprint")
        n = m.get("n_blocks")
        done = len(self.done_blocks(fp)) if fp else 0
        problems: list[str] = []
        if expected_fingerprint is not None and fp != expected_fingerprint:
            state = "stale"
        elif m.get("state") == "complete":
            bad, other = self.damage(fp) if fp else ({}, [])
            problems = [*other, *(f"block {i}: {why}" for i, why in sorted(bad.items()))]
            state = "damaged" if problems else "complete"
        else:
            state = "partial"
        return {"state": state, "done": done, "n_blocks": n, "manifest": m, "problems": problems}


def _chunk_writers(recs: dict[int, dict[str, Any]]) -> tuple[dict[str, list[Any]], dict[str, list[int]]]:
    """Expected ``[size, checksum]`` of every recorded chunk file (the last block to write it wins), and
    the blocks that wrote each (blocks sharing a chunk file write it in order, e.g. conversion)."""
    expected: dict[str, list[Any]] = {}
    writers: dict[str, list[int]] = {}
    for i in sorted(recs):
        for rel, dig in (recs[i].get("chunks") or {}).items():
            expected[rel] = dig
            writers.setdefault(rel, []).append(i)
    return expected, writers


def fsync_zarr_region(array: Any, selection: tuple[slice, ...]) -> list[Path]:
    """``fsync`` the chunk files of a local Zarr array that ``selection`` touches; returns them.

    Zarr's local store already writes chunks atomically (temp file + rename);
    this adds durability, so a completion record never outlives its data after
    a power loss. Non-local stores are left to their own guarantees. Pass the
    returned files to :meth:`StageState.record_block` so the record can verify them.
    """
    files = region_files(array, selection)
    for f in files:
        fsync_path(f)
    for d in {f.parent for f in files}:
        fsync_path(d)
    return files


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

    def sweep(self) -> list[Path]:
        """Remove temporaries of killed runs (``.X.<id>.tmp`` and the like) from the root, ``exports/``
        (every level) and each stage's directories. Call under the output lock, before the run writes."""
        dirs = [self.root, self.root / "stages"]
        exports = self.root / "exports"
        if exports.is_dir():
            dirs += [exports, *(p for p in exports.rglob("*") if p.is_dir() and not TEMPORARY.match(p.name))]
        for n in self.stage_names():
            dirs += [self.root / "stages" / n, self.stage(n).blocks_dir]
        return [p for d in dirs for p in sweep_temporaries(d)]

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
