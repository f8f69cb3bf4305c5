"""``cytodask`` command line: convert, rebuild, run, status, verify, demo, schedule.

Failures exit non-zero with a one-line reason (``--traceback`` shows the rest).
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cytodask.core.events import Event

_WRITTEN = [0]  # blocks written and recorded by this command (for the disk-full message)


def os_error_message(e: BaseException, written: int) -> str | None:
    """What, where and how to fix for the OS errors a user can act on (never a raw errno); else ``None``."""
    cur: BaseException | None = e
    while cur is not None and not isinstance(cur, OSError):
        cur = cur.__cause__ or cur.__context__
    if cur is None or cur.errno is None:
        return None
    where = cur.filename or "the output"
    if cur.errno in (errno.ENOSPC, errno.EDQUOT):
        return (f"no space left on the device (or quota) holding {where}: {written} block(s) were written and "
                "recorded by this run and are kept; free space (or choose an output on a larger disk) and run the "
                "same command again: it resumes after them")
    if cur.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        why = "a read-only file system" if cur.errno == errno.EROFS else "permission denied"
        return (f"cannot write {where}: {why}; choose an output you can write (--output / STORE) or ask the "
                "directory's owner for write permission")
    if cur.errno in (errno.EEXIST, errno.ENOTDIR):
        return (f"cannot create a directory at {where}: a file is in the way (the path or one of its parents is a "
                "regular file); choose an output path whose parents are directories")
    return None


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("cytodask")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown (not installed; pip install -e .)"


def blocks(n: int | None) -> str:
    """``"1 block"``, ``"3 blocks"``."""
    return f"{n} block" if n == 1 else f"{n} blocks"


class _Progress:
    """Rich progress bars fed by run events (one bar per stage)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty() or os.environ.get("CYTODASK_PROGRESS") == "1"
        self._bar: Any = None
        self._tasks: dict[str, Any] = {}

    def __enter__(self) -> _Progress:
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._bar = Progress(TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("blocks"), TimeElapsedColumn(), transient=False)
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def __call__(self, ev: Event) -> None:
        kind, stage = ev["event"], ev.get("stage")
        if kind == "block_done":
            _WRITTEN[0] += 1
        if kind in ("stage_repaired", "stage_notice"):  # always said, bars or not
            print(f"  {stage}: {ev.get('reason') or ev.get('message')}", file=sys.stderr)
            return
        if self._bar is None:
            if kind == "stage_finished":
                print(f"  {stage}: {blocks(ev['computed'])} computed, {ev['skipped']} skipped "
                      f"({ev['seconds']:.1f} s)", file=sys.stderr)
            elif kind == "stage_skipped":
                print(f"  {stage}: up to date, skipped", file=sys.stderr)
            return
        if kind == "stage_started":
            self._tasks[stage] = self._bar.add_task(stage, total=ev["n_blocks"], completed=ev["skipped"])
        elif kind == "block_done" and stage in self._tasks:
            self._bar.advance(self._tasks[stage])
        elif kind == "stage_skipped":
            n = ev.get("n_blocks") or 1
            self._bar.add_task(f"{stage} (up to date)", total=n, completed=n)


def _cmd_convert(args: argparse.Namespace) -> int:
    from cytodask.core.events import EventBus
    from cytodask.ingest import convert, open_source

    source = open_source(args.input, layer=args.layer)
    counts = "strict" if args.strict else "off" if args.allow_non_counts else "warn"
    with _Progress(not args.quiet) as progress:
        report = convert(source, args.store, batch_size=args.batch_size, counts=counts,
                         events=EventBus(callbacks=[progress]), full_hash=args.full_hash)
    s = report.summary
    word = "already up to date" if report.state == "skipped" else f"{blocks(report.computed)} written"
    print(f"{args.store}: {s.get('n_obs', '?')} cells × {s.get('n_vars', '?')} genes, {word}")
    return 0


