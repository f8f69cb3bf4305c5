"""Cancer-type specificity over tumour samples: Kruskal–Wallis vs scipy, a type with one sample."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats as ss

from cytodask.cancer import cancer_type_specificity
from tests.cancer._data import pseudobulk_activity

KW = dict(cancer_type_col="cancerType", sample_col="sampleID", tissue_col="tissue")


def test_tumour_samples_as_unit_and_scipy():
    act = pseudobulk_activity()
    t = cancer_type_specificity(act, **KW)
    tumor = act[act.obs["tissue"] == "Tumor"]
    per_sample = tumor.to_df().groupby(tumor.obs["sampleID"].to_numpy()).mean()
    ctype = tumor.obs.drop_duplicates("sampleID").set_index("sampleID")["cancerType"]
    for sig, sub in t.groupby("signature"):
        groups = [per_sample.loc[ctype.index[ctype == c], sig].to_numpy() for c in sorted(sub["cancer_type"])]
        ref = ss.kruskal(*groups)
        assert sub["pvalue"].iloc[0] == pytest.approx(ref.pvalue, rel=1e-9)
        np.testing.assert_allclose(sub["mean"], [g.mean() for g in groups], rtol=1e-12)
        means = np.array([g.mean() for g in groups])
        np.testing.assert_allclose(sub["z_specificity"], (means - means.mean()) / means.std(ddof=1), rtol=1e-10)
    assert set(t["n_samples"]) == {5}  # 4 paired + 1 unpaired tumour per type; adjacent and blood left out


def test_cancer_type_with_one_sample():
    act = pseudobulk_activity()
    keep = ~((act.obs["cancerType"] == "CRC") & (act.obs["tissue"] == "Tumor") & (act.obs["sampleID"] != "T2"))
    t = cancer_type_specificity(act[keep.to_numpy()].copy(), **KW)
    crc = t[t["cancer_type"] == "CRC"]
    assert (crc["n_samples"] == 1).all() and (crc["reason"] == "n_samples<2").all()
    assert crc["z_specificity"].isna().all() and crc["mean"].notna().all()
    others = t[t["cancer_type"] != "CRC"]
    assert others["pvalue"].notna().all() and (others["reason"] == "").all()


def test_unknown_tissue_label():
    with pytest.raises(ValueError, match=r"'Tumour' is not in column 'tissue'.*pass tumor="):
        cancer_type_specificity(pseudobulk_activity(), **KW, tumor="Tumour")
