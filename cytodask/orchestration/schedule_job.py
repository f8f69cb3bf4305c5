"""The job a scheduler runs: ``cytodask rebuild SPEC --output DIR --wait``, resolved and validated.

:func:`rebuild_job` turns a spec path and a time of day into a :class:`RebuildJob`
with absolute paths (spec, output, log, working directory, the ``cytodask``
executable of this installation) and the ``${VAR}`` values the spec reads from
this shell's environment; the renderers of :mod:`cytodask.orchestration.schedule_render`
and the installers of :mod:`cytodask.orchestration.schedule_install` take it as is.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

MARKER = "# cytodask:"
_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-[^}]*)?\}")  # as in cytodask.orchestration.spec


def spec_variables(spec_path: str | os.PathLike[str]) -> list[str]:
    """Names of the ``${VAR}`` / ``${VAR:-default}`` variables a spec file uses, in first-use order."""
    return list(dict.fromkeys(_VAR.findall(Path(spec_path).read_text())))


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
        env = {n: os.environ[n] for n in spec_variables(spec_path) if n in os.environ}
    for p in (spec_path, out, log_path, wd):
        if "\n" in str(p) or "\r" in str(p):
            raise ValueError(f"path {str(p)!r} contains a line break, which no scheduler entry can hold; rename it")
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", spec_path.stem).strip("-.") or "spec"
    return RebuildJob(spec=spec_path, output=out, log=log_path, workdir=wd, hour=hour, minute=minute, name=name,
                      command=tuple(command or rebuild_command()), env=dict(env))
