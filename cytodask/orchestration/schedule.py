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

The renderers (:func:`cron_line`, :func:`systemd_units`, :func:`slurm_entry`)
are pure functions of a :class:`RebuildJob`; the installers take the command
runner (``subprocess.run``) and the unit directory as parameters so tests never
touch a real crontab.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Format = Literal["cron", "systemd", "slurm"]
FORMATS: tuple[Format, ...] = ("cron", "systemd", "slurm")
Runner = Callable[..., Any]
"""Called like ``subprocess.run(argv, input=..., capture_output=True, text=True, timeout=...)``."""

MARKER = "# cytodask:"
_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-[^}]*)?\}")  # as in cytodask.orchestration.spec
_WALLTIME = re.compile(r"^(?:\d+-)?\d+(?::\d{1,2}){0,2}$|^(?:UNLIMITED|INFINITE)$", re.IGNORECASE)
_MEM = re.compile(r"^\d+[KMGT]?$", re.IGNORECASE)
_PARTITION = re.compile(r"^[A-Za-z0-9_.,-]+$")
_SYSTEMD_PLAIN = re.compile(r"^[A-Za-z0-9_@+=:,./-]+$")
_DISABLED = re.compile(r"^#(?:DISABLED|BAD): ")  # how scrontab -l shows lines it turned off
TOOL_TIMEOUT = 60.0


def parse_time(at: str) -> tuple[int, int]:
    """``"HH:MM"`` (00:00–23:59) → ``(hour, minute)``."""
    m = _TIME.match(str(at).strip())
    if not m or int(m.group(1)) > 23 or int(m.group(2)) > 59:
        raise ValueError(f"--at {at!r} is not a time of day; give HH:MM between 00:00 and 23:59 "
                         f"(24-hour clock), e.g. --at 02:30")
    return int(m.group(1)), int(m.group(2))


def rebuild_command() -> list[str]:
    """The ``cytodask`` of this installation, as an absolute argv prefix.

    The console script next to ``sys.executable`` (the virtualenv's ``bin/``;
    symlinks are kept so the virtualenv stays active), else
    ``sys.executable -m cytodask.cli``.
    """
    exe = Path(os.path.abspath(sys.executable))
    script = exe.parent / "cytodask"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [str(exe), "-m", "cytodask.cli"]


@dataclass(frozen=True)
class RebuildJob:
    """Everything a scheduler entry needs, resolved to absolute paths.

    Build it with :func:`rebuild_job`, which validates the spec and the time.
    """

    spec: Path
    output: Path
    log: Path
    workdir: Path
    hour: int
    minute: int
    name: str
    command: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)

    @property
    def argv(self) -> list[str]:
        """``cytodask rebuild SPEC --output DIR --wait`` with absolute paths."""
        return [*self.command, "rebuild", str(self.spec), "--output", str(self.output), "--wait"]

    @property
    def unit(self) -> str:
        """Unit / job name: ``cytodask-rebuild-<spec name>``."""
        return f"cytodask-rebuild-{self.name}"

    @property
    def marker(self) -> str:
        """Trailing comment that identifies this job's line in a crontab / scrontab."""
        return f"{MARKER}{self.spec}:{self.output}"


