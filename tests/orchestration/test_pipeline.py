"""The Python entry points of DESIGN §3: Pipeline.process_submission and Pipeline.process."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cytodask import Config, Pipeline
from cytodask.ingest import LocalH5ADSource

pytestmark = pytest.mark.slow


def _cfg() -> Config:
    return Config(cluster="local", n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0",
                  batch_size=1000)


def test_process_submission_runs_activity_differential_correlation(tmp_path: Path, e2e_atlas: Path):
    pipe = Pipeline(_cfg())
    res = pipe.process_submission(h5ad_path=e2e_atlas, signatures=["CytoSig"],
                                  aggregation_levels=["celltype_L2", "pseudobulk"],
                                  analyses=["activity", "differential", "correlation"], output_dir=tmp_path / "r")
    assert {r.state for r in res.reports} == {"computed"}
    act = res.activity["activity_CytoSig_cell_type_l2"]
    assert act.n_vars == 43 and "cell_type_l2" in act.obs
    diff = res.differential["activity_CytoSig_cell_type_l2"]
    assert set(diff["group1"]) == {"disease"} and set(diff["group2"]) == {"healthy"}
    # the planted IFNG response in disease monocytes is the largest monocyte shift, and significant
    # (with 5 vs 5 samples the rank test's p-value saturates, so rank by effect, not by p)
    mono = diff[diff["cell_type_l2"] == "Monocyte"].sort_values("activity_diff", ascending=False)
    assert mono["signature"].iloc[0] == "IFNG" and mono["pvalue"].iloc[0] < 0.05
    corr = res.correlation["activity_CytoSig_cell_type_l2"]
    assert {"age", "BMI"} <= set(corr["variable"])
    assert "activity_CytoSig_sample" in res.activity
    assert (res.exports / "export_CytoSig_cell_type_l2" / "differential.parquet").exists()
    again = pipe.process_submission(h5ad_path=e2e_atlas, signatures=["CytoSig"],
                                    aggregation_levels=["celltype_L2", "pseudobulk"],
                                    analyses=["activity", "differential", "correlation"], output_dir=tmp_path / "r")
    assert {r.state for r in again.reports} == {"skipped"}
    np.testing.assert_array_equal(again.activity["activity_CytoSig_cell_type_l2"].X, act.X)


def test_process_with_a_source_and_errors(tmp_path: Path, e2e_atlas: Path):
    pipe = Pipeline(_cfg())
    res = pipe.process(source=LocalH5ADSource(e2e_atlas), signatures=["CytoSig"], analyses=["activity"],
                       output_dir=tmp_path / "p")
    assert list(res.activity) == ["activity_CytoSig_cell_type_l2"]
    with pytest.raises(ValueError, match="analyses \\['no_such_analysis'\\] are not available"):
        pipe.process(source=LocalH5ADSource(e2e_atlas), analyses=["no_such_analysis"], output_dir=tmp_path / "x")
    with pytest.raises(ValueError, match="aggregation level 'celltype_L9' matches no obs column"):
        pipe.process(source=LocalH5ADSource(e2e_atlas), aggregation_levels=["celltype_L9"], output_dir=tmp_path / "y")
    with pytest.raises(ValueError, match="group2 \\(control\\) level 'nope' not in 'disease' levels"):
        pipe.process(source=LocalH5ADSource(e2e_atlas), analyses=["differential"], group2="nope",
                     output_dir=tmp_path / "z")
    with pytest.raises(ValueError, match="group2 \\(control\\) level 'nope'"), \
            pytest.warns(DeprecationWarning, match="control=...\\) is deprecated; use group2"):
        pipe.process(source=LocalH5ADSource(e2e_atlas), analyses=["differential"], control="nope",
                     output_dir=tmp_path / "z")
