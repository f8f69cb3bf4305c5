"""longitudinal_change: scipy wilcoxon and statsmodels MixedLM on the same numbers, planted change, no repeats."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from cytodask.disease import longitudinal_change
from cytodask.disease.api.longitudinal import LONGITUDINAL_COLUMNS, NO_REPEATS
from tests.disease._data import CHANGE, COLUMNS, SIGNATURES, activity, baseline

LONG = {"patient_col": "patientID", "timepoint_col": "timepoint", "sample_col": "sampleID",
        "cell_type_col": "Level2", "disease_col": "disease"}


@pytest.fixture(scope="module")
def adata():
    return activity()


@pytest.fixture(scope="module")
def paired(adata):
    return longitudinal_change(adata, **LONG)


def _pairs(adata, cell_type: str, signature: str) -> tuple[np.ndarray, np.ndarray]:
    a = adata[(adata.obs["disease"] == "RA").to_numpy() & (adata.obs["Level2"] == cell_type).to_numpy(), signature]
    frame = pd.DataFrame({"p": a.obs["patientID"].to_numpy(), "t": a.obs["timepoint"].to_numpy(),
                          "v": np.asarray(a.X, dtype=np.float64).ravel()}).pivot(index="p", columns="t", values="v")
    return frame[2].to_numpy(), frame[1].to_numpy()


def test_signed_rank_equals_scipy_and_bh_statsmodels(adata, paired):
    assert tuple(paired.columns) == LONGITUDINAL_COLUMNS and paired["has_longitudinal"].all()
    assert set(paired["disease"]) == {"RA"}  # only RA patients were sampled twice
    assert (paired["n_patients"] == 32).all() and len(paired) == 4 * len(SIGNATURES)
    for _, row in paired.sample(12, random_state=2).iterrows():
        later, earlier = _pairs(adata, row["cell_type"], row["signature"])
        d = later - earlier  # later - earlier, the documented sign
        ref = stats.wilcoxon(d, zero_method="wilcox", correction=False, method="asymptotic")
        np.testing.assert_allclose([row["statistic"], row["pvalue"]], [ref.statistic, ref.pvalue], rtol=1e-9)
        np.testing.assert_allclose([row["mean_change"], row["median_change"], row["estimate"]],
                                   [d.mean(), np.median(d), d.mean()], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(paired["qvalue"], multipletests(paired["pvalue"], method="fdr_bh")[1], rtol=1e-12)
    assert "every (disease x) cell type x signature" in paired.attrs["fdr_family"]


def test_planted_change_is_recovered_and_nothing_else(paired):
    hit = paired[(paired["cell_type"] == "CD4T") & (paired["signature"] == "IFNG")].iloc[0]
    # mean of 32 differences of two N(0, 1): SE sqrt(2/32) = 0.25; 3 SE
    assert hit["qvalue"] < 0.01 and abs(hit["mean_change"] - CHANGE) < 0.75
    others = paired.drop(index=hit.name)
    assert (others["qvalue"] < 0.05).sum() <= 1  # 47 null rows at FDR 5 %


def test_mixed_model_equals_statsmodels_mixedlm(adata):
    import statsmodels.formula.api as smf

    table = longitudinal_change(adata, **LONG, method="mixedlm")
    assert set(table["method"]) == {"mixedlm"}
    row = table[(table["cell_type"] == "CD4T") & (table["signature"] == "IFNG")].iloc[0]
    a = adata[(adata.obs["disease"] == "RA").to_numpy() & (adata.obs["Level2"] == "CD4T").to_numpy(), "IFNG"]
    data = pd.DataFrame({"y": np.asarray(a.X, dtype=np.float64).ravel(), "t": a.obs["timepoint"].to_numpy(float),
                         "g": a.obs["patientID"].astype(str).to_numpy()})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = smf.mixedlm("y ~ t", data, groups=data["g"]).fit(reml=True)
    np.testing.assert_allclose([row["estimate"], row["statistic"], row["pvalue"]],
                               [fit.params["t"], fit.tvalues["t"], fit.pvalues["t"]], rtol=1e-8)
    assert abs(row["estimate"] - CHANGE) < 0.75 and row["qvalue"] < 0.01
    np.testing.assert_allclose(table["qvalue"], multipletests(table["pvalue"], method="fdr_bh")[1], rtol=1e-12)


def test_middle_timepoints_and_too_few_patients():
    rng = np.random.default_rng(3)
    rows = []
    for p in range(5):
        for t in (1, 2, 3):
            rows.append({"sampleID": f"P{p}_T{t}", "patientID": f"P{p}", "timepoint": t, "Level2": "B",
                         "disease": "RA"})
    rows += [{"sampleID": f"Q{p}_T{t}", "patientID": f"Q{p}", "timepoint": t, "Level2": "T", "disease": "RA"}
             for p in range(2) for t in (1, 2)]
    obs = pd.DataFrame(rows).set_index("sampleID", drop=False)
    obs.index.name = None
    values = pd.DataFrame(rng.normal(size=(len(obs), 2)), index=obs.index, columns=["A", "B"])
    table = longitudinal_change(values, obs=obs, **LONG)
    b = table[table["cell_type"] == "B"].set_index("signature")
    first = values[obs["timepoint"] == 1].to_numpy()
    last = values[obs["timepoint"] == 3].to_numpy()
    np.testing.assert_allclose(b.loc[["A", "B"], "mean_change"], (last[:5] - first[:5]).mean(axis=0), rtol=1e-12)
    t = table[table["cell_type"] == "T"]
    assert (t["reason"] == "n_patients<3").all() and t["pvalue"].isna().all() and (t["n_patients"] == 2).all()


def test_no_repeated_patient_is_a_stated_false_not_an_empty_table(adata):
    table = longitudinal_change(baseline(adata), **LONG)
    assert len(table) == 1 and not table["has_longitudinal"].iloc[0]
    assert table["reason"].iloc[0] == NO_REPEATS and table.attrs["has_longitudinal"] is False
    with pytest.raises(ValueError, match="has no numeric value"):
        longitudinal_change(adata.copy(), **{**LONG, "timepoint_col": "disease"})
    with pytest.raises(ValueError, match="method="):
        longitudinal_change(adata, **LONG, method="anova")
    with pytest.raises(ValueError, match=r"obs has no column\(s\) \['visit'\]"):
        longitudinal_change(adata, **{**LONG, "timepoint_col": "visit"})
    assert COLUMNS["cell_type_col"] == LONG["cell_type_col"]
