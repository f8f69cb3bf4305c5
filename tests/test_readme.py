"""The README's examples run as written (issue 14, "Done when").

Every fenced ``python`` block is saved as a script and run with ``python script.py``, in order, in
one folder holding the files the examples name (``upload.h5ad``, ``atlas.h5ad`` with a ``counts``
layer, ``graphs/``), made from the demo atlas at small size; ``graphs/demo.toml`` finds that atlas
through the variables it documents (``CYTODASK_DEMO_ATLAS``, ``CYTODASK_DEMO_SAMPLES``). Every
fenced ``bash`` block runs line by line in the same folder, except the commands in ``ELSEWHERE``
(each says why and what this test checks in its place). Plain fenced blocks are text (diagrams,
output, the command synopsis); the synopsis' options are checked against each command's ``--help``.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import urllib.parse
from pathlib import Path

import anndata
import pytest

from cytodask.demo import SyntheticAtlasSpec, donor_table, write_h5ad

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
SHARED = REPO.parent / "shared" / "data"
BIN = Path(sys.executable).parent
SMALL = SyntheticAtlasSpec(n_cells=3000, n_genes=5000, n_donors=10, seed=5)

# Shell commands of the README that this test does not run, why, and what it checks instead.
ELSEWHERE = {
    "make demo": "builds .venv (pip) and runs `cytodask demo` at 50k cells: the Makefile target is checked to be "
                 "`cytodask demo --output demo-output`, which tests/orchestration/test_demo.py runs at small size",
    "make test": "the test suite itself (`.ci/run` runs it); running it from a test would run this test again",
    "census:": "reads the CELLxGENE Census service over the network (extra `census`): each query is parsed into "
               "the source it documents instead",
}


def blocks(kind: str) -> list[str]:
    """The README's fenced code blocks with info string ``kind`` ("" = plain), in order."""
    return [m.group(2) for m in re.finditer(r"^```([a-z]*)\n(.*?)^```\s*$", README.read_text(), re.M | re.S)
            if m.group(1) == kind]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A user's folder with the files the README's examples name, and the environment they run in."""
    d = tmp_path_factory.mktemp("readme")
    write_h5ad(SMALL, d / "upload.h5ad", batch_size=1000)
    a = anndata.read_h5ad(d / "upload.h5ad")
    a.layers["counts"] = a.X.copy()
    a.X = a.X.astype("float32") * 0.5  # normalized values in X, counts in a layer (scanpy's usual layout)
    a.write_h5ad(d / "atlas.h5ad")
    donor_table(SMALL).rename(columns={"sample": "Sample_name", "age": "Age"}).to_csv(d / "samples.csv", index=False)
    (d / "graphs").symlink_to(REPO / "graphs")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "CYTODASK_DEMO_ATLAS": str(d / "upload.h5ad"),
           "CYTODASK_DEMO_SAMPLES": str(d / "samples.csv"), "CYTODASK_SIGNATURE_DIR": str(SHARED / "signatures")}
    return d, env


def test_python_examples_run_as_written(folder):
    d, env = folder
    code = blocks("python")
    assert len(code) >= 4 and "open_results" in code[0] and 'if __name__ == "__main__":' in code[0]
    for i, text in enumerate(code):
        script = d / f"readme_{i}.py"
        script.write_text(text)
        res = subprocess.run([sys.executable, script.name], cwd=d, env=env, capture_output=True, text=True,
                             timeout=300)
        assert res.returncode == 0, f"README python block {i} failed:\n{text}\n{res.stderr[-3000:]}"
    assert (d / "results" / "exports").is_dir() and (d / "demo-results" / "report.html").exists()


def test_shell_examples_run_as_written(folder):
    d, env = folder
    lines = [ln.split("  #")[0].strip() for text in blocks("bash") for ln in text.splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("#")]
    for line in lines:
        reason = next((why for cmd, why in ELSEWHERE.items() if line.startswith(cmd) or f"'{cmd}" in line), None)
        if reason is not None:
            continue
        res = subprocess.run(line, shell=True, cwd=d, env=env, capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, f"README: `{line}` failed:\n{res.stderr[-3000:]}"
    # what the commands run elsewhere are checked for instead
    demo = re.search(r"^demo:.*\n\t(.*)$", (REPO / "Makefile").read_text(), re.M)
    assert demo and demo.group(1) == "$(BIN)/cytodask demo --output demo-output"
    from cytodask.ingest.sources import _CENSUS_KEYS  # the keys parse_census accepts

    queries = [shlex.split(ln)[2] for ln in lines if "'census:" in ln]
    assert len(queries) == 2
    for q in queries:
        assert {k for k, _ in urllib.parse.parse_qsl(q.partition("?")[2])} <= set(_CENSUS_KEYS), q
    for cmd in ELSEWHERE:  # the list stays true to the README
        assert any(ln.startswith(cmd) or f"'{cmd}" in ln for ln in lines), f"{cmd!r} is no longer in the README"


def test_command_synopsis_matches_the_commands():
    (synopsis,) = [b for b in blocks("") if b.startswith("cytodask convert")]
    commands = re.sub(r"\n\s+", " ", re.sub(r"#[^\n]*", "", synopsis))  # a command's continuation lines joined
    for line in commands.splitlines():
        words = line.split()
        res = subprocess.run([str(BIN / "cytodask"), words[1], "--help"], capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stderr
        for flag in re.findall(r"--[a-z-]+", " ".join(words)):
            assert flag in res.stdout, f"README synopsis `{line}`: {flag} is not an option of cytodask {words[1]}"
