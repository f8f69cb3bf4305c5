"""Run or resume a rebuild spec, and report what each stage has done."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cytodask.core.atomic import atomic_write_json, read_json, remove_tree
from cytodask.core.cluster import cluster, cluster_kind
from cytodask.core.events import Callback, EventBus
from cytodask.core.lock import OutputLock
from cytodask.core.memory import auto_block_cells
from cytodask.core.runner import StageReport, run_stages, stage_fingerprints
from cytodask.core.store import ResultStore, StageState
from cytodask.ingest.base import DataSource
from cytodask.orchestration.guard import check_main_guard
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
    replace: bool = False,
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
    replace
        Replace the results of another source held in ``output`` (refused otherwise); stages of the
        earlier run that this one does not have are removed with their exports.
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
    # workers (SLURM jobs, `dask worker` started elsewhere) do not share this process' working directory
    spec.config = spec.config.replace(output_dir=absolute(spec.config.output_dir))
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
        spec.source = spec.source or _source_record(source)
        origin = source_origin(source)
        saved = read_json(store.root / "spec.json") or {}
        # a spec file whose source changed (e.g. a nightly's new atlas file) replaces its own results
        same_spec = (spec.path.is_file() and spec.path != store.root / "spec.json"
                     and saved.get("path") == str(spec.path))
        _check_source(store, saved, origin, replace=replace or same_spec, keep=[s.name for s in stages], echo=echo)
        atomic_write_json(store.root / "spec.json", {**spec.resolved(), "source_origin": origin},
                          fsync=config.checkpoint.fsync)
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
        if not noop:
            check_main_guard(cluster_kind(config), config.processes)
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


def absolute(path: str | os.PathLike[str]) -> Path:
    """``path`` made absolute against this process' working directory (``~`` expanded, links kept)."""
    return Path(os.path.abspath(os.path.expanduser(path)))


def source_origin(source: DataSource) -> dict[str, Any]:
    """Where ``source`` reads from: its identity less what changes with a new version of the same data
    (size, HTTP validators, Census build) and the layer read."""
    return {k: v for k, v in source.identity().items() if k not in ("size", "validators", "build", "layer")}


def _check_source(store: ResultStore, saved: dict[str, Any], origin: dict[str, Any], *, replace: bool,
                  keep: list[str], echo: Callable[[str], None] | None) -> None:
    """Refuse to mix this run's results with another source's in one folder, unless ``replace``
    (a spec whose source changed replaces its own results)."""
    before = saved.get("source_origin")
    if before is None or before == origin:
        return
    was = before.get("path") or before.get("url") or before
    now = origin.get("path") or origin.get("url") or origin
    if not replace:
        raise ValueError(f"{store.root} holds the results of another source ({was}); this run reads {now}. "
                         "Choose another output directory (output_dir= / --output), or replace those results "
                         "with replace=True (cytodask rebuild --replace)")
    old = [n for n in store.stage_names() if n not in keep]
    for n in old:
        store.stage(n).reset()
        exports = store.root / "exports"
        with contextlib.suppress(FileNotFoundError):
            (exports / n).unlink()
        for version in (exports / ".versions").glob(f"{n}@*"):
            remove_tree(version)
    if echo is not None:
        echo(f"replacing the results of {was} in {store.root}" + (f" (removed stages {old})" if old else ""))


def _source_record(source: DataSource) -> dict[str, Any]:
    """The ``[source]`` table that reopens ``source`` (Python runs): absolute path or URL, and layer."""
    path = getattr(source, "path", None)
    where = str(absolute(path)) if path is not None else source.name if "://" in source.name else None
    if where is None:  # e.g. a Census query: reopened only by the code that made it
        return {}
    layer = getattr(source, "layer", None)
    return {"path": where, **({"layer": layer} if layer else {})}


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
    names += _input_order(store, [n for n in store.stage_names() if n not in names])  # left from earlier runs
    inputs = {s.name: s.inputs for s in stages} if sp is not None else {}
    out: list[StageStatus] = []
    for n in names:
        st = store.stage(n).status(expected.get(n))
        m = st.get("manifest") or {}
        problems = list(st.get("problems", []))
        done = {o.name: o for o in out}
        behind = [i for i in inputs.get(n, m.get("inputs", {})) if i in done and done[i].state != "complete"]
        changed = [i for i, fp in m.get("inputs", {}).items()
                   if n not in expected and _current_fingerprint(store, i, expected) != fp]
        if st["state"] == "complete" and changed:  # a stage left from an earlier run, its input since rebuilt
            st["state"] = "stale"
            problems.append(f"its input {changed} changed (or is gone) since it ran; it is no stage of the last "
                            "run, so no rebuild refreshes it: rerun the spec that made it")
        elif st["state"] == "complete" and behind:  # e.g. an upstream manifest deleted: this gets recomputed too
            st["state"] = "stale"
            problems.append(f"its input {behind} is not complete; the next rebuild recomputes both")
        exported = read_json(root / "exports" / n / "manifest.json")  # written by export stages
        if exported and expected.get(n) and exported.get("fingerprint") != expected[n]:
            problems.append(f"exports/{n} were written by an older run ({exported.get('created')}) and do not "
                            f"match the current inputs; run the rebuild to refresh them")
        out.append(StageStatus(n, st["state"], st["done"], st["n_blocks"], m.get("summary", {}), problems))
    return out


def _input_order(store: ResultStore, names: list[str]) -> list[str]:
    """``names`` ordered so that each stage comes after the stages it read (by their manifests)."""
    reads = {n: set((store.stage(n).manifest() or {}).get("inputs", {})) & set(names) for n in names}
    out: list[str] = []
    while reads:
        ready = [n for n, r in reads.items() if r <= set(out)] or list(reads)[:1]  # [:1]: a cycle, never written
        out += ready
        for n in ready:
            del reads[n]
    return out


def _current_fingerprint(store: ResultStore, name: str, expected: dict[str, str]) -> str | None:
    """What stage ``name`` would be fingerprinted now (the spec's), else what its store holds."""
    if name in expected:
        return expected[name]
    return (store.stage(name).manifest() or {}).get("fingerprint")


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
