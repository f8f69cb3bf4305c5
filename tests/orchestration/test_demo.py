"""`cytodask demo` end to end on a small demo atlas: planted signals recovered, rerun is a no-op."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import pandas as pd
import pytest

from tests.e2e import cytodask

pytestmark = pytest.mark.slow


def test_demo_recovers_planted_signals_and_reruns_as_noop(tmp_path: Path):
    out = tmp_path / "demo"
    args = ("demo", "--output", str(out), "--cells", "6000", "--genes", "5000", "-q")
    res = cytodask(*args)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "dashboard: http" in res.stdout
    lines = [line for line in res.stdout.splitlines() if line.startswith("planted signal")]
    assert len(lines) == 2 and all(line.startswith("planted signal recovered") for line in lines), lines
    assert "IFNG in disease Monocyte ranks 1/43" in res.stdout
    exports = out / "results" / "exports" / "export"
    by_ct = pd.read_parquet(exports / "activity_by_cell_type.parquet")
    assert list(by_ct.columns) == ["cell_type", "signature", "signature_type", "mean_activity", "n_samples", "n_cells"]
    diff = pd.read_csv(exports / "differential.csv")
    assert {"signature", "group1", "group2", "activity_diff", "pvalue", "qvalue", "neg_log10_pval",
            "n_g1", "n_g2", "cell_type_l2"} <= set(diff.columns)
    act = ad.read_h5ad(exports / "activity.h5ad")
    assert act.n_vars == 43 and {"beta", "se", "pvalue"} <= set(act.layers)

    again = cytodask(*args)
    assert again.returncode == 0, again.stderr
    assert "demo atlas" in again.stdout and "is up to date" in again.stdout
    assert "rebuild done: 0 blocks computed" in again.stdout
    assert "up to date: nothing to compute, no cluster started" in again.stdout


def test_visualisation_json_export(tmp_path: Path, e2e_atlas: Path):
    import json

    from tests.e2e import write_spec

    spec = write_spec(tmp_path / "s.toml", e2e_atlas)
    spec.write_text(spec.read_text().replace('formats = ["h5ad", "parquet"]', 'formats = ["json", "parquet"]'))
    res = cytodask("rebuild", str(spec), "--output", str(tmp_path / "o"), "-q")
    assert res.returncode == 0, res.stderr
    ex = tmp_path / "o" / "exports" / "export"
    heat = json.loads((ex / "activity_heatmap.json").read_text())
    table = pd.read_parquet(ex / "activity_by_cell_type.parquet")
    assert len(heat["signatures"]) == 43 and heat["cell_types"] == sorted(table["cell_type"].unique())
    i, j = heat["cell_types"].index("Monocyte"), heat["signatures"].index("IFNG")
    ref = table[(table["cell_type"] == "Monocyte") & (table["signature"] == "IFNG")]["mean_activity"].iloc[0]
    assert abs(heat["mean_activity"][i][j] - ref) < 1e-4
    diff = json.loads((ex / "differential.json").read_text())
    assert diff["columns"][0] == "signature" and len(diff["records"]) == len(pd.read_parquet(ex / "differential.parquet"))
