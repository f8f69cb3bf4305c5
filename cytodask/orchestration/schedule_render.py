"""Scheduler entries of a :class:`~cytodask.orchestration.schedule_job.RebuildJob`: pure renderers.

:func:`cron_line` (a crontab line), :func:`systemd_units` (a oneshot service and
a daily timer) and :func:`slurm_entry` (a ``scrontab`` entry) are pure functions
of the job: they return text and touch nothing.
"""

from __future__ import annotations

import re
import shlex

from cytodask.orchestration.schedule_job import RebuildJob

_WALLTIME = re.compile(r"^(?:\d+-)?\d+(?::\d{1,2}){0,2}$|^(?:UNLIMITED|INFINITE)$", re.IGNORECASE)
_MEM = re.compile(r"^\d+[KMGT]?$", re.IGNORECASE)
_PARTITION = re.compile(r"^[A-Za-z0-9_.,-]+$")
_SYSTEMD_PLAIN = re.compile(r"^[A-Za-z0-9_@+=:,./-]+$")


def shell_command(job: RebuildJob) -> str:
    """``mkdir -p LOGDIR && cd WORKDIR && [VAR=value ...] CYTODASK rebuild ...``, quoted for ``sh``."""
    q = shlex.quote
    assign = "".join(f"{k}={q(v)} " for k, v in job.env.items())
    return (f"mkdir -p {q(str(job.log.parent))} && cd {q(str(job.workdir))} && "
            f"{assign}{shlex.join(job.argv)}")


def cron_line(job: RebuildJob) -> str:
    """One crontab line running ``job`` daily at ``job.hour:job.minute``.

    ``MM HH * * * mkdir -p LOGDIR && cd WORKDIR && [VAR=value ...] CYTODASK rebuild SPEC
    --output DIR --wait >> LOG 2>&1 # cytodask:SPEC:DIR``. ``%`` is escaped as ``\\%``
    (cron turns a bare ``%`` into a newline); the trailing comment is ignored by the
    shell and lets :func:`install_cron` replace the line later.
    """
    cmd = f"{shell_command(job)} >> {shlex.quote(str(job.log))} 2>&1 {job.marker}"
    return f"{job.minute} {job.hour} * * * " + cmd.replace("%", r"\%")


def _sd_escape(value: str) -> str:
    return value.replace("%", "%%")


def _sd_word(word: str, *, expands: bool = True) -> str:
    """One systemd word: C-style double quotes when needed, ``%`` → ``%%``, ``$`` → ``$$`` where expanded."""
    if _SYSTEMD_PLAIN.match(word):
        return _sd_escape(word)
    quoted = _sd_escape('"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return quoted.replace("$", "$$") if expands else quoted  # Environment= does not expand $


def systemd_units(job: RebuildJob) -> dict[str, str]:
    """A oneshot ``.service`` and a daily ``.timer`` (``Persistent=true``) for ``job``.

    Returns ``{filename: content}``. ``Persistent=true`` runs a missed rebuild
    (machine off at the scheduled time) at the next boot. ``StandardOutput=append:``
    does not create the log's directory: :func:`schedule` and
    :func:`install_systemd` create it.
    """
    env = "".join(f"Environment={_sd_word(f'{k}={v}', expands=False)}\n" for k, v in job.env.items())
    service = (
        f"# Written by `cytodask schedule`: nightly rebuild of {job.spec}\n"
        f"[Unit]\n"
        f"Description=cytodask rebuild of {_sd_escape(job.name)} into {_sd_escape(str(job.output))}\n"
        f"\n"
        f"[Service]\n"
        f"Type=oneshot\n"
        f"WorkingDirectory={_sd_escape(str(job.workdir))}\n"
        f"{env}"
        f"ExecStart={' '.join(_sd_word(a) for a in job.argv)}\n"
        f"StandardOutput=append:{_sd_escape(str(job.log))}\n"
        f"StandardError=append:{_sd_escape(str(job.log))}\n"
        f"TimeoutStartSec=infinity\n"
    )
    timer = (
        f"# Written by `cytodask schedule`: starts {job.unit}.service daily at {job.hour:02d}:{job.minute:02d}\n"
        f"[Unit]\n"
        f"Description=Nightly cytodask rebuild of {_sd_escape(job.name)} at {job.hour:02d}:{job.minute:02d}\n"
        f"\n"
        f"[Timer]\n"
        f"OnCalendar=*-*-* {job.hour:02d}:{job.minute:02d}:00\n"
        f"Persistent=true\n"
        f"Unit={job.unit}.service\n"
        f"\n"
        f"[Install]\n"
        f"WantedBy=timers.target\n"
    )
    return {f"{job.unit}.service": service, f"{job.unit}.timer": timer}


def slurm_entry(
    job: RebuildJob,
    *,
    walltime: str = "12:00:00",
    partition: str | None = None,
    cpus: int | None = None,
    mem: str | None = None,
    gpus: int | None = None,
) -> str:
    """A SLURM ``scrontab`` entry: ``#SCRON`` option lines, then the cron-style line.

    Parameters
    ----------
    walltime
        ``--time`` (``HH:MM:SS``, ``D-HH:MM:SS``, minutes, ...).
    partition, cpus, mem, gpus
        ``--partition``, ``--cpus-per-task``, ``--mem`` (``64G``) and ``--gres=gpu:N``.

    The job's output goes to ``--output=LOG`` with ``--open-mode=append`` (Slurm
    truncates by default). Slurm opens the log before the job starts, so its
    directory must exist: :func:`schedule` creates it.
    """
    if not _WALLTIME.match(walltime):
        raise ValueError(f"--walltime {walltime!r} is not a Slurm time; use HH:MM:SS or D-HH:MM:SS, e.g. 12:00:00")
    if partition is not None and not _PARTITION.match(partition):
        raise ValueError(f"--partition {partition!r}: use a partition name (letters, digits, _ . - ,)")
    if mem is not None and not _MEM.match(str(mem)):
        raise ValueError(f"--mem {mem!r}: use a number with an optional K/M/G/T suffix, e.g. 64G")
    for flag, n in (("--cpus", cpus), ("--gpus", gpus)):
        if n is not None and (not isinstance(n, int) or n < 1):
            raise ValueError(f"{flag} {n!r}: give a positive whole number")
    if re.search(r"[\s%]", str(job.log)):
        raise ValueError(f"log path {job.log} contains whitespace or '%', which #SCRON --output cannot hold "
                         f"('%' is a Slurm file-name pattern); give --log without them")
    opts = [f"--job-name={job.unit}", f"--time={walltime}", f"--output={job.log}", "--open-mode=append"]
    if partition:
        opts.append(f"--partition={partition}")
    if cpus:
        opts.append(f"--cpus-per-task={cpus}")
    if mem:
        opts.append(f"--mem={mem}")
    if gpus:
        opts.append(f"--gres=gpu:{gpus}")
    lines = [f"#SCRON {o}" for o in opts]
    lines.append(f"{job.minute} {job.hour} * * * {shell_command(job)} {job.marker}")
    return "\n".join(lines)
