"""Tumour vs adjacent, paired: scipy and statsmodels references, exclusions, planted shifts, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.stats as ss
from statsmodels.stats.multitest import multipletests

from cytodask.cancer import tumor_vs_adjacent
from tests.cancer._data import pseudobulk_activity

KW = dict(tissue_col="tissue", donor_col="donorID", cell_type_col="cellType1", cancer_type_col="cancerType")


def _pairs(act, cell_type, cancer_type, signature):
    obs = act.obs
    sel = (obs["cellType1"] == cell_type) & (cancer_type == "pooled" or obs["cancerType"] == cancer_type)
    col = list(act.var_names).index(signature)
    frame = pd.DataFrame({"donor": obs["donorID"], "tissue": obs["tissue"], "v": act.X[:, col]})[sel.to_numpy()]
    wide = frame.pivot_table(index="donor", columns="tissue", values="v").dropna(subset=["Tumor", "Adjacent"])
    return wide["Tumor"].to_numpy(), wide["Adjacent"].to_numpy()


def test_matches_scipy_and_statsmodels():
    act = pseudobulk_activity()
    t = tumor_vs_adjacent(act, **KW)
    assert list(t.columns[:3]) == ["cell_type", "signature", "cancer_type"]
    assert set(t["cancer_type"]) == {"LIHC", "LUAD", "CRC", "pooled"}
    for _, r in t.iterrows():
        x, y = _pairs(act, r.cell_type, r.cancer_type, r.signature)
        assert r.n_pairs == len(x) == (12 if r.cancer_type == "pooled" else 4)
        assert r["diff"] == pytest.approx(np.mean(x - y), rel=1e-12, abs=1e-12)
        if r.test == "paired_t":
            ref = ss.ttest_rel(x, y)
        else:
            ref = ss.wilcoxon(x, y, method="asymptotic", correction=False)
        assert r.statistic == pytest.approx(ref.statistic, rel=1e-10)
        assert r.pvalue == pytest.approx(ref.pvalue, rel=1e-9)
    for _, sub in t.groupby("test"):
        np.testing.assert_allclose(sub["qvalue"], multipletests(sub["pvalue"], method="fdr_bh")[1], rtol=1e-12)
    assert "within each test" in t.attrs["fdr_family"]


def test_unpaired_donors_and_blood_are_excluded():
    act = pseudobulk_activity()
    t = tumor_vs_adjacent(act, **KW)
    assert t.attrs["n_donors_paired"] == 12 and t.attrs["n_donors_unpaired"] == 3
    assert t.attrs["n_rows_other_tissue"] == 3 * 3  # blood of donors 0, 4, 8 in 3 cell types
    changed = act.copy()
    drop = (changed.obs["tissue"] == "Blood") | changed.obs["donorID"].isin(["D12", "D13", "D14"])
    changed.X[drop.to_numpy()] += 100.0
    pd.testing.assert_frame_equal(tumor_vs_adjacent(changed, **KW), t)


def test_planted_shifts_found_with_their_sign():
    t = tumor_vs_adjacent(pseudobulk_activity(), **KW)
    pooled = t[(t["cancer_type"] == "pooled") & (t["test"] == "paired_t")].set_index(["cell_type", "signature"])
    assert pooled.loc[("CD8+ T cell", "IFNG"), "qvalue"] < 0.05 and pooled.loc[("CD8+ T cell", "IFNG"), "diff"] > 1
    assert pooled.loc[("Fibro", "TGFB1"), "qvalue"] < 0.05 and pooled.loc[("Fibro", "TGFB1"), "diff"] < -1
    others = pooled.drop([("CD8+ T cell", "IFNG"), ("Fibro", "TGFB1")])
    assert (others["qvalue"] >= 0.05).all()


def test_without_cancer_type_is_pooled_only():
    t = tumor_vs_adjacent(pseudobulk_activity(), tissue_col="tissue", donor_col="donorID", cell_type_col="cellType1")
    assert set(t["cancer_type"]) == {"pooled"} and (t["n_pairs"] == 12).all()


def test_no_paired_donor_names_columns_and_counts():
    act = pseudobulk_activity()
    act = act[~((act.obs["tissue"] == "Adjacent") & act.obs["donorID"].isin([f"D{d}" for d in range(6, 12)]))]
    act = act[~((act.obs["tissue"] == "Tumor") & act.obs["donorID"].isin([f"D{d}" for d in range(6)]))].copy()
    with pytest.raises(ValueError, match=r"no donor \(column 'donorID'\).*'tissue'.*donors per tissue: "
                                         r"\{'Adjacent': 6, 'Blood': 3, 'Tumor': 9\}"):
        tumor_vs_adjacent(act, **KW)


def test_unknown_tissue_label():
    with pytest.raises(ValueError, match=r"tissue label 'Tumour' is not in column 'tissue'.*'Adjacent'.*pass tumor="):
        tumor_vs_adjacent(pseudobulk_activity(), **KW, tumor="Tumour")


def test_missing_column_and_small_strata():
    with pytest.raises(ValueError, match=r"no column\(s\) \['organ'\]"):
        tumor_vs_adjacent(pseudobulk_activity(), tissue_col="organ", donor_col="donorID", cell_type_col="cellType1")
    t = tumor_vs_adjacent(pseudobulk_activity(), **KW, min_pairs=5)
    per_type = t[t["cancer_type"] != "pooled"]
    assert per_type["pvalue"].isna().all() and (per_type["reason"] == "n_pairs<5").all()
    assert t.loc[t["cancer_type"] == "pooled", "pvalue"].notna().all()
