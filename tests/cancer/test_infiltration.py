"""Immune infiltration through the common vocabulary: fractions, ratio, summaries, Spearman vs scipy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.stats as ss
from statsmodels.stats.multitest import multipletests

from cytodask.cancer import immune_infiltration, infiltration_correlation, infiltration_summary
from tests.cancer._data import CELL_TYPE_MAP, cancer_atlas

KW = dict(sample_col="sampleID", cell_type_col="cellType1", tissue_col="tissue", cancer_type_col="cancerType",
          cell_type_map=CELL_TYPE_MAP)


@pytest.fixture(scope="module")
def atlas():
    return cancer_atlas()


def test_fractions_equal_counts(atlas):
    obs = atlas[0].obs
    t = immune_infiltration(obs, **KW)
    tumor = obs[obs["tissue"] == "Tumor"]
    assert sorted(t["sample"]) == sorted(tumor["sampleID"].unique())
    immune_labels = ["CD8+ T cell", "CD4 Tconv", "Treg cell", "Macro", "NK cell"]
    for _, r in t.iterrows():
        cells = tumor[tumor["sampleID"] == r["sample"]]["cellType1"]
        assert r.n_cells == len(cells)
        assert r.immune_fraction == pytest.approx(cells.isin(immune_labels).mean(), rel=1e-12)
        assert r.fraction_CD8_T == pytest.approx((cells == "CD8+ T cell").mean(), rel=1e-12)
        assert r.fraction_CD4_T == pytest.approx((cells == "CD4 Tconv").mean(), rel=1e-12)  # Treg apart
        assert r.cd8_treg_ratio == pytest.approx((cells == "CD8+ T cell").sum() / (cells == "Treg cell").sum())
    assert t.attrs["unmapped"] == []


def test_vocabulary_not_substrings():
    obs = pd.DataFrame({"s": ["a"] * 6, "ct": ["T", "Fibroblast", "Plasmacytoid DC", "pDC", "CD14 Monocyte",
                                              "Blob 7"]})
    t = immune_infiltration(obs, sample_col="s", cell_type_col="ct", cell_type_map={"Plasmacytoid DC": "pDC"})
    r = t.iloc[0]
    # T, pDC (twice) and CD14 Monocyte are immune; "Fibroblast" contains 't' but is stromal
    assert r.n_immune == 4 and r.fraction_Monocyte == pytest.approx(1 / 6)
    assert r.fraction_Plasma == 0 and r.fraction_DC == 0  # pDC is neither a plasma cell nor a cDC
    assert r.n_unmapped == 1 and t.attrs["unmapped"] == ["Blob 7"]
    assert np.isnan(r.cd8_treg_ratio) and r.reason == "no Treg"


def test_weighted_by_counts_column():
    obs = pd.DataFrame({"s": ["a", "a"], "ct": ["NK", "Fibroblast"], "n": [30, 10]})
    r = immune_infiltration(obs, sample_col="s", cell_type_col="ct", counts_col="n").iloc[0]
    assert r.immune_fraction == pytest.approx(0.75) and r.n_cells == 40


def test_summary_per_cancer_type(atlas):
    t = immune_infiltration(atlas[0].obs, **KW)
    s = infiltration_summary(t).set_index("cancer_type")
    for ct, sub in t.groupby("cancer_type"):
        assert s.loc[ct, "n_samples"] == len(sub)
        assert s.loc[ct, "immune_fraction_mean"] == pytest.approx(sub["immune_fraction"].mean())
    assert s.loc["LIHC", "fraction_CD8_T_mean"] > s.loc["CRC", "fraction_CD8_T_mean"]  # planted mixes


def test_spearman_with_immune_fraction_matches_scipy(atlas):
    expr, activity, _ = atlas
    t = immune_infiltration(expr.obs, **KW)
    rng = np.random.default_rng(5)
    samples = t["sample"].to_numpy()
    x = rng.normal(size=(len(samples), 3))
    x[:, 0] += 8 * t["immune_fraction"].to_numpy()
    import anndata as ad

    act = ad.AnnData(x, obs=pd.DataFrame({"sampleID": samples}, index=samples),
                     var=pd.DataFrame(index=["A", "B", "C"]))
    c = infiltration_correlation(act, t, sample_col="sampleID")
    for _, r in c.iterrows():
        ref = ss.spearmanr(x[:, "ABC".index(r.signature)], t["immune_fraction"])
        assert r.rho == pytest.approx(ref.statistic, rel=1e-12) and r.pvalue == pytest.approx(ref.pvalue, rel=1e-9)
    np.testing.assert_allclose(c["qvalue"], multipletests(c["pvalue"], method="fdr_bh")[1], rtol=1e-12)


def test_unknown_tumor_label(atlas):
    with pytest.raises(ValueError, match=r"tissue label 'Tumour' is not in column 'tissue'"):
        immune_infiltration(atlas[0].obs, **KW, tumor="Tumour")
