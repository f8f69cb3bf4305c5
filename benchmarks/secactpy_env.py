"""secactpy 0.3.1 (pins numpy<2) in its own virtual environment, created on demand.

Shared by the benchmarks and the parity tests. The environment lives at
``<repo>/.venv-secactpy`` (git-ignored).
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv-secactpy"
VERSION = "0.3.1"
READY = VENV / f".ready-secactpy-{VERSION}"


class SecactpyUnavailable(RuntimeError):
    """The environment could not be created (e.g. PyPI unreachable)."""


def secactpy_python() -> Path:
    """The interpreter of the secactpy environment, creating it if needed."""
    python = VENV / "bin" / "python"
    if READY.exists():
        return python
    VENV.mkdir(parents=True, exist_ok=True)
    with open(VENV / ".create.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if READY.exists():
            return python
        steps = [[sys.executable, "-m", "venv", str(VENV)]] if not python.exists() else []
        steps.append([str(python), "-m", "pip", "install", "-q", f"secactpy=={VERSION}"])
        for cmd in steps:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
            if proc.returncode != 0:
                raise SecactpyUnavailable(f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        check = subprocess.run([str(python), "-c", "import secactpy"], capture_output=True, text=True)
        if check.returncode != 0:
            raise SecactpyUnavailable(f"secactpy does not import in {VENV}:\n{check.stderr[-3000:]}")
        READY.touch()
    return python


def run_secactpy(script: str, workdir: Path, timeout: float = 3600) -> str:
    """Run ``script`` (Python source) with the secactpy interpreter in ``workdir``; return stdout."""
    path = Path(workdir) / "secactpy_script.py"
    path.write_text(textwrap.dedent(script))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["SECACTPY_CACHE_DIR"] = str(Path(workdir) / "secactpy-cache")
    proc = subprocess.run([str(secactpy_python()), str(path)], cwd=workdir, capture_output=True, text=True,
                          timeout=timeout, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"secactpy script failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc.stdout
