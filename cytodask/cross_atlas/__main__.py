"""``python -m cytodask.cross_atlas graphs/cross_atlas.toml [--output DIR]``: run (or resume) a spec whose
stages read other rebuilds' result stores and need no atlas source of their own (``cross_atlas``,
``search_index``).

``cytodask rebuild`` opens the spec's ``[source]`` (an atlas) before anything runs; a cross-atlas spec has
none, so this runner builds the stages without the implicit convert stage and runs them with the same
runner, result store, lock and fingerprints (an unchanged input skips, a killed run resumes).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def run(spec_path: str | Path, *, output: str | Path | None = None) -> list:
    """Run the source-less stages of ``spec_path`` into its ``output_dir`` (or ``output``)."""
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
    with OutputLock(store.root):
        return run_stages(stages, store, spec.config)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m cytodask.cross_atlas", description=__doc__.splitlines()[0])
    ap.add_argument("spec", help="spec TOML, e.g. graphs/cross_atlas.toml")
    ap.add_argument("--output", default=None, help="result directory (default: the spec's output_dir)")
    args = ap.parse_args(argv)
    from cytodask.core.runner import StageFailed

    try:
        reports = run(args.spec, output=args.output)
    except (ValueError, FileNotFoundError, StageFailed) as e:
        print(f"cytodask cross-atlas: error: {e}", file=sys.stderr)
        return 1
    for r in reports:
        print(f"{r.name}: {r.state} {r.summary}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