def _cmd_rebuild(args: argparse.Namespace) -> int:
    from cytodask.orchestration.rebuild import rebuild

    with _Progress(not args.quiet) as progress:
        reports = rebuild(args.spec, output=args.output, scheduler=args.scheduler,
                          wait=None if args.wait else 0, full_hash=args.full_hash, callbacks=[progress],
                          verify=args.verify, replace=args.replace)
    computed = sum(r.computed for r in reports)
    print(f"rebuild done: {len(reports)} stages, {blocks(computed)} computed, "
          f"{sum(r.skipped for r in reports)} reused")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    """``cytodask run INPUT.h5ad``: :meth:`cytodask.Pipeline.process_submission` from the command line."""
    from cytodask import Config, Pipeline

    config = Config(**{k: v for k, v in (("batch_size", args.batch_size), ("scheduler_address", args.scheduler),
                                         ("n_rand", args.n_rand), ("cluster", args.cluster)) if v is not None})
    output = args.output if args.output is not None else config.output_dir
    kw = {k: v for k, v in (("sample", args.sample), ("group_col", args.group_col), ("group1", args.group1),
                            ("group2", args.group2), ("variables", args.variables)) if v is not None}
    res = Pipeline(config).process_submission(
        h5ad_path=args.input, output_dir=output, layer=args.layer, signatures=args.signatures,
        aggregation_levels=args.levels, analyses=args.analyses, min_cells=args.min_cells, method=args.method,
        echo=None if args.quiet else (lambda line: print(line, file=sys.stderr)),
        **({"replace": True} if args.replace else {}), **kw)
    computed = sum(r.computed for r in res.reports)
    print(f"run done: {len(res.reports)} stages, {blocks(computed)} computed, "
          f"{sum(r.skipped for r in res.reports)} reused; results in {res.output_dir}")
    for name, act in res.activity.items():
        print(f"  {name}: {act.n_obs} samples x {act.n_vars} signatures")
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    from cytodask.orchestration.rebuild import status

    rows = status(args.dir, spec=args.spec)
    if not rows:
        print(f"{args.dir}: no stages yet")
        return 0
    width = max(len(r.name) for r in rows)
    for r in rows:
        detail = ""
        if r.state == "partial":
            detail = f" {r.done} of {r.n_blocks if r.n_blocks is not None else '?'} blocks"
        elif r.state == "complete":
            detail = f" ({blocks(r.n_blocks)})"
        elif r.state == "stale" and not r.problems:  # else the problems below say why
            detail = " (inputs, parameters or code changed: will recompute)"
        elif r.state == "damaged":
            detail = f" ({r.problems[0]}; the next rebuild recomputes it)"
        print(f"{r.name:<{width}}  {r.state}{detail}")
        for problem in r.problems[1 if r.state == "damaged" else 0:]:
            print(f"{'':<{width}}  ! {problem}")
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    from cytodask.orchestration.rebuild import verify

    problems = verify(args.dir)
    for stage, what in problems:
        print(f"{stage}: {what}")
    if problems:
        print(f"{args.dir}: {len(problems)} problem(s); run the rebuild again (or `cytodask convert` for an atlas "
              "store) to recompute the damaged blocks", file=sys.stderr)
        return 1
    print(f"{args.dir}: every recorded file has its recorded size and checksum")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    if args.atlas is not None:
        from cytodask.demo.run import run_world

        return run_world(args.atlas, output=Path(args.output or f"demo-output/synthetic/{args.atlas}"),
                         n_cells=args.cells, n_genes=args.genes, size=args.size, seed=args.seed, quiet=args.quiet,
                         progress_factory=_Progress)
    from cytodask.demo.run import run_demo

    return run_demo(output=Path(args.output or "demo-output"), n_cells=args.cells or 50_000,
                    n_genes=args.genes or 20_000, spec=args.spec, quiet=args.quiet, progress_factory=_Progress)


def _cmd_schedule(args: argparse.Namespace) -> int:
    from cytodask.orchestration.schedule import schedule

    schedule(args.spec, at=args.at, fmt=args.format, output=args.output, log=args.log, install=args.install,
             unit_dir=args.unit_dir, walltime=args.walltime, partition=args.partition, cpus=args.cpus,
             mem=args.mem, gpus=args.gpus)
    return 0


