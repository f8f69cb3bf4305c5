"""The README's performance tables come from RESULTS.md, and benchmark rows say what they compare."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks import readme_table
from benchmarks.common import PeakRSS, best, row, threads

SECTION = """
### 2026-12-01 — `python -m benchmarks --pipeline differential --record`

Machine: x86_64 2 CPUs

| key | pipeline | task | cytodask (s) | reference | reference (s) | ratio | threads (ours / ref) | like for like | details |
|---|---|---|---|---|---|---|---|---|---|
| wilcoxon-2g-1t | differential | wilcoxon 1170 features x 100,000 columns, 1 thread [numpy] | 3.1 | scipy | 30 | 9.68 | 1 / 1 | yes | |
"""
NEWER = SECTION.replace("2026-12-01", "2026-12-02").replace("| 3.1 |", "| 2.9 |").replace("9.68", "10.3")


def test_readme_tables_are_generated_from_results() -> None:
    assert readme_table.main(["--check"]) == 0, "run `python -m benchmarks.readme_table` and commit README.md"


def test_newest_row_of_a_key_supersedes_older_rows() -> None:
    rows = readme_table.parse(SECTION + NEWER)
    assert rows["wilcoxon-2g-1t"].ours == "2.9"
    assert rows["wilcoxon-2g-1t"].heading.startswith("2026-12-02")
    block = readme_table.generate(SECTION + NEWER)
    assert "| 2.9 | scipy | 30 | 10.3× | 1 / 1 | 2026-12-02 `wilcoxon-2g-1t` |" in block
    assert "3.1" not in block
    assert "Not measured yet:" in block and "`spearman-1t`" in block  # cited keys without a row are named


SCALE = """
### 2026-12-03 — `python -m benchmarks --pipeline scale --dataset synthetic-2m --record`

Machine: x86_64 2 CPUs

| key | pipeline | task | cytodask (s) | reference | reference (s) | ratio | threads (ours / ref) | like for like | details |
|---|---|---|---|---|---|---|---|---|---|
| scale-synthetic-2m-sc_secact | scale | rebuild stage sc_secact, 2,000,000 cells, 2 workers [numpy] | 900 | same stage at 1,000,000 cells | 450 | 0.5 | 2 workers × 1 / 2 workers × 1 | no | blas=openblas 2 threads, cells_per_s=2.22e+03, worker_peak_gib=3.2, reference_worker_peak_gib=3.1, disk_gib=33 |
| scale-synthetic-2m-rerun | scale | unchanged rerun, 2,000,000 cells [numpy] | 7 | full rebuild | 3000 | 429 | 2 workers / 2 workers | no | disk_gib=38 |
| scale-workers-sc_secact | scale | rebuild stage sc_secact, 100,000 cells in blocks of 10,000: 2 workers × 1 thread vs 1 worker × 1 thread [numpy] | 50 | same stage, 1 worker × 1 thread | 95 | 1.9 | 2 workers × 1 / 1 worker × 1 | no | load=0.2–1.9 |
"""


def test_scale_tables_come_from_the_scale_rows() -> None:
    assert "At scale: not measured yet" in readme_table.generate(SECTION)
    block = readme_table.generate(SECTION + SCALE)
    assert "| sc_secact | 900 | 2.22e+03 | 3.2 | 3.1 | 450 | 33 |" in block  # keys with underscores are parsed
    assert "worker peak at 1,000,000 cells (GiB)" in block and "2 workers × 1, 2026-12-03" in block
    assert "Unchanged rerun: 7 s against 3000 s" in block
    assert "| sc_secact | 95 | 50 | 1.9× |" in block and "(100,000 cells, blocks of 10,000" in block


def test_render_needs_the_markers() -> None:
    with pytest.raises(ValueError, match="no generated performance block"):
        readme_table.render("# README\n", SECTION)
    text = f"a\n{readme_table.BEGIN}\nSTALE-BLOCK-TEXT\n{readme_table.END}\nb\n"
    out = readme_table.render(text, SECTION)
    assert out.startswith("a\n") and out.endswith("\nb\n") and "STALE-BLOCK-TEXT" not in out


def test_row_states_threads_and_method() -> None:
    r = row("differential", "t", 2.0, "ref", 6.0, key="k", threads=2, reference_threads=1, like_for_like=False)
    assert r["ratio"] == 3.0 and r["task"] == "t [numpy]"
    assert (r["threads"], r["reference_threads"], r["like_for_like"]) == (2, 1, False)
    assert row("x", "t", None, "ref", 1.0, key="k", threads=1, reference_threads=1, like_for_like=True)["ratio"] is None


def test_threads_limits_blas_inside_the_block() -> None:
    from threadpoolctl import threadpool_info

    with threads(1):
        assert all(p["num_threads"] == 1 for p in threadpool_info())


def test_best_and_peak_memory() -> None:
    calls = []
    secs, out, peak = best(lambda: calls.append(1) or np.ones(2**24).sum(), 3)  # 128 MiB temporary
    assert len(calls) == 3 and out == 2**24 and secs > 0
    with PeakRSS() as p:
        big = np.ones(2**25)  # 256 MiB, touched
        del big
    assert p.gib * 2**30 >= 2**25 * 8


def test_row_reports_the_pools_the_timed_code_saw() -> None:
    """A 1-thread row states the BLAS/OpenMP pools as limited during timing, not the process default."""
    from benchmarks.common import threads

    with threads(1):
        pass
    pools = row("x", "t", 1.0, "ref", 2.0, key="k", threads=1, reference_threads=1, like_for_like=True)["blas"]
    assert pools and all(part.endswith(" 1 threads") for part in pools.split("; ")), pools
