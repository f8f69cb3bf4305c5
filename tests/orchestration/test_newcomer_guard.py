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


THREADED = """\
from concurrent.futures import ThreadPoolExecutor

from cytodask import Config, Pipeline


def run():
    pipeline = Pipeline(Config(batch_size=1000, n_workers=1, threads_per_worker=1, dashboard_address=":0",
                               cluster="local", processes=True))
    return pipeline.process_submission(h5ad_path="upload.h5ad", signatures=["CytoSig"], analyses=["activity"],
                                       output_dir="results/")


results = ThreadPoolExecutor(1).submit(run).result()
"""


def test_unguarded_script_starting_the_run_from_a_thread_says_what_to_do(tmp_path: Path, e2e_atlas: Path):
    """The run started from a thread of the script (a thread pool, a web app): still refused before any work,
    naming the script's statement the main thread is running."""
    (tmp_path / "upload.h5ad").symlink_to(e2e_atlas)
    (tmp_path / "script.py").write_text(THREADED)
    res = subprocess.run([sys.executable, "script.py"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert res.returncode != 0
    assert f"{tmp_path / 'script.py'}:13 starts cytodask with a local cluster of worker processes" in res.stderr, \
        res.stderr
    for noise in ("OutputLocked", "in use by another run", "Nanny failed"):
        assert noise not in res.stderr
    assert not (tmp_path / "results" / "stages" / "pseudobulk_cell_type_l2").exists()


REIMPORTED = """\
import multiprocessing

from cytodask.orchestration.guard import check_main_guard

if __name__ == "__mp_main__":  # this script, imported again by a new (spawned) process
    check_main_guard("local", True)


def work():
    pass


if __name__ == "__main__":
    child = multiprocessing.get_context("spawn").Process(target=work)
    child.start()
    child.join()
    print("child exit code", child.exitcode)
"""


def test_a_spawned_process_importing_the_script_again_says_what_to_do(tmp_path: Path):
    """Inside the re-import itself (a new worker process importing the script that started the run), the
    message names the cause and the fix, and the new process stops there."""
    (tmp_path / "script.py").write_text(REIMPORTED)
    res = subprocess.run([sys.executable, "script.py"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "child exit code 1" in res.stdout
    assert ("cytodask was started while a new worker process was importing the script that started the run "
            '(no `if __name__ == "__main__":` guard around it)') in res.stderr, res.stderr
    assert "Config(processes=False)" in res.stderr
