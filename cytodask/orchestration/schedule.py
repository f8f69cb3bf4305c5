"""Schedule the nightly rebuild: a crontab line, systemd user units or a SLURM scrontab entry.

A scheduler runs ``cytodask rebuild SPEC --output DIR --wait`` unattended, in a
bare environment (no shell profile, no activated virtualenv, a minimal
``PATH``, the home directory as working directory). So every entry written
here uses absolute paths (spec, output, log, the ``cytodask`` executable of
this installation), changes into the directory ``cytodask schedule`` ran in,
pins the ``${VAR}`` values the spec reads from this shell's environment, and
appends stdout and stderr to a log file (default ``<output>/logs/rebuild.log``).
``--wait`` makes a run that starts while the previous one still holds the
output's lock queue behind it instead of failing.

:func:`schedule` is what ``cytodask schedule`` runs. The job is built in
:mod:`~cytodask.orchestration.schedule_job` (:func:`~cytodask.orchestration.schedule_job.rebuild_job`),
rendered by the pure functions of :mod:`~cytodask.orchestration.schedule_render`
(cron, systemd, Slurm) and installed by :mod:`~cytodask.orchestration.schedule_install`,
whose installers take the command runner (``subprocess.run``) and the unit
directory as parameters so tests never touch a real crontab.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any, Literal

from cytodask.orchestration.schedule_install import Runner, install_cron, install_slurm, install_systemd
from cytodask.orchestration.schedule_job import RebuildJob, rebuild_job
from cytodask.orchestration.schedule_render import cron_line, slurm_entry, systemd_units

Format = Literal["cron", "systemd", "slurm"]
FORMATS: tuple[Format, ...] = ("cron", "systemd", "slurm")


def schedule(
    spec: str | os.PathLike[str],
    *,
    at: str,
    fmt: Format = "cron",
    output: str | os.PathLike[str] | None = None,
    log: str | os.PathLike[str] | None = None,
    install: bool = False,
    unit_dir: str | os.PathLike[str] | None = None,
    home: str | os.PathLike[str] | None = None,
    runner: Runner = subprocess.run,
    echo: Callable[[str], None] = print,
    note: Callable[[str], None] = lambda s: print(s, file=sys.stderr),
    **slurm: Any,
) -> RebuildJob:
    """Print (``echo``) the scheduler entry for a nightly rebuild, and install it with ``install``.

    The entry is printed before installing, so when installation fails the
    error can point at text the user can install by hand. ``slurm`` takes the
    options of :func:`slurm_entry` (``walltime``, ``partition``, ``cpus``,
    ``mem``, ``gpus``) and is rejected for the other formats. For systemd and
    Slurm the log directory is created when installing (they open the log before the job runs);
    printing alone creates nothing and says to create it.
    """
    if fmt not in FORMATS:
        raise ValueError(f"--format {fmt!r} is not one of {list(FORMATS)}")
    given = [k for k, v in slurm.items() if v is not None]
    if fmt != "slurm" and given:
        raise ValueError(f"--{given[0]} only applies to --format slurm; drop it or use --format slurm")
    if unit_dir is not None and fmt != "systemd":
        raise ValueError("--unit-dir only applies to --format systemd; drop it or use --format systemd")
    job = rebuild_job(spec, at=at, output=output, log=log)
    slurm_opts = {k: v for k, v in slurm.items() if v is not None}
    if fmt == "cron":
        echo(cron_line(job))
    elif fmt == "slurm":
        echo(slurm_entry(job, **slurm_opts))
    else:
        echo("\n".join(f"# ---- {fname} ----\n{text}" for fname, text in systemd_units(job).items()).rstrip("\n"))
    if fmt != "cron" and not job.log.parent.is_dir():  # the cron line makes it itself (mkdir -p)
        if install:  # printing alone writes nothing (issue 14.14)
            job.log.parent.mkdir(parents=True, exist_ok=True)
            note(f"created the log directory {job.log.parent}")
        else:
            note(f"the log directory {job.log.parent} does not exist yet: {fmt} opens the log before the job runs, "
                 f"so run `mkdir -p {job.log.parent}` before installing this entry by hand (--install does it)")
    for k in job.env:
        note(f"pinned {k}={job.env[k]} (the spec reads ${{{k}}}; the scheduler does not see this shell's environment)")
    if install:
        if fmt == "cron":
            note(install_cron(job, runner=runner))
        elif fmt == "slurm":
            note(install_slurm(job, runner=runner, **slurm_opts))
        else:
            note(install_systemd(job, unit_dir=unit_dir, home=home))
    return job
