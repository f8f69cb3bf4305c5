"""Run secactpy 0.3.1 (numpy<2) in its own virtual environment, for parity tests.

The environment is shared with the benchmarks (:mod:`benchmarks.secactpy_env`,
``<repo>/.venv-secactpy``) and created on first use. Tests skip only when
that is impossible because PyPI cannot be reached.
"""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest

from benchmarks import secactpy_env


def _pypi_reachable() -> bool:
    try:
        with urllib.request.urlopen("https://pypi.org/simple/secactpy/", timeout=15):
            return True
    except OSError:
        return False


def run_secactpy(script: str, workdir: Path, timeout: float = 600) -> None:
    """Run ``script`` (Python source) with the secactpy interpreter in ``workdir``."""
    try:
        secactpy_env.secactpy_python()
    except secactpy_env.SecactpyUnavailable:
        if not _pypi_reachable():
            pytest.skip("secactpy venv cannot be created: PyPI is unreachable")
        raise
    secactpy_env.run_secactpy(script, workdir, timeout=timeout)
