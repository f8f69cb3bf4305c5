"""Run or resume a rebuild spec, and report what each stage has done."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cytodask.core.atomic import atomic_write_json, read_json
from cytodask.core.cluster import cluster
from cytodask.core.events import Callback, EventBus
from cytodask.core.lock import OutputLock
from cytodask.core.memory import auto_block_cells
from cytodask.core.runner import StageReport, run_stages, stage_fingerprints
from cytodask.core.store import ResultStore, StageState
from cytodask.ingest.base import DataSource
from cytodask.orchestration.spec import Spec, check_obs_columns, load_spec


def rebuild(
    spec: str | os.PathLike[str] | Spec,
    *,
    output: str | os.PathLike[str] | None = None,
    scheduler: str | None = None,
    wait: float | None = 0,
    full_hash: bool = False,
    callbacks: list[Callback] | None = None,
    echo: Callable[[str], None] | None = print,
    config_overrides: dict[str, Any] | None = None,
    source: DataSource | None = None,
    verify: bool = False,
) -> list[StageReport]:
    """Run or resume the rebuild described by ``spec``.

    Parameters
    ----------
    spec
        Path of a TOML spec (or a loaded :class:`Spec`).
    output
        Result store directory (default: the spec's ``config.output_dir``).
    scheduler
        Address of an existing Dask scheduler (overrides the spec).
    wait
        Seconds to wait for another run holding the output (``None`` = forever).
    full_hash
        Fingerprint input files by their full content.
    callbacks
        Progress event subscribers (see :mod:`cytodask.core.events`).
    echo
        Where to print the dashboard address and notices (``None`` = silent).
    source
        An opened source to use instead of the spec's ``[source]`` (Python API).
    verify
        Compare the checksums of every recorded file before trusting it (sizes are always compared).
    """
    overrides = dict(config_overrides or {})
    if output is not None:
        overrides["output_dir"] = Path(output)
    if scheduler is not None:
        overrides["scheduler_address"] = scheduler
    if not isinstance(spec, Spec):
        spec = load_spec(spec, overrides=overrides)
    elif overrides:
        spec.config = spec.config.replace(**overrides)
    source = source or spec.make_source()
    if spec.config.batch_size == 0:
        n_obs, n_vars = source.shape
        nnz = source.nnz_hint()
        density = min(1.0, nnz / max(1, n_obs * n_vars)) if nnz else 0.1
        cfg = spec.config
        block = auto_block_cells(n_vars=n_vars, density=max(density, 1e-4), memory_limit=cfg.memory_limit,
                                 n_workers=cfg.n_workers, threads_per_worker=cfg.threads_per_worker)
        spec.config = cfg.replace(batch_size=block)
        if echo is not None:
            echo(f"batch_size = 0: chose {block} cells per block from the worker memory budget")
    config = spec.config
    stages = spec.build(source=source)
    check_obs_columns(stages, source.obs_columns(), f"{spec.path}")
    store = ResultStore(config.output_dir, fsync=config.checkpoint.fsync)
    store.claim(inputs=[p for s in stages for p in s.external_inputs().values()])
    with OutputLock(store.root, wait=wait):
        store.sweep()  # temporaries of killed runs (e.g. a half-written export)
        if not spec.source and hasattr(source, "path"):
            spec.source = {"path": str(source.path)}
        atomic_write_json(store.root / "spec.json", spec.resolved(), fsync=config.checkpoint.fsync)
        if echo is not None and not callbacks:  # the Python default: say what a user must hear about
            callbacks = [lambda ev: echo(f"  {ev['stage']}: {ev.get('message') or ev.get('reason')}")
                         if ev.get("event") in ("stage_notice", "stage_repaired") else None]
        events = EventBus(store.log_path, callbacks)
        if echo is not None:
            echo(f"cytodask rebuild {spec.name}: results in {store.root}")
        fps = stage_fingerprints(stages, full_hash=full_hash)
        noop = not verify and all(store.stage(s.name).status(fps[s.name])["state"] == "complete" for s in stages)
        if noop and echo is not None:
            echo(f"all {len(stages)} stages are up to date: nothing to compute, no cluster started")
        with (contextlib.nullcontext(None) if noop else cluster(config, echo=echo)) as client:
            events.client = client
            try:
                return run_stages(stages, store, config, client=client, events=events, full_hash=full_hash,
                                  verify=verify)
            except BaseException as e:
                events.emit("run_failed", error=f"{type(e).__name__}: {e}")
                raise
            finally:
                if not (noop and (store.root / "report.html").exists()):
                    _report(store.root, echo)


def _report(root: Path, echo: Callable[[str], None] | None) -> None:
    """Write ROOT/report.html for the run just ended (a failed report never fails the run)."""
    from cytodask.export.report import build_report

    try:
        path = build_report(root)
    except Exception as e:
        if echo is not None:
            echo(f"run report not written: {type(e).__name__}: {e}")
        return
    if echo is not None:
        echo(f"run report: {path}")


@dataclass
class StageStatus:
    name: str
    state: str  # complete | damaged | partial | stale | not started
    done: int
    n_blocks: int | None
    summary: dict[str, Any]
    problems: list[str] = field(default_factory=list)


def status(output: str | os.PathLike[str], *, spec: str | os.PathLike[str] | None = None) -> list[StageStatus]:
    """What each stage of a result store has done, and what is stale.

    Staleness is judged against ``spec`` (default: the spec of the last run,
    saved in the store) and the current input files.
    """
    root = Path(output)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a result directory (no rebuild has written there)")
    store = ResultStore(root)
    expected: dict[str, str] = {}
    names: list[str] = []
    saved = read_json(root / "spec.json")
    sp = load_spec(spec, overrides={"output_dir": root}) if spec else (Spec.from_resolved(saved) if saved else None)
    if sp is not None:
        try:
            stages = sp.build()
            expected = stage_fingerprints(stages)
        except (FileNotFoundError, ValueError):
            stages = []
        names = [s.name for s in stages] if stages else []
    names += [n for n in store.stage_names() if n not in names]
    inputs = {s.name: s.inputs for s in stages} if sp is not None else {}
    out: list[StageStatus] = []
    for n in names:
        st = store.stage(n).status(expected.get(n))
        m = st.get("manifest") or {}
        problems = list(st.get("problems", []))
        behind = [o.name for o in out if o.name in inputs.get(n, ()) and o.state != "complete"]
        if st["state"] == "complete" and behind:  # e.g. an upstream manifest deleted: this gets recomputed too
            st["state"] = "stale"
            problems.append(f"its input {behind} is not complete; the next rebuild recomputes both")
        exported = read_json(root / "exports" / n / "manifest.json")  # written by export stages
        if exported and expected.get(n) and exported.get("fingerprint") != expected[n]:
            problems.append(f"exports/{n} were written by an older run ({exported.get('created')}) and do not "
                            f"match the current inputs; run the rebuild to refresh them")
        out.append(StageStatus(n, st["state"], st["done"], st["n_blocks"], m.get("summary", {}), problems))
    return out


def verify(path: str | os.PathLike[str]) -> list[tuple[str, str]]:
    """``(stage, problem)`` for every recorded file of a result directory (or atlas store) whose size or
    checksum differs from its record, and every missing completion record of a complete stage."""
    root = Path(path)
    meta = root.parent / f".{root.name}.cytodask"
    if (meta / "manifest.json").exists():  # an atlas store written by `cytodask convert`
        states = {"convert": StageState(meta, root)}
    elif root.is_dir():
        store = ResultStore(root)
        states = {n: store.stage(n) for n in store.stage_names()}
    else:
        raise FileNotFoundError(f"{root} is neither a result directory nor an atlas store; pass the --output "
                                "of a rebuild or the STORE of a convert")
    out = []
    for name, st in states.items():
        fp = (st.manifest() or {}).get("fingerprint")
        bad, other = st.damage(fp, checksums=True) if fp else ({}, [])
        out += [(name, o) for o in other] + [(name, f"block {i}: {why}") for i, why in sorted(bad.items())]
    return out
