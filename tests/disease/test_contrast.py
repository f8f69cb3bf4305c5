"""disease_vs_healthy: scipy/statsmodels references on the same numbers, control scopes, labels, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from cytodask.disease import CONTRAST_COLUMNS, disease_vs_healthy
from tests.disease._data import COLUMNS, STUDY_SHIFT, activity, baseline


@pytest.fixture(scope="module")
def adata():
    return baseline(activity())


def _groups(adata, disease: str, cell_type: str, signature: str, studies=None):
    obs = adata.obs
    healthy = obs["disease"].str.strip().str.lower() == "healthy"
    in_type = obs["Level2"] == cell_type
    x = adata[(obs["disease"] == disease) & in_type, signature].X.ravel().astype(np.float64)
    ctrl = healthy & in_type
    if studies is not None:
        ctrl &= obs["studyID"].isin(studies)
    return x, adata[ctrl, signature].X.ravel().astype(np.float64)


@pytest.mark.parametrize("test", ["wilcoxon", "welch"])
def test_every_statistic_matches_scipy_and_statsmodels(adata, test):
    table = disease_vs_healthy(adata, **COLUMNS, study_col="studyID", test=test)
    assert tuple(table.columns) == CONTRAST_COLUMNS
    assert set(table["disease"]) == {"RA", "SLE", "CD", "PS"}  # every disease in one table
    assert (table["control_scope"] == "study_matched").all()
    obs = adata.obs
    for _, row in table.sample(25, random_state=1).iterrows():
        studies = obs.loc[(obs["disease"] == row["disease"]) & (obs["Level2"] == row["cell_type"]), "studyID"]
        x, y = _groups(adata, row["disease"], row["cell_type"], row["signature"], set(studies))
        assert (row["n_disease"], row["n_healthy"]) == (len(x), len(y))
        if test == "wilcoxon":
            ref = stats.mannwhitneyu(x, y, method="asymptotic", use_continuity=True)
        else:
            ref = stats.ttest_ind(x, y, equal_var=False)
        np.testing.assert_allclose([row["statistic"], row["pvalue"]], [ref.statistic, ref.pvalue], rtol=1e-9)
        if test == "wilcoxon":  # U from Wilcoxon's rank-sum z (no ties in these data): U1 = z sigma + n1 n2 / 2
            n1, n2 = len(x), len(y)
            z = stats.ranksums(x, y).statistic
            np.testing.assert_allclose(row["statistic"], z * np.sqrt(n1 * n2 * (n1 + n2 + 1) / 12) + n1 * n2 / 2,
                                       rtol=1e-9)
        np.testing.assert_allclose(row["diff"], x.mean() - y.mean(), rtol=1e-9)
        n1, n2 = len(x), len(y)
        sp = np.sqrt(((n1 - 1) * x.var(ddof=1) + (n2 - 1) * y.var(ddof=1)) / (n1 + n2 - 2))
        g = (x.mean() - y.mean()) / sp * (1 - 3 / (4 * (n1 + n2) - 9))
        np.testing.assert_allclose(row["hedges_g"], g, rtol=1e-9)
        delta = (np.sign(x[:, None] - y[None, :])).mean()  # Cliff's delta from every pair
        np.testing.assert_allclose(row["cliffs_delta"], delta, rtol=1e-12, atol=1e-12)
    q = multipletests(table["pvalue"].to_numpy(), method="fdr_bh")[1]  # one family: the whole table
    np.testing.assert_allclose(table["qvalue"].to_numpy(), q, rtol=1e-12)
    assert "every (disease x cell type x signature)" in table.attrs["fdr_family"]


def test_dask_schedulers_and_backend_give_one_result(adata):
    a = disease_vs_healthy(adata, **COLUMNS, study_col="studyID", scheduler="sync")
    b = disease_vs_healthy(adata, **COLUMNS, study_col="studyID", scheduler="threads", backend="numpy")
    pd.testing.assert_frame_equal(a, b)


def test_study_matched_controls_remove_the_study_shift_that_all_healthy_would_call(adata):
    matched = disease_vs_healthy(adata, **COLUMNS, study_col="studyID")
    pooled = disease_vs_healthy(adata, **COLUMNS)
    assert (pooled["control_scope"] == "all_healthy").all()

    def il10_hits(t):  # IL10 is planted only as a study-S3 baseline (and as SLE's B-cell driver)
        t = t[(t["signature"] == "IL10") & ~((t["disease"] == "SLE") & (t["cell_type"] == "B"))]
        return t[t["qvalue"] < 0.05]

    # PS is only in study S3: against every healthy sample (a third of them from S3) its IL10 looks up;
    # RA has no S3 sample: its IL10 looks down. Study-matched controls share the shift.
    fp = il10_hits(pooled)
    assert len(fp) >= 3 and set(fp["disease"]) <= {"PS", "RA"}
    assert (fp.loc[fp["disease"] == "PS", "diff"] > 0.4 * STUDY_SHIFT).all()
    assert (fp.loc[fp["disease"] == "RA", "diff"] < 0).all()
    ps = pooled[(pooled["disease"] == "PS") & (pooled["signature"] == "IL10")]
    np.testing.assert_allclose(ps["diff"].mean(), STUDY_SHIFT * 2 / 3, atol=0.5)  # shift x share of non-S3 controls
    assert il10_hits(matched).empty  # study-matched controls share the shift


def test_fallback_to_all_healthy_is_flagged():
    a = baseline(activity())
    drop = (a.obs["studyID"] == "S3") & (a.obs["disease"].str.strip().str.lower() == "healthy") & (
        a.obs["Level2"] == "Mono")
    table = disease_vs_healthy(a[~drop.to_numpy()].copy(), **COLUMNS, study_col="studyID")
    blocks = table.drop_duplicates(["disease", "cell_type"]).set_index(["disease", "cell_type"])["control_scope"]
    assert blocks[("PS", "Mono")] == "all_healthy_fallback"  # PS is S3-only, S3 has no Mono controls left
    assert blocks[("SLE", "Mono")] == "study_matched"  # S2's controls remain
    assert blocks[("PS", "B")] == "study_matched"


def test_healthy_labels_match_case_insensitively(adata):
    table = disease_vs_healthy(adata, **COLUMNS, healthy=["HeAlThY"])
    n_healthy = (adata.obs["disease"].str.strip().str.lower() == "healthy").sum() // 4
    assert (table["n_healthy"] == n_healthy).all() and n_healthy == 18  # 6 per study, three spellings
    assert "healthy" not in {d.lower() for d in table["disease"]}


def test_dataframe_input_and_duplicate_rows_are_averaged_per_sample(adata):
    values = pd.DataFrame(adata.X, index=adata.obs_names, columns=adata.var_names)
    a = disease_vs_healthy(values, obs=adata.obs, **COLUMNS)
    # the same sample twice (as cells): averaged to one value per sample and cell type, not two replicates
    doubled = pd.concat([values - 1.0, values + 1.0])
    doubled.index = [f"c{i}" for i in range(len(doubled))]
    obs2 = pd.concat([adata.obs, adata.obs]).set_axis(doubled.index)
    b = disease_vs_healthy(doubled, obs=obs2, **COLUMNS)
    np.testing.assert_allclose(a["pvalue"], b["pvalue"], rtol=1e-6)
    assert (a["n_disease"] == b["n_disease"]).all()


def test_no_healthy_samples_is_an_error_naming_the_labels(adata):
    sick = adata[adata.obs["disease"].str.strip().str.lower() != "healthy"].copy()
    with pytest.raises(ValueError, match=r"no healthy sample.*healthy=\["):
        disease_vs_healthy(sick, **COLUMNS)
    with pytest.raises(ValueError, match="obs has no column"):
        disease_vs_healthy(adata, disease_col="diagnosis", sample_col="sampleID", cell_type_col="Level2")
    with pytest.raises(ValueError, match="test="):
        disease_vs_healthy(adata, **COLUMNS, test="t")


def test_too_few_disease_samples_give_nan_with_reason(adata):
    obs = adata.obs
    few = (obs["disease"] == "PS") & (obs["Level2"] == "B") & ~obs["sampleID"].isin(["S3_PS0", "S3_PS1"])
    table = disease_vs_healthy(adata[~few.to_numpy()].copy(), **COLUMNS, study_col="studyID")
    block = table[(table["disease"] == "PS") & (table["cell_type"] == "B")]
    assert (block["n_disease"] == 2).all() and (block["reason"] == "n_disease<3").all()
    assert block[["pvalue", "qvalue", "statistic", "hedges_g", "cliffs_delta"]].isna().all().all()
    assert np.isfinite(block["diff"]).all()  # the means are still reported
    other = table[table["reason"] == ""]
    q = multipletests(other["pvalue"].to_numpy(), method="fdr_bh")[1]  # NaN rows are not in the family
    np.testing.assert_allclose(other["qvalue"], q, rtol=1e-12)


def test_a_patient_sampled_twice_is_one_unit_with_patient_col():
    a = activity()  # RA patients have a second sample (timepoint 2)
    per_sample = disease_vs_healthy(a, **COLUMNS)
    per_patient = disease_vs_healthy(a, **COLUMNS, patient_col="patientID")
    ra = per_patient[(per_patient["disease"] == "RA") & (per_patient["cell_type"] == "B")].iloc[0]
    assert per_sample.loc[per_sample["disease"] == "RA", "n_disease"].eq(64).all()  # samples, pseudo-replicated
    assert ra["n_disease"] == 32 and ra["n_healthy"] == 18
    obs = a.obs
    sel = ((obs["disease"] == "RA") & (obs["Level2"] == "B")).to_numpy()
    means = pd.Series(a[sel, ra["signature"]].X.ravel().astype(np.float64)).groupby(
        obs.loc[sel, "patientID"].to_numpy()).mean()
    _, y = _groups(a, "RA", "B", ra["signature"])
    ref = stats.mannwhitneyu(means.to_numpy(), y, method="asymptotic")
    np.testing.assert_allclose([ra["statistic"], ra["pvalue"]], [ref.statistic, ref.pvalue], rtol=1e-9)
