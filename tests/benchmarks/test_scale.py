"""The scale benchmark measures what it says on a small atlas: every stage, its memory, its disk, the rerun."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import bench_scale


@pytest.mark.slow
def test_scale_run_records_every_stage(tmp_path: Path) -> None:
    res = bench_scale.run_size("synthetic-10k", 2, tmp_path, signature="CytoSig", cache=tmp_path / "data")
    stages = res["stages"]
    assert set(stages) == {"convert", "pseudobulk", "activity", "sc_secact", "disease_vs_healthy", "export"}
    for name in ("convert", "pseudobulk", "sc_secact"):
        assert stages[name]["cells_per_s"] == pytest.approx(10_000 / stages[name]["seconds"])
    assert stages["activity"]["cells_per_s"] is None  # pseudobulk-level: no per-cell throughput
    # the client and two worker processes were sampled while the single-cell stage ran
    assert stages["sc_secact"]["client_peak_gib"] > 0.05
    assert len(stages["sc_secact"]["worker_peak_gib"]) >= 2
    # single-cell activity writes one float32 per cell and CytoSig signature (43), plus metadata
    assert stages["sc_secact"]["disk_gib"] * 2**30 > 10_000 * 43 * 4 * 0.2  # compressed, but not empty
    assert res["rerun_s"] < res["wall_s"]  # the rerun computes nothing
    assert res["workers"] == 2 and res["cells"] == 10_000


def test_room_for_drops_other_cached_atlases_only_when_needed(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("synthetic-1m", "synthetic-2m", "synthetic-100k"):
        (tmp_path / f"scale-{name}.h5ad").write_bytes(b"x")
    monkeypatch.setattr(bench_scale, "OUTPUT_GIB_PER_MILLION", 0.0)
    assert bench_scale._room_for("synthetic-2m", tmp_path) == []
    monkeypatch.setattr(bench_scale, "OUTPUT_GIB_PER_MILLION", 1e9)  # more than any disk: drop all, then refuse
    with pytest.raises(SystemExit, match="synthetic-2m needs"):
        bench_scale._room_for("synthetic-2m", tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scale-synthetic-2m.h5ad"]  # its own atlas is kept
