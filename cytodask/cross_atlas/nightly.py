"""The nightly chain: rebuild the atlases, then cross-atlas and the search index, in one resumable run.

``python -m cytodask.cross_atlas graphs/cross_atlas.toml --rebuild graphs/cima.toml
--rebuild graphs/inflammation.toml --rebuild graphs/scatlas.toml`` runs, in this order,
``cytodask rebuild`` of each atlas spec (each into its own ``output_dir``) and then the cross-atlas
spec (:func:`cytodask.cross_atlas.__main__.run`). Every step is the ordinary resumable run: a stage
whose inputs and parameters did not change is skipped (a night with no new atlas file computes
nothing: the rebuilds reuse every block, their manifests stay as they were, and the cross-atlas
stages, fingerprinted on those manifests, skip too); a killed night finishes the missing blocks the
next night. A failed step stops the chain — the steps after it read its results, so they do not run
on stale or half-written ones — and the error names the step.

``--schedule HH:MM [--format cron|systemd|slurm] [--install]`` prints (and installs) the scheduler
entry of the whole chain: the entries of ``cytodask schedule`` (absolute paths, pinned ``${VAR}``
values of every spec in the chain, a log, ``--wait``) with the chain's command in place of
``cytodask rebuild``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cytodask.orchestration.schedule_job import RebuildJob, rebuild_job, spec_variables


class NightlyStepFailed(RuntimeError):
    """A step of the nightly chain failed; the steps after it did not run."""


def nightly(spec: str | os.PathLike[str], *, rebuild: Sequence[str | os.PathLike[str]] = (),
            output: str | os.PathLike[str] | None = None, wait: float | None = None,
            echo: Callable[[str], None] | None = print) -> dict[str, list[Any]]:
    """Rebuild each spec of ``rebuild`` in order, then run the cross-atlas ``spec``.

    Parameters
    ----------
    spec
        The cross-atlas spec (``graphs/cross_atlas.toml``): source-less stages reading the rebuilds.
    rebuild
        Atlas specs to rebuild first, in order (each into its spec's ``output_dir``).
    output
        Result directory of ``spec`` (default its ``output_dir``).
    wait
        Seconds to wait for another run holding an output (``None``: wait, as a scheduled run should).
    echo
        Where progress lines go (``None``: silent).

    Returns
    -------
    dict
        Step (spec path) → its stage reports, in the order run.

    Raises
    ------
    NightlyStepFailed
        Naming the step that failed and the steps left unrun (rerun the chain: it resumes).
    """
    from cytodask.cross_atlas.__main__ import run
    from cytodask.orchestration.rebuild import rebuild as rebuild_atlas

    say = echo or (lambda _: None)
    steps = [("rebuild", str(s)) for s in rebuild] + [("cross_atlas", str(spec))]
    done: dict[str, list[Any]] = {}
    for i, (kind, path) in enumerate(steps, 1):
        say(f"nightly step {i}/{len(steps)}: {'cytodask rebuild' if kind == 'rebuild' else 'cross-atlas'} {path}")
        try:
            if kind == "rebuild":
                reports = rebuild_atlas(path, wait=wait, echo=echo)
            else:
                reports = run(path, output=output, wait=wait)
        except Exception as e:
            left = [p for _, p in steps[i:]]
            raise NightlyStepFailed(f"nightly step {i}/{len(steps)} ({path}) failed: {type(e).__name__}: {e}. "
                                    f"Not run: {left or 'nothing'}. Fix the cause and rerun the chain: finished "
                                    f"stages are skipped, this one resumes") from e
        done[path] = reports
        say(f"  {sum(r.state == 'skipped' for r in reports)} of {len(reports)} stages up to date")
    return done


@dataclass(frozen=True)
class NightlyJob(RebuildJob):
    """A :class:`RebuildJob` whose command is the chain (the schedule renderers and installers take it)."""

    rebuild: tuple[Path, ...] = ()

    @property
    def argv(self) -> list[str]:
        out = [*self.command, str(self.spec), "--output", str(self.output), "--wait"]
        for s in self.rebuild:
            out += ["--rebuild", str(s)]
        return out

    @property
    def unit(self) -> str:
        return f"cytodask-nightly-{self.name}"


def nightly_job(spec: str | os.PathLike[str], *, rebuild: Sequence[str | os.PathLike[str]], at: str,
                output: str | os.PathLike[str] | None = None, log: str | os.PathLike[str] | None = None,
                workdir: str | os.PathLike[str] | None = None) -> NightlyJob:
    """The scheduler job of the chain, validated now (every spec loads, the time parses)."""
    from cytodask.orchestration.spec import load_spec

    paths = [Path(os.path.abspath(os.path.expanduser(s))) for s in rebuild]
    names: dict[str, None] = {}
    for p in [*paths, Path(os.path.abspath(os.path.expanduser(spec)))]:
        if not p.is_file():
            raise ValueError(f"spec {p} does not exist; give the path of a spec (TOML), e.g. graphs/cima.toml")
        load_spec(p)
        names.update(dict.fromkeys(spec_variables(p)))
    env = {n: os.environ[n] for n in names if n in os.environ}
    base = rebuild_job(spec, at=at, output=output, log=log, workdir=workdir, env=env,
                       command=[str(Path(os.path.abspath(sys.executable))), "-m", "cytodask.cross_atlas"])
    fields = {k: getattr(base, k) for k in RebuildJob.__dataclass_fields__}
    if log is None:
        fields["log"] = base.output / "logs" / "nightly.log"
    return NightlyJob(**fields, rebuild=tuple(paths))
