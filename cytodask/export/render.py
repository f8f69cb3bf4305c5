"""Render a rebuild's HTML report in headless Chromium and check the screenshot is not blank.

Usage::

    python -m cytodask.export.render DIR [--screenshot PNG] [--build] [--chromium BINARY]

``DIR`` is a result directory holding ``report.html`` (written by
:func:`cytodask.export.report.build_report`; ``--build`` writes it first).
The page is opened from ``file://`` by a headless Chromium with a throwaway
profile, no network features and no GPU, and captured at 1400 × 2000 pixels.

Exit status: 0 when the screenshot shows a page (enough non-white pixels and
several colours), 1 when it looks blank, 2 when no Chromium binary is found
(set ``CHROMIUM`` or pass ``--chromium``; on Debian: ``apt-get install chromium``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome", "headless_shell")
WINDOW = (1400, 2000)


def find_chromium(explicit: str | None = None) -> str | None:
    """Path of a Chromium binary: ``explicit``, ``$CHROMIUM``, then the usual names on ``PATH``."""
    for name in (explicit, os.environ.get("CHROMIUM"), *CANDIDATES):
        if name and (found := shutil.which(name)):
            return found
    return None


def screenshot(binary: str, page: Path, png: Path, *, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """Capture ``page`` into ``png`` with headless Chromium (throwaway profile, no network features)."""
    with tempfile.TemporaryDirectory(prefix="cytodask-chromium-") as profile:
        cmd = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--hide-scrollbars", f"--user-data-dir={profile}", f"--screenshot={png}",
               f"--window-size={WINDOW[0]},{WINDOW[1]}", page.resolve().as_uri()]
        return subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, "HOME": profile})


def blank_check(png: Path) -> tuple[bool, str]:
    """Whether a screenshot shows content: > 2 % non-white pixels and > 50 distinct colours."""
    rgb = np.asarray(Image.open(png).convert("RGB"))
    non_white = float((rgb.min(axis=2) < 245).mean())
    colours = len(np.unique(rgb.reshape(-1, 3)[::7], axis=0))
    ok = non_white > 0.02 and colours > 50
    return ok, f"{rgb.shape[1]}x{rgb.shape[0]} px, {non_white:.1%} non-white, {colours} colours (sampled)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dir", type=Path, help="result directory holding report.html")
    parser.add_argument("--screenshot", type=Path, help="where to write the PNG (default DIR/report.png)")
    parser.add_argument("--build", action="store_true", help="(re)build DIR/report.html first")
    parser.add_argument("--chromium", help="Chromium binary (default: $CHROMIUM or chromium on PATH)")
    args = parser.parse_args(argv)
    if args.build:
        from cytodask.export.report import build_report

        build_report(args.dir)
    page = args.dir / "report.html"
    if not page.is_file():
        print(f"{page} does not exist: build it with cytodask.export.report.build_report or pass --build")
        return 1
    binary = find_chromium(args.chromium)
    if binary is None:
        print("no Chromium binary found: install one (apt-get install chromium) or set CHROMIUM")
        return 2
    png = args.screenshot or args.dir / "report.png"
    png.unlink(missing_ok=True)
    res = screenshot(binary, page, png)
    if not png.is_file():
        print(f"chromium wrote no screenshot (exit {res.returncode}):\n{res.stderr[-2000:]}")
        return 1
    ok, detail = blank_check(png)
    print(f"{'rendered' if ok else 'BLANK'}: {png} ({detail})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
