"""Issue 14.2: the README's Python example pasted into a script without ``if __name__ == "__main__":``.

Run as a user runs it (``python script.py`` in a subprocess): with process workers it must fail at
once saying what to do (not with a cascade of locked outputs and failed nannies); with thread workers,
as the message suggests, the same unguarded script runs.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cytodask.orchestration.guard import unguarded_call_site

pytestmark = pytest.mark.slow

SCRIPT = """\
from cytodask import Config, Pipeline

pipeline = Pipeline(Config(batch_size=1000, n_workers=1, threads_per_worker=1, dashboard_address=":0",
                           cluster="local", processes={processes}))
results = pipeline.process_submission(h5ad_path="upload.h5ad", signatures=["CytoSig"],
                                      analyses=["activity"], output_dir="results/")
print("activity stages:", list(results.activity))
"""


def _run(tmp_path: Path, atlas: Path, *, processes: bool) -> subprocess.CompletedProcess[str]:
    (tmp_path / "upload.h5ad").symlink_to(atlas)
    (tmp_path / "script.py").write_text(SCRIPT.format(processes=processes))
    return subprocess.run([sys.executable, "script.py"], cwd=tmp_path, capture_output=True, text=True, timeout=300)


def test_unguarded_script_with_process_workers_says_what_to_do(tmp_path: Path, e2e_atlas: Path):
    res = _run(tmp_path, e2e_atlas, processes=True)
    assert res.returncode != 0
    err = res.stderr
    assert f"{tmp_path / 'script.py'}:5 starts cytodask with a local cluster of worker processes" in err, err
    assert 'if __name__ == "__main__":' in err and "Config(processes=False)" in err
    for noise in ("OutputLocked", "in use by another run", "Nanny failed"):
        assert noise not in err
    assert not (tmp_path / "results" / "stages" / "pseudobulk_cell_type_l2").exists()  # refused before any work


def test_unguarded_script_with_thread_workers_runs(tmp_path: Path, e2e_atlas: Path):
    res = _run(tmp_path, e2e_atlas, processes=False)
    assert res.returncode == 0, res.stderr
    assert "activity stages: ['activity_CytoSig_cell_type_l2']" in res.stdout


@pytest.mark.parametrize(("body", "line"), [
    ("import os\nif __name__ == '__main__':\n    here()\n", None),
    ("if '__main__' == __name__:\n    pass\n    here()\n", None),
    ("def main():\n    here()\n\n\nmain()\n", 5),
    ("here()\nif __name__ == '__main__':\n    pass\n", 1),
])
def test_call_site_inside_or_outside_the_guard(tmp_path: Path, monkeypatch, body: str, line: int | None):
    """The detection on the shapes a script takes, executed as Python runs a script (as ``__main__``)."""
    import types

    script = tmp_path / "s.py"
    script.write_text(body)
    main = types.ModuleType("__main__")
    main.__file__ = str(script)
    seen: list[str | None] = []
    main.here = lambda: seen.append(unguarded_call_site())
    monkeypatch.setitem(sys.modules, "__main__", main)
    exec(compile(body, str(script), "exec"), main.__dict__)
    assert seen == [None if line is None else f"{script}:{line}"]
