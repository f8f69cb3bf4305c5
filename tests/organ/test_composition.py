"""Organ composition: count-weighted proportions, Shannon entropy (scipy), enrichment tested over samples
(scipy mannwhitneyu, statsmodels BH), labels compared as exact strings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.stats as ss
from statsmodels.stats.multitest import multipletests

from cytodask.organ import composition
from tests.organ._data import MIX, organ_cells

KW = dict(organ_col="organ", sample_col="sampleID", cell_type_col="cellType1")


def test_proportions_entropy_and_enrichment_match_references():
    obs = organ_cells()
    t = composition(obs, **KW)
    assert list(t.columns[:4]) == ["organ", "cell_type", "n_cells", "proportion"]
    counts = pd.crosstab(obs["organ"], obs["cellType1"])
    sample_prop = pd.crosstab(obs["sampleID"], obs["cellType1"], normalize="index")
    organ_of = obs.drop_duplicates("sampleID").set_index("sampleID")["organ"].reindex(sample_prop.index)
    for _, r in t.iterrows():
        row = counts.loc[r.organ]
        assert r.n_cells == row[r.cell_type]
        assert r.proportion == pytest.approx(row[r.cell_type] / row.sum(), rel=1e-12)  # cells, not samples
        assert r.overall_proportion == pytest.approx(counts[r.cell_type].sum() / counts.to_numpy().sum(), rel=1e-12)
        assert r.entropy == pytest.approx(ss.entropy(row.to_numpy()), rel=1e-12)  # natural log
        if r.proportion > 0:
            assert r.log2_enrichment == pytest.approx(np.log2(r.proportion / r.overall_proportion), rel=1e-12)
        else:
            assert r.log2_enrichment == -np.inf
        x = sample_prop.loc[organ_of == r.organ, r.cell_type]
        y = sample_prop.loc[organ_of != r.organ, r.cell_type]
        ref = ss.mannwhitneyu(x, y, method="asymptotic", use_continuity=True, alternative="two-sided")
        assert r.statistic == pytest.approx(ref.statistic) and r.pvalue == pytest.approx(ref.pvalue, rel=1e-9)
        assert r.mean_sample_proportion == pytest.approx(x.mean(), rel=1e-12)
    np.testing.assert_allclose(t["qvalue"], multipletests(t["pvalue"], method="fdr_bh")[1], rtol=1e-12)
    assert "every organ x cell type" in t.attrs["fdr_family"]


def test_planted_mixes_recovered():
    t = composition(organ_cells(), **KW).set_index(["organ", "cell_type"])
    for organ, mix in MIX.items():
        for ct, p in mix.items():
            # ~600 cells per organ: a binomial sd below 0.02, so within 0.06 (3 sd) of the generating mix
            assert abs(t.loc[(organ, ct), "proportion"] - p) < 0.06, (organ, ct)
        parenchyma = list(mix)[-1]
        assert t.loc[(organ, parenchyma), "qvalue"] < 0.05 and t.loc[(organ, parenchyma), "log2_enrichment"] > 1
    assert (t.xs("CD88 T cell", level="cell_type")["qvalue"] >= 0.05).all()  # same share in every organ
    entropy = t.groupby("organ")["entropy"].first()
    assert entropy.idxmax() == "Lung"  # the most even of the four mixes


def test_labels_matched_literally():
    t = composition(organ_cells(), **KW)
    assert {"CD8+ T cell", "CD88 T cell"} <= set(t["cell_type"])
    obs = organ_cells()
    cd8 = t[t["cell_type"] == "CD8+ T cell"].set_index("organ")["n_cells"]
    assert (cd8 == obs[obs["cellType1"] == "CD8+ T cell"].groupby("organ").size()).all()


def test_too_few_samples_and_missing_column():
    obs = organ_cells(n_samples=2)
    t = composition(obs, **KW)  # min_samples 3 by default
    assert t["pvalue"].isna().all() and (t["reason"] != "").all() and t["proportion"].notna().all()
    with pytest.raises(ValueError, match=r"organ.composition: obs has no column\(s\) \['tissue'\]"):
        composition(obs, organ_col="tissue", sample_col="sampleID", cell_type_col="cellType1")
