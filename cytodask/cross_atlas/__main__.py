"""``python -m cytodask.cross_atlas graphs/cross_atlas.toml [--output DIR] [--rebuild ATLAS_SPEC ...]``: run
(or resume) a spec whose stages read other rebuilds' result stores and need no atlas source of their own
(``cross_atlas``, ``search_index``); ``--rebuild`` first rebuilds those atlas specs, in order (the nightly
chain, :mod:`cytodask.cross_atlas.nightly`); ``--schedule HH:MM`` prints (``--install``: installs) the
scheduler entry of that chain.

``cytodask rebuild`` opens the spec's ``[source]`` (an atlas) before anything runs; a cross-atlas spec has
none, so this runner builds the stages without the implicit convert stage and runs them with the same
runner, result store, lock and fingerprints (an unchanged input skips, a killed run resumes).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path


def run(spec_path: str | Path, *, output: str | Path | None = None, wait: float | None = 0) -> list:
    """Run the source-less stages of ``spec_path`` into its ``output_dir`` (or ``output``); ``wait``: seconds
    to wait for another run holding the output (``None``: forever)."""
    from cytodask.core.lock import OutputLock
    from cytodask.core.runner import run_stages
    from cytodask.core.store import ResultStore
    from cytodask.orchestration.spec import load_spec

    spec = load_spec(spec_path, overrides={"output_dir": Path(output)} if output else None)
    stages = spec.build(skip_types=("convert",))
    needs_source = [s.name for s in stages if "convert" in s.inputs]
    if needs_source:
        raise ValueError(f"{spec_path}: stage(s) {needs_source} read the atlas itself; run this spec with "
                         f"`cytodask rebuild` and a [source]")
    store = ResultStore(spec.config.output_dir, fsync=spec.config.checkpoint.fsync)
    store.claim(inputs=[p for s in stages for p in s.external_inputs().values()])
    with OutputLock(store.root, wait=wait):
        return run_stages(stages, store, spec.config)


def _schedule(args: argparse.Namespace) -> int:
    from cytodask.cross_atlas.nightly import nightly_job
    from cytodask.orchestration.schedule_install import install_cron, install_slurm, install_systemd
    from cytodask.orchestration.schedule_render import cron_line, slurm_entry, systemd_units

    job = nightly_job(args.spec, rebuild=args.rebuild, at=args.schedule, output=args.output)
    if args.format == "cron":
        print(cron_line(job))
    elif args.format == "slurm":
        print(slurm_entry(job))
    else:
        print("\n".join(f"# ---- {f} ----\n{t}" for f, t in systemd_units(job).items()).rstrip("\n"))
    for k, v in job.env.items():
        print(f"pinned {k}={v} (a spec of the chain reads ${{{k}}})", file=sys.stderr)
    if args.install:
        job.log.parent.mkdir(parents=True, exist_ok=True)
        install = {"cron": lambda: install_cron(job, runner=subprocess.run),
                   "slurm": lambda: install_slurm(job, runner=subprocess.run),
                   "systemd": lambda: install_systemd(job)}[args.format]
        print(install(), file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m cytodask.cross_atlas", description=__doc__.splitlines()[0])
    ap.add_argument("spec", help="spec TOML, e.g. graphs/cross_atlas.toml")
    ap.add_argument("--output", default=None, help="result directory (default: the spec's output_dir)")
    ap.add_argument("--rebuild", action="append", default=[], metavar="ATLAS_SPEC",
                    help="rebuild this atlas spec first (repeat, in order: the nightly chain)")
    ap.add_argument("--wait", action="store_true", help="wait for a run holding an output instead of failing")
    ap.add_argument("--schedule", metavar="HH:MM", default=None,
                    help="print the daily scheduler entry of this chain instead of running it")
    ap.add_argument("--format", choices=("cron", "systemd", "slurm"), default="cron", help="with --schedule")
    ap.add_argument("--install", action="store_true", help="with --schedule: install the entry")
    args = ap.parse_args(argv)
    from cytodask.core.lock import OutputLockedError
    from cytodask.core.runner import StageFailed
    from cytodask.cross_atlas.nightly import NightlyStepFailed, nightly

    try:
        if args.schedule is not None:
            return _schedule(args)
        if args.install:
            raise ValueError("--install only applies with --schedule HH:MM")
        if args.rebuild:
            done = nightly(args.spec, rebuild=args.rebuild, output=args.output, wait=None if args.wait else 0)
            reports = done[str(args.spec)]
        else:
            reports = run(args.spec, output=args.output, wait=None if args.wait else 0)
    except (ValueError, FileNotFoundError, StageFailed, NightlyStepFailed, OutputLockedError, RuntimeError) as e:
        print(f"cytodask cross-atlas: error: {e}", file=sys.stderr)
        return 1
    for r in reports:
        print(f"{r.name}: {r.state} {r.summary}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
