"""Run stages through the result store: skip what is done, compute what is missing.

For each stage, in dependency order:

1. fingerprint = hash(code version, parameters, upstream fingerprints, input files);
2. a complete stage with that fingerprint is skipped; a stage with another
   fingerprint (stale) is wiped — and, since fingerprints chain, so is every
   stage downstream of it;
3. ``plan`` gives the number of blocks; blocks with a valid completion record
   are skipped, the others are built as one lazy graph and computed on the
   cluster (or in this process for ``where = "client"`` stages);
4. ``finalize`` runs and the manifest is marked complete.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import dask

from cytodask.core.config import Config
from cytodask.core.events import EventBus
from cytodask.core.stage import Stage, StageContext
from cytodask.core.stage_memory import StageMemory, max_rss_mb
from cytodask.core.store import ResultStore, StageState


class StageFailed(RuntimeError):
    """A stage raised; the message names the stage and the block."""


@dataclass
class StageReport:
    name: str
    fingerprint: str
    state: str  # "skipped" | "computed"
    n_blocks: int = 0
    computed: int = 0
    skipped: int = 0
    seconds: float = 0.0
    summary: dict[str, Any] = field(default_factory=dict)


def peak_rss_mb() -> float:
    """Peak resident memory of this process over its life so far, in MiB (the run's peak)."""
    return max_rss_mb()


def stage_fingerprints(stages: Sequence[Stage], *, full_hash: bool = False) -> dict[str, str]:
    """Fingerprint of every stage, in order (upstream first)."""
    fps: dict[str, str] = {}
    names = [s.name for s in stages]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"stage names must be unique; repeated: {dup}")
    by_name = {s.name: s for s in stages}
    for s in stages:
        if set(s.inputs) - set(s.upstream):  # stages made outside a spec: give them their upstream objects
            s.bind(by_name)
        missing = [i for i in s.inputs if i not in fps]
        if missing:
            raise ValueError(_order_problem(s.name, missing, by_name, list(fps)))
        fps[s.name] = s.fingerprint(fps, full_hash=full_hash)
    return fps


def _order_problem(name: str, missing: list[str], by_name: dict[str, Stage], before: list[str]) -> str:
    """Why stage ``name`` cannot read ``missing``: no such stage, a cycle (named), or defined later."""
    unknown = [m for m in missing if m not in by_name]
    if unknown:
        return (f"stage {name!r} reads {unknown}, which is no stage of this run (stages: {sorted(by_name)}); "
                "fix the name in its inputs")
    cycle = _cycle_through(name, by_name)
    if cycle:
        chain = " reads ".join(repr(c) for c in cycle)
        return (f"stages read each other in a cycle: {chain}; every stage's inputs must come from stages that "
                "do not (indirectly) read it: remove one of these inputs")
    return (f"stage {name!r} reads {missing}, which must be defined before it (stages so far: {before}); "
            "move those stages above it")


def _cycle_through(start: str, by_name: dict[str, Stage]) -> list[str] | None:
    """A path ``start -> ... -> start`` along stage inputs, if there is one."""
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    seen: set[str] = set()
    while stack:
        node, path = stack.pop()
        for nxt in by_name[node].inputs if node in by_name else ():
            if nxt == start:
                return [*path, start]
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, [*path, nxt]))
    return None


def run_stages(
    stages: Sequence[Stage],
    store: ResultStore,
    config: Config,
    *,
    client: Any = None,
    events: EventBus | None = None,
    full_hash: bool = False,
    verify: bool = False,
) -> list[StageReport]:
    """Run (or resume) ``stages`` into ``store``.

    Parameters
    ----------
    stages
        In dependency order; each stage's ``inputs`` name earlier stages.
    store
        The result store.
    config
        Run configuration (passed to the stages).
    client
        A ``distributed.Client``; ``None`` computes in this process with
        Dask's synchronous scheduler (debugging; ``cluster = "none"``).
    events
        Event bus for progress; a silent one is made if omitted.
    full_hash
        Fingerprint input files by their full content instead of samples.
    verify
        Compare the checksums of every recorded data file, not only their sizes (which every
        run checks). A damaged block is recomputed, a damaged stage file recomputes its stage,
        and a stage whose input was recomputed is recomputed too; each says why (``stage_repaired``).
    """
    events = events or EventBus()
    store.ensure()
    fps = stage_fingerprints(stages, full_hash=full_hash)
    reports: list[StageReport] = []
    for stage in stages:  # what a stage fetches from outside (e.g. a named signature) fails before any work starts
        if store.stage(stage.name).status(fps[stage.name])["state"] != "complete":
            stage.prepare()
    events.emit("run_started", stages=[s.name for s in stages], output=str(store.root))
    t_run = time.perf_counter()
    recomputed: set[str] = set()
    for stage in stages:
        if recomputed.intersection(stage.inputs) and store.stage(stage.name).manifest() is not None:
            events.emit("stage_repaired", stage=stage.name,
                        reason=f"recomputing it: its input {sorted(recomputed.intersection(stage.inputs))} was "
                               "recomputed in this run")
            store.stage(stage.name).reset()
        reports.append(_run_one(stage, store, config, fps, client, events, verify=verify))
        if reports[-1].state == "computed":
            recomputed.add(stage.name)
    events.emit(
        "run_finished",
        seconds=time.perf_counter() - t_run,
        computed={r.name: r.computed for r in reports},
        skipped={r.name: r.skipped for r in reports},
        peak_rss_mb=peak_rss_mb(),
    )
    return reports