def rebuild_job(
    spec: str | os.PathLike[str],
    *,
    at: str,
    output: str | os.PathLike[str] | None = None,
    log: str | os.PathLike[str] | None = None,
    workdir: str | os.PathLike[str] | None = None,
    command: list[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> RebuildJob:
    """Resolve and validate a nightly rebuild of ``spec`` at ``at``.

    Parameters
    ----------
    spec
        Rebuild spec (TOML); loaded and validated now, so a broken spec fails
        here rather than at 02:30.
    at
        Time of day, ``"HH:MM"``.
    output
        Result directory (default: the spec's ``config.output_dir``).
    log
        Log file (default ``<output>/logs/rebuild.log``).
    workdir
        Directory the job changes into (default: the current directory).
    command
        argv prefix that runs cytodask (default :func:`rebuild_command`).
    env
        Variables to set for the job (default: the ``${VAR}`` names the spec
        uses that are set in this environment — a scheduler would not see them).
    """
    from cytodask.orchestration.spec import load_spec

    hour, minute = parse_time(at)
    spec_path = Path(os.path.abspath(os.path.expanduser(spec)))
    if not spec_path.is_file():
        raise ValueError(f"spec {spec_path} does not exist; give the path of a rebuild spec (TOML), "
                         f"e.g. graphs/demo.toml")
    loaded = load_spec(spec_path)
    wd = Path(os.path.abspath(os.path.expanduser(workdir or os.getcwd())))
    out = Path(os.path.expanduser(output)) if output is not None else Path(loaded.config.output_dir)
    out = Path(os.path.abspath(out if out.is_absolute() else wd / out))
    log_path = Path(os.path.abspath(os.path.expanduser(log))) if log is not None else out / "logs" / "rebuild.log"
    if env is None:
        names = dict.fromkeys(_VAR.findall(spec_path.read_text()))
        env = {n: os.environ[n] for n in names if n in os.environ}
    for p in (spec_path, out, log_path, wd):
        if "\n" in str(p) or "\r" in str(p):
            raise ValueError(f"path {str(p)!r} contains a line break, which no scheduler entry can hold; rename it")
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", spec_path.stem).strip("-.") or "spec"
    return RebuildJob(spec=spec_path, output=out, log=log_path, workdir=wd, hour=hour, minute=minute, name=name,
                      command=tuple(command or rebuild_command()), env=dict(env))


def _shell_command(job: RebuildJob) -> str:
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
    cmd = f"{_shell_command(job)} >> {shlex.quote(str(job.log))} 2>&1 {job.marker}"
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
    lines.append(f"{job.minute} {job.hour} * * * {_shell_command(job)} {job.marker}")
    return "\n".join(lines)


def merge_entry(existing: str, entry: str, marker: str, *, block_prefix: str | None = None) -> str:
    """Put ``entry`` into crontab text ``existing``, replacing the lines that end with ``marker``.

    Every other line is kept as it is. The first earlier entry is replaced in
    place (later duplicates dropped); with none, ``entry`` is appended. With
    ``block_prefix`` (``"#SCRON"``) the option lines directly above a replaced
    line go with it (also when Slurm listed them as ``#DISABLED:`` / ``#BAD:``).
    """
    def is_option(line: str) -> bool:
        return bool(block_prefix) and _DISABLED.sub("", line.lstrip()).startswith(str(block_prefix))

    lines = existing.splitlines()
    out: list[str] = []
    placed = False
    for line in lines:
        if line.rstrip().endswith(marker):
            while out and is_option(out[-1]):
                out.pop()
            if not placed:
                out.extend(entry.splitlines())
                placed = True
            continue
        out.append(line)
    if not placed:
        out.extend(entry.splitlines())
    return "\n".join(out) + "\n"


def _run_tool(runner: Runner, argv: list[str], tool: str, hint: str, input: str | None = None) -> Any:
    try:
        return runner(argv, input=input, capture_output=True, text=True, timeout=TOOL_TIMEOUT)
    except FileNotFoundError:
        raise RuntimeError(f"`{tool}` is not installed or not on PATH; {hint}") from None
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"`{' '.join(argv)}` did not finish in {TOOL_TIMEOUT:.0f} s (old versions of {tool} "
                           f"ignore '-' and open an editor); {hint}") from None


def _first_line(res: Any) -> str:
    text = ((res.stderr or "").strip() or (res.stdout or "").strip())  # scrontab reports on stdout
    return text.splitlines()[0] if text else f"exit status {res.returncode}"


def _install_table(job: RebuildJob, entry: str, marker: str, tool: str, hint: str, runner: Runner,
                   block_prefix: str | None = None) -> str:
    listed = _run_tool(runner, [tool, "-l"], tool, hint)
    current = listed.stdout or ""
    if listed.returncode != 0:
        if "no crontab" not in f"{listed.stderr or ''}{listed.stdout or ''}".lower():
            raise RuntimeError(f"`{tool} -l` failed: {_first_line(listed)}; {hint}")
        current = ""
    merged = merge_entry(current, entry, marker, block_prefix=block_prefix)
    written = _run_tool(runner, [tool, "-"], tool, hint, input=merged)
    if written.returncode != 0:
        raise RuntimeError(f"`{tool} -` refused the new table: {_first_line(written)}; {hint}")
    replaced = any(line.rstrip().endswith(marker) for line in current.splitlines())
    verb = "replaced the earlier entry" if replaced else "added the entry"
    return f"{tool}: {verb} for {job.spec} → {job.output} (daily at {job.hour:02d}:{job.minute:02d})"


def install_cron(job: RebuildJob, *, runner: Runner = subprocess.run) -> str:
    """Add :func:`cron_line` to the user's crontab (``crontab -l`` + ``crontab -``).

    An earlier cytodask line for the same spec and output (its trailing
    ``# cytodask:SPEC:OUTPUT`` marker) is replaced; all other lines are kept.
    Returns a one-line summary; raises ``RuntimeError`` when ``crontab`` is
    missing or refuses the table.
    """
    hint = "add the printed line by hand with `crontab -e` (or install cron, e.g. `apt-get install cron`)"
    return _install_table(job, cron_line(job), job.marker.replace("%", r"\%"), "crontab", hint, runner)


def install_slurm(job: RebuildJob, *, runner: Runner = subprocess.run, **options: Any) -> str:
    """Add :func:`slurm_entry` to the user's Slurm crontab (``scrontab -l`` + ``scrontab -``).

    ``options`` are those of :func:`slurm_entry`. Replaces an earlier entry for
    the same spec and output (its ``#SCRON`` lines included); keeps the rest.
    """
    hint = "run this on a Slurm login node, or add the printed entry by hand with `scrontab -e`"
    return _install_table(job, slurm_entry(job, **options), job.marker, "scrontab", hint, runner,
                          block_prefix="#SCRON")


def user_unit_dir(home: str | os.PathLike[str] | None = None) -> Path:
    """``$XDG_CONFIG_HOME/systemd/user`` (or ``HOME/.config/systemd/user`` when ``home`` is given)."""
    if home is None and os.environ.get("XDG_CONFIG_HOME"):
        return Path(os.environ["XDG_CONFIG_HOME"]) / "systemd" / "user"
    return Path(home if home is not None else Path.home()) / ".config" / "systemd" / "user"


def install_systemd(job: RebuildJob, *, unit_dir: str | os.PathLike[str] | None = None,
                    home: str | os.PathLike[str] | None = None) -> str:
    """Write :func:`systemd_units` into ``unit_dir`` (default :func:`user_unit_dir`).

    Creates the log directory too. Does not run ``systemctl``; returns the
    message with the command that loads and starts the timer.
    """
    target = Path(unit_dir) if unit_dir is not None else user_unit_dir(home)
    target.mkdir(parents=True, exist_ok=True)
    job.log.parent.mkdir(parents=True, exist_ok=True)
    units = systemd_units(job)
    for fname, text in units.items():
        tmp = target / f".{fname}.tmp"
        tmp.write_text(text)
        os.replace(tmp, target / fname)
    cmd = f"systemctl --user daemon-reload && systemctl --user enable --now {job.unit}.timer"
    msg = f"wrote {', '.join(str(target / f) for f in units)}; start the timer with:\n  {cmd}\n"
    if unit_dir is not None and target != user_unit_dir(home):
        msg += (f"({target} is not the default user unit directory: if systemd does not look there, link the "
                f"units first with `systemctl --user link {target / (job.unit + '.service')} "
                f"{target / (job.unit + '.timer')}`)\n")
    msg += "so that it also fires while you are logged out: loginctl enable-linger $USER"
    return msg


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
    Slurm the log directory is created now: they open the log before the job runs.
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
        job.log.parent.mkdir(parents=True, exist_ok=True)
        note(f"created the log directory {job.log.parent}")
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
