"""A package index on localhost (PEP 503 simple pages, served by http.server in a thread) holding a secactpy
wheel: what a mirror of PyPI looks like to pip, with no network. ``pip_env`` points pip at it alone."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import os
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

WHEEL = "secactpy-0.3.1-py3-none-any.whl"


def write_wheel(path: Path, payload: bytes | None) -> None:
    """A secactpy 0.3.1 wheel (metadata pip checks) holding ``secactpy/data/SecAct.tsv.gz`` = ``payload``."""
    info = "secactpy-0.3.1.dist-info"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("secactpy/__init__.py", "")
        if payload is not None:
            zf.writestr("secactpy/data/SecAct.tsv.gz", payload)
        zf.writestr(f"{info}/METADATA", "Metadata-Version: 2.1\nName: secactpy\nVersion: 0.3.1\n")
        zf.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        zf.writestr(f"{info}/RECORD", "")


@contextlib.contextmanager
def serve_index(root: Path, payload: bytes | None) -> Iterator[tuple[str, list[str]]]:
    """Serve ``root``/simple/secactpy/ and the wheel; yields (index URL, paths requested)."""
    (root / "simple" / "secactpy").mkdir(parents=True, exist_ok=True)
    (root / "packages").mkdir(exist_ok=True)
    write_wheel(root / "packages" / WHEEL, payload)
    digest = hashlib.sha256((root / "packages" / WHEEL).read_bytes()).hexdigest()
    (root / "simple" / "secactpy" / "index.html").write_text(
        f'<!DOCTYPE html><html><body><a href="../../packages/{WHEEL}#sha256={digest}">{WHEEL}</a></body></html>')
    seen: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            seen.append(self.path)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/simple/", seen
    finally:
        server.shutdown()
        server.server_close()


def pip_env(monkeypatch: pytest.MonkeyPatch, index_url: str, cache: Path) -> None:
    """pip reads only ``index_url`` (no config files, find-links or extra indexes); the signature cache is empty."""
    for key in list(os.environ):
        if key.startswith("PIP_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", index_url)
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.delenv("CYTODASK_SIGNATURE_DIR", raising=False)
