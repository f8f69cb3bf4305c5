"""Install scheduler entries: merge into the user's crontab / scrontab, or write systemd user units.

The installers take the command runner (``subprocess.run``) and the unit
directory as parameters, so tests never touch a real crontab.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cytodask.orchestration.schedule_job import RebuildJob
from cytodask.orchestration.schedule_render import cron_line, slurm_entry, systemd_units

Runner = Callable[..., Any]
"""Called like ``subprocess.run(argv, input=..., capture_output=True, text=True, timeout=...)``."""

_DISABLED = re.compile(r"^#(?:DISABLED|BAD): ")  # how scrontab -l shows lines it turned off
TOOL_TIMEOUT = 60.0


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
