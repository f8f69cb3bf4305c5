"""Fetching the SecAct signature from the published secactpy wheel, through pip's configured package index.

SecAct (80 MB, MIT licence, secactpy authors) ships inside the ``secactpy`` wheel as
``secactpy/data/SecAct.tsv.gz``. :func:`fetch_secact` gets that wheel the way ``pip install`` would
— ``pip download`` with the user's pip configuration (``pip.conf``, ``$PIP_INDEX_URL``,
``--extra-index-url``, proxies, certificates, credentials), so a package-index mirror works — and
falls back to the index's simple page (PEP 503) when pip is not installed. The extracted file is
checked against its md5 and written atomically.
"""

from __future__ import annotations

import hashlib
import html
import importlib.util
import logging
import os
import re
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

log = logging.getLogger(__name__)

SECACT_FILE = "SecAct.tsv.gz"
SECACT_MD5 = "4366b3c999b519bce0091955a0e5dc6c"
SECACTPY_VERSION = "0.3.1"
DEFAULT_INDEX = "https://pypi.org/simple"


def fetch_secact(target_dir: str | os.PathLike[str] | None = None, *, timeout: float = 120.0,
                 index_url: str | None = None) -> Path:
    """Download the secactpy wheel and extract ``secactpy/data/SecAct.tsv.gz`` into ``target_dir``.

    Parameters
    ----------
    target_dir
        Where the file goes (default: the user signature cache,
        :func:`cytodask.activity.signatures.cache_dir`).
    timeout
        Seconds per network operation.
    index_url
        A package index (simple API) instead of pip's configured one.

    Raises
    ------
    OSError
        The wheel cannot be fetched, is not a secactpy wheel, or its SecAct file has another md5.
    """
    if target_dir is None:
        from .signatures import cache_dir

        target_dir = cache_dir()
    target = Path(target_dir)
    with tempfile.TemporaryDirectory(prefix="cytodask-secactpy-") as tmp:
        fetch = _pip_download if importlib.util.find_spec("pip") is not None else _simple_download
        wheel = fetch(Path(tmp), index_url=index_url, timeout=timeout)
        try:
            with zipfile.ZipFile(wheel) as zf:
                payload = zf.read(f"secactpy/data/{SECACT_FILE}")
        except (zipfile.BadZipFile, KeyError) as err:
            raise OSError(f"{wheel.name} is not a secactpy wheel holding {SECACT_FILE}: {err}") from None
    if hashlib.md5(payload).hexdigest() != SECACT_MD5:
        raise OSError(f"{SECACT_FILE} from the secactpy {SECACTPY_VERSION} wheel has an unexpected md5 checksum "
                      f"(expected {SECACT_MD5}); the index serves another file under that name")
    target.mkdir(parents=True, exist_ok=True)
    fd, tmp_file = tempfile.mkstemp(dir=target, suffix=".part")
    with os.fdopen(fd, "wb") as fh:
        fh.write(payload)
    os.replace(tmp_file, target / SECACT_FILE)
    return target / SECACT_FILE


def _pip_download(folder: Path, *, index_url: str | None, timeout: float) -> Path:
    """``pip download secactpy==VERSION --no-deps`` into ``folder`` (pip's own configuration applies)."""
    cmd = [sys.executable, "-m", "pip", "download", f"secactpy=={SECACTPY_VERSION}", "--no-deps",
           "--only-binary=:all:", "--no-cache-dir", "--disable-pip-version-check", "--no-input",
           "--timeout", str(max(1, int(timeout))), "--dest", str(folder)]
    if index_url is not None:
        cmd += ["--index-url", index_url]
    log.info("downloading the SecAct signature (secactpy %s wheel) with pip", SECACTPY_VERSION)
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wheels = sorted(folder.glob("secactpy-*.whl"))
    if done.returncode != 0 or not wheels:
        lines = [ln.strip() for ln in (done.stderr or done.stdout).splitlines() if ln.strip()]
        why = next((ln for ln in reversed(lines) if ln.startswith("ERROR")), lines[-1] if lines else "no wheel")
        raise OSError(f"`pip download secactpy=={SECACTPY_VERSION}` through pip's configured index failed: {why}")
    return wheels[0]


def _simple_download(folder: Path, *, index_url: str | None, timeout: float) -> Path:
    """The wheel from the index's simple page (PEP 503), checked against the page's sha256 when it gives one."""
    index = index_url or os.environ.get("PIP_INDEX_URL") or DEFAULT_INDEX
    page_url = f"{index.rstrip('/')}/secactpy/"
    with urllib.request.urlopen(page_url, timeout=timeout) as resp:
        page = resp.read().decode("utf-8", "replace")
    for href in re.findall(r'href\s*=\s*["\']([^"\']+)["\']', page):
        url, _, fragment = urllib.parse.urljoin(page_url, html.unescape(href)).partition("#")
        name = urllib.parse.unquote(url.rsplit("/", 1)[-1])
        if name.startswith(f"secactpy-{SECACTPY_VERSION}-") and name.endswith(".whl"):
            break
    else:
        raise OSError(f"no secactpy {SECACTPY_VERSION} wheel listed at {page_url}")
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        data = resp.read()
    algo, _, digest = fragment.partition("=")
    if algo in hashlib.algorithms_guaranteed and digest and hashlib.new(algo, data).hexdigest() != digest:
        raise OSError(f"{name} from {url} does not match the {algo} digest the index lists")
    (folder / name).write_bytes(data)
    return folder / name