def _run_one(
    stage: Stage,
    store: ResultStore,
    config: Config,
    fps: dict[str, str],
    client: Any,
    events: EventBus,
    *,
    verify: bool = False,
) -> StageReport:
    fp = fps[stage.name]
    state = store.stage(stage.name)
    info = {"stage": stage.name, "class": type(stage).__name__, "version": stage.version,
            "params": stage.params(), "inputs": {i: fps[i] for i in stage.inputs}}
    t0 = time.perf_counter()
    complete = state.begin(fp, info)
    if not _repair(stage.name, state, fp, info, events, verify=verify) and complete:
        m = state.manifest() or {}
        n = int(m.get("n_blocks") or 0)
        stage.cleanup(StageContext(name=stage.name, state=state, fingerprint=fp, config=config,
                                   inputs={i: store.stage_path(i) for i in stage.inputs}))
        events.emit("stage_skipped", stage=stage.name, n_blocks=n, reason="complete, fingerprint unchanged")
        return StageReport(stage.name, fp, "skipped", n_blocks=n, skipped=n, summary=m.get("summary", {}))
    ctx = StageContext(
        name=stage.name, state=state, fingerprint=fp, config=config,
        inputs={i: store.stage_path(i) for i in stage.inputs}, client=client,
    )
    memory = StageMemory(client).start()  # the stage's own peak, not the process's so far (issue 14.5)
    try:
        n_blocks = int(stage.plan(ctx))
        state.update(n_blocks=n_blocks)
        done = state.done_blocks(fp)
        missing = [i for i in range(n_blocks) if i not in done]
        events.emit("stage_started", stage=stage.name, n_blocks=n_blocks, skipped=len(done), to_compute=len(missing))
        _compute_blocks(stage, ctx, missing, client, events)
        summary = stage.finalize(ctx) or {}
    except Exception as e:
        memory.stop()
        events.emit("stage_failed", stage=stage.name, error=f"{type(e).__name__}: {e}")
        if isinstance(e, (StageFailed, ValueError, TypeError, FileNotFoundError, KeyError)):
            raise
        raise StageFailed(f"stage {stage.name!r} failed: {type(e).__name__}: {e}") from e
    state.complete(summary)
    stage.cleanup(ctx)
    for notice in summary.get("notices", []):  # what a user must hear about (e.g. cells left out)
        events.emit("stage_notice", stage=stage.name, message=str(notice))
    seconds = time.perf_counter() - t0
    stage_peak, worker_peak = memory.stop()
    report = StageReport(stage.name, fp, "computed", n_blocks=n_blocks, computed=len(missing),
                         skipped=len(done), seconds=seconds, summary=summary)
    events.emit("stage_finished", stage=stage.name, n_blocks=n_blocks, computed=len(missing),
                skipped=len(done), seconds=seconds, peak_rss_mb=stage_peak, worker_peak_rss_mb=worker_peak)
    return report


def _repair(name: str, state: StageState, fp: str, info: dict[str, Any], events: EventBus, *,
            verify: bool) -> bool:
    """Check the stage's recorded files; forget damaged blocks (or the whole stage). True if any."""
    bad, other = state.damage(fp, checksums=verify)
    if other:
        events.emit("stage_repaired", stage=name,
                    reason=f"{other[0]}{f' (and {len(other) - 1} more)' if len(other) > 1 else ''}: "
                           "recomputing the stage and the stages that read it")
        state.reset()
        state.begin(fp, info)
        return True
    if bad:
        first = min(bad)
        events.emit("stage_repaired", stage=name, blocks=sorted(bad),
                    reason=f"{len(bad)} damaged block(s) {sorted(bad)[:10]} ({bad[first]}): recomputing them "
                           "and the stages that read them")
        state.forget_blocks(fp, bad, checksums=verify)
        return True
    return False


def _compute_blocks(stage: Stage, ctx: StageContext, missing: list[int], client: Any, events: EventBus) -> None:
    if not missing:
        return
    if stage.where == "client":
        for i in missing:
            try:
                stage.run_block(ctx, i)
            except (ValueError, TypeError, FileNotFoundError, KeyError):
                raise
            except Exception as e:
                raise StageFailed(f"stage {stage.name!r} failed in block {i}: {type(e).__name__}: {e}") from e
            events.emit("block_done", stage=stage.name, block=i)
        return
    tasks = stage.block_tasks(ctx, missing)
    if len(tasks) != len(missing):
        raise RuntimeError(f"stage {stage.name!r} built {len(tasks)} tasks for {len(missing)} blocks")
    if client is None:
        for i, task in zip(missing, tasks, strict=True):
            try:
                (res,) = dask.compute(task, scheduler="sync")
            except Exception as e:
                raise StageFailed(f"stage {stage.name!r} failed in block {i}: {type(e).__name__}: {e}") from e
            events.emit("block_done", stage=stage.name, block=res.get("block", i))
        return
    from distributed import as_completed

    futures = client.compute(tasks)
    index = {f.key: i for f, i in zip(futures, missing, strict=True)}
    try:
        for fut in as_completed(futures):
            try:
                res = fut.result()
            except Exception as e:
                raise StageFailed(
                    f"stage {stage.name!r} failed in block {index[fut.key]}: {type(e).__name__}: {e}"
                ) from e
            events.emit("block_done", stage=stage.name, block=res.get("block", index[fut.key]))
    finally:
        client.cancel([f for f in futures if not f.done()])
