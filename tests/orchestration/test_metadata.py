"""Metadata tables as stage inputs: correlation vs scipy, and a changed CSV reruns only its dependants."""

from __future__ import annotations

import shutil
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from cytodask.differential.stage import read_table
from tests.e2e import cytodask, samples_csv, write_spec

pytestmark = pytest.mark.slow
STAGES = ["convert", "pseudobulk", "activity", "disease_vs_healthy", "donor_correlation", "export"]


def _events(out: Path) -> dict[str, str]:
    from cytodask.core.events import read_run_log

    return {e["stage"]: e["event"] for e in read_run_log(out / "run-log.jsonl")
            if e["event"] in ("stage_finished", "stage_skipped")}


def test_correlation_matches_scipy_and_csv_change_reruns_only_dependants(tmp_path: Path, e2e_atlas: Path):
    csv = tmp_path / "samples.csv"
    shutil.copy(samples_csv(e2e_atlas), csv)
    spec = write_spec(tmp_path / "s.toml", e2e_atlas, samples=csv)
    out = tmp_path / "out"
    res = cytodask("rebuild", str(spec), "--output", str(out), "-q")
    assert res.returncode == 0, res.stderr

    table = read_table(out / "stages" / "donor_correlation" / "data.zarr")
    act = ad.read_zarr(out / "stages" / "activity" / "data.zarr")
    meta = pd.read_csv(csv).set_index("Sample_name")
    # independent reference: scipy.stats.spearmanr per (cell type, signature, variable), BH by statsmodels
    ct = "Monocyte"
    mask = (act.obs["cell_type_l2"].astype(str) == ct).to_numpy() & ~act.obs["empty"].to_numpy(dtype=bool)
    ages = meta.loc[act.obs["sample"].astype(str)[mask], "Age"].to_numpy()
    z = pd.DataFrame(act.X[mask], columns=act.var_names)
    sub = table[(table["cell_type_l2"] == ct) & (table["variable"] == "Age")].set_index("signature")
    ref_p = []
    for sig in act.var_names:
        r = stats.spearmanr(z[sig].to_numpy(), ages)
        np.testing.assert_allclose(sub.loc[sig, "rho"], r.statistic, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(sub.loc[sig, "pvalue"], r.pvalue, rtol=1e-8)
        ref_p.append(r.pvalue)
        assert sub.loc[sig, "n_samples"] == mask.sum()
    q = multipletests(ref_p, method="fdr_bh")[1]
    np.testing.assert_allclose(sub.loc[list(act.var_names), "qvalue"], q, rtol=1e-10)
    export = pd.read_parquet(out / "exports" / "export" / "correlations.parquet")
    assert list(export.columns[:7]) == ["signature", "signature_type", "variable", "rho", "pvalue", "qvalue",
                                        "n_samples"]

    # edit the metadata CSV: only the correlation stage and the export rerun
    meta["BMI"] = meta["BMI"] + 1.0
    meta.reset_index().to_csv(csv, index=False)
    res = cytodask("rebuild", str(spec), "--output", str(out), "-q")
    assert res.returncode == 0, res.stderr
    assert _events(out) == {"convert": "stage_skipped", "pseudobulk": "stage_skipped", "activity": "stage_skipped",
                            "disease_vs_healthy": "stage_skipped", "donor_correlation": "stage_finished",
                            "export": "stage_finished"}


def test_metadata_errors(tmp_path: Path, e2e_atlas: Path):
    csv = tmp_path / "samples.csv"
    pd.read_csv(samples_csv(e2e_atlas)).rename(columns={"Sample_name": "id"}).to_csv(csv, index=False)
    spec = write_spec(tmp_path / "s.toml", e2e_atlas, samples=csv)
    res = cytodask("rebuild", str(spec), "--output", str(tmp_path / "o"), "-q")
    assert res.returncode == 1
    assert "has no column 'Sample_name'; columns: ['id'" in res.stderr