def _cmd_search(args: argparse.Namespace) -> int:
    import json
    import os

    from cytodask.search import build_index, search
    from cytodask.search.rank import check_query

    check_query(args.query)  # before any index is read or built
    where = args.index or os.environ.get("CYTODASK_SEARCH_INDEX")
    if where is None:
        print("cytodask search: no --index (or CYTODASK_SEARCH_INDEX): searching the package data only",
              file=sys.stderr)
    table = search(where if where else build_index(), args.query, types=args.type, limit=args.limit)
    if args.json:
        print(json.dumps(table.to_dict(orient="records"), allow_nan=False, ensure_ascii=False))
    for row in [] if args.json else table.itertuples():
        how = row.matched_on if row.matched == row.name else f"{row.matched_on}: {row.matched}"
        parents = f"  (in {' > '.join(row.parents)})" if row.parents else ""
        print(f"{row.score:7.2f}  {row.type:<11}  {row.name}  [{how}]{parents}")
    if table.empty and not args.json:
        print(f"no match for {args.query!r}", file=sys.stderr)
    return 0 if len(table) else 1


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cytodask", description="CytoAtlas pipeline on Dask and GPUs.")
    p.add_argument("--traceback", action="store_true", help="show the full traceback on errors")
    p.add_argument("--version", action="version", version=f"cytodask {_version()}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    from cytodask.ingest.formats import SUPPORTED  # no heavy imports: --help stays fast

    c = sub.add_parser("convert", help="convert a source (file, 10x, Loom, URL, census:, synthetic:) to an atlas store",
                       description=f"Convert a source into an atlas store (resumable; unchanged source = no-op). "
                                   f"Sources: {SUPPORTED}.")
    c.add_argument("input", help="path, URL, census:[VERSION][?QUERY] (e.g. 'census:stable?tissue=blood"
                                 "&cell_type=B cell&max_cells=10000') or synthetic:ATLAS (e.g. 'synthetic:cima')")
    c.add_argument("store", help="output atlas store (STORE.zarr)")
    c.add_argument("--layer", default=None, help="layer holding raw counts (default: X)")
    c.add_argument("--batch-size", type=int, default=10_000, help="cells per block (default 10000; the spec's "
                   "[config] batch_size)")
    c.add_argument("--block-cells", type=int, dest="batch_size", help=argparse.SUPPRESS)  # 0.1 spelling
    mode = c.add_mutually_exclusive_group()
    mode.add_argument("--strict", action="store_true", help="refuse non-integer values (default: warn once)")
    mode.add_argument("--allow-non-counts", action="store_true", help="no count checks at all")
    c.add_argument("--full-hash", action="store_true",
                   help="fingerprint the input by its full content (default: size, times and sampled bytes)")
    c.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    c.set_defaults(func=_cmd_convert)

    r = sub.add_parser("rebuild", help="run or resume an atlas rebuild from a spec")
    r.add_argument("spec", help="rebuild spec (TOML), e.g. graphs/demo.toml")
    r.add_argument("--output", default=None, help="result directory (default: the spec's output_dir)")
    r.add_argument("--scheduler", default=None, help="address of an existing Dask scheduler")
    r.add_argument("--wait", action="store_true", help="wait for another run on the same output to finish")
    r.add_argument("--full-hash", action="store_true", help="fingerprint inputs by full content")
    r.add_argument("--verify", action="store_true",
                   help="compare the checksums of every recorded file first (sizes are always checked)")
    r.add_argument("--replace", action="store_true",
                   help="replace the results of another source that the output directory holds")
    r.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    r.set_defaults(func=_cmd_rebuild)

    ru = sub.add_parser("run", help="analyse an .h5ad without a spec (Pipeline.process_submission)",
                        description="Analyse an .h5ad of raw counts: convert, pseudobulk per level, activity per "
                                    "signature and the chosen analyses, exported under OUTPUT (the stages of "
                                    "Pipeline.process_submission; a rerun reuses finished work).")
    ru.add_argument("input", help="the .h5ad file (raw counts in X, --layer NAME, or --layer raw for .raw)")
    ru.add_argument("--signatures", nargs="+", default=["CytoSig"], metavar="SIG",
                    help="CytoSig, SecAct or signature files (default CytoSig)")
    ru.add_argument("--analyses", nargs="+", default=["activity"], metavar="NAME",
                    help="activity (always run), differential, correlation, … (default activity)")
    ru.add_argument("--levels", nargs="+", default=["celltype_L2"], metavar="LEVEL",
                    help="aggregation levels: obs columns, celltype_L1…L4 or pseudobulk (default celltype_L2)")
    ru.add_argument("--output", default=None, help="result directory (default: results)")
    ru.add_argument("--layer", default=None, help="layer holding the raw counts (default X; raw = .raw)")
    ru.add_argument("--sample", default=None, help="obs column of the samples (default: detected)")
    ru.add_argument("--group-col", default=None, help="differential: obs column of the compared groups")
    ru.add_argument("--group1", default=None, help="differential: the case level (default: detected)")
    ru.add_argument("--group2", default=None, help="differential: the control level (default: detected)")
    ru.add_argument("--variables", nargs="+", default=None, help="correlation: numeric per-sample obs columns")
    ru.add_argument("--min-cells", type=int, default=10, help="fewest cells of a pseudobulk group (default 10)")
    ru.add_argument("--method", choices=["analytic", "permutation"], default="analytic",
                    help="activity significance: closed form (default) or --n-rand permutations")
    ru.add_argument("--n-rand", type=int, default=None, help="permutations for --method permutation (default 1000)")
    ru.add_argument("--batch-size", type=int, default=None, help="cells per block (default 10000)")
    ru.add_argument("--scheduler", default=None, help="address of an existing Dask scheduler")
    ru.add_argument("--cluster", choices=["auto", "local", "cuda", "slurm", "none"], default=None,
                    help="cluster to start (default auto; none = in this process)")
    ru.add_argument("--replace", action="store_true",
                    help="replace the results of another source that the output directory holds")
    ru.add_argument("-q", "--quiet", action="store_true", help="print only the summary")
    ru.set_defaults(func=_cmd_run)

    v = sub.add_parser("verify", help="check every recorded file of a result directory or atlas store")
    v.add_argument("dir", help="result directory (or atlas store)")
    v.set_defaults(func=_cmd_verify)

    s = sub.add_parser("status", help="what each stage of a result directory has done")
    s.add_argument("dir", help="result directory")
    s.add_argument("--spec", default=None, help="judge staleness against this spec (default: the last run's)")
    s.set_defaults(func=_cmd_status)

    d = sub.add_parser("demo", help="build the embedded demo atlas and run graphs/demo.toml on it")
    d.add_argument("--atlas", choices=("cima", "inflammation", "scatlas"), default=None,
                   help="write this synthetic-world atlas (h5ad, sample tables, truth.json) instead of the demo run")
    d.add_argument("--output", default=None, help="directory for the atlas and results (default demo-output; "
                   "with --atlas: demo-output/synthetic/ATLAS)")
    d.add_argument("--cells", type=int, default=None, help="cells (default 50000; with --atlas: its --size)")
    d.add_argument("--genes", type=int, default=None, help="genes (default 20000; with --atlas: its --size)")
    d.add_argument("--size", choices=("unit", "ci", "bench"), default=None,
                   help="with --atlas: a named size (unit <= 20k cells, ci <= 100k, bench 1M; default unit)")
    d.add_argument("--seed", type=int, default=0, help="with --atlas: the seed (default 0)")
    d.add_argument("--spec", default=None, help="rebuild spec (default: graphs/demo.toml of this checkout)")
    d.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    d.set_defaults(func=_cmd_demo)

    sc = sub.add_parser("schedule", help="print (or install) a nightly rebuild for cron, systemd or SLURM")
    sc.add_argument("spec", help="rebuild spec (TOML), e.g. graphs/demo.toml")
    sc.add_argument("--at", required=True, help="time of day, HH:MM (00:00-23:59)")
    sc.add_argument("--format", choices=["cron", "systemd", "slurm"], default="cron",
                    help="crontab line, systemd user service + timer, or SLURM scrontab entry (default cron)")
    sc.add_argument("--output", default=None, help="result directory (default: the spec's output_dir)")
    sc.add_argument("--log", default=None, help="log file (default: OUTPUT/logs/rebuild.log)")
    sc.add_argument("--install", action="store_true",
                    help="add to crontab / scrontab, or write the systemd units (systemctl is not run)")
    sc.add_argument("--unit-dir", default=None,
                    help="systemd: where to write the units (default ~/.config/systemd/user)")
    sc.add_argument("--walltime", default=None, help="slurm: --time of the job (default 12:00:00)")
    sc.add_argument("--partition", default=None, help="slurm: partition")
    sc.add_argument("--cpus", type=int, default=None, help="slurm: --cpus-per-task")
    sc.add_argument("--mem", default=None, help="slurm: memory, e.g. 64G")
    sc.add_argument("--gpus", type=int, default=None, help="slurm: GPUs (--gres=gpu:N)")
    sc.set_defaults(func=_cmd_schedule)

    se = sub.add_parser("search", help="search signatures, genes, cell types, diseases, organs, cancer types",
                        description="Ranked search of a search index (exact 100, alias 90, prefix 80+, contains "
                                    "60+, fuzzy within 2 edits ≤ 40, type boosts). Exit status 1: no match.")
    se.add_argument("query", help="a name, alias or part of one (e.g. IFNG, TNFA, 'CD8 T', lupus)")
    se.add_argument("--type", action="append", default=None, metavar="T",
                    help="only this type (repeatable): cytosig, secact, signature, gene, cell_type, disease, "
                         "organ, cancer_type")
    se.add_argument("--index", default=None, metavar="DIR",
                    help="a search_index stage folder (RESULTS/stages/NAME) or a saved index "
                         "(default: $CYTODASK_SEARCH_INDEX, else the package data only)")
    se.add_argument("--limit", type=int, default=20, help="most results (default 20)")
    se.add_argument("--json", action="store_true", help="print the results as JSON")
    se.set_defaults(func=_cmd_search)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _WRITTEN[0] = 0
    warnings.filterwarnings("ignore", message=".*autosharding.*")
    warnings.filterwarnings("ignore", message=".*Consolidated metadata.*")
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("cytodask: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    except Exception as e:
        if args.traceback:
            raise
        msg = os_error_message(e, _WRITTEN[0]) or (str(e).splitlines()[0] if str(e) else type(e).__name__)
        print(f"cytodask: error: {msg}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
