"""Organ profiles and specificity: scipy and statsmodels references, invariance to a constant, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.stats as ss
from statsmodels.stats.multitest import multipletests

from cytodask.organ import organ_profiles, profile_correlation, specificity
from tests.organ._data import ORGANS, PLANTED, SIGNATURES, organ_activity

KW = dict(organ_col="organ", sample_col="sampleID")


def _per_sample(act):
    """Samples × signatures: the mean of each sample's rows (pandas), and each sample's organ."""
    frame = act.to_df()
    means = frame.groupby(act.obs["sampleID"].to_numpy()).mean()
    organ = act.obs.drop_duplicates("sampleID").set_index("sampleID")["organ"].reindex(means.index)
    return means, organ


def test_profiles_mean_sd_rank_and_spearman():
    act = organ_activity()
    prof = organ_profiles(act, **KW)
    means, organ = _per_sample(act)
    for (o, sig), r in prof.set_index(["organ", "signature"]).iterrows():
        v = means.loc[organ == o, sig]
        assert r["mean"] == pytest.approx(v.mean(), rel=1e-12) and r["sd"] == pytest.approx(v.std(ddof=1), rel=1e-12)
        assert r["n_samples"] == 5
    for o, sub in prof.groupby("organ"):
        assert list(sub.sort_values("rank")["signature"]) == list(means[organ == o].mean().sort_values(
            ascending=False).index)
        assert (sub["rank"] + sub["rank_from_bottom"] == len(SIGNATURES) + 1).all()
    for sig, o in PLANTED.items():  # the planted program tops its organ's profile
        assert prof[(prof["organ"] == o) & (prof["rank"] == 1)]["signature"].item() == sig
    corr = profile_correlation(prof)
    wide = prof.pivot(index="signature", columns="organ", values="mean")
    for a in ORGANS:
        for b in ORGANS:
            assert corr.loc[a, b] == pytest.approx(ss.spearmanr(wide[a], wide[b]).statistic, rel=1e-12, abs=1e-15)


def test_specificity_matches_scipy_kruskal_and_bh():
    act = organ_activity()
    t = specificity(act, **KW)
    assert list(t.columns[:7]) == ["signature", "organ", "mean", "sd", "n_samples", "z_specificity", "gap"]
    assert {"pvalue", "qvalue"} <= set(t.columns)
    means, organ = _per_sample(act)
    pooled_var = {}
    for sig, sub in t.groupby("signature"):
        sub = sub.set_index("organ").loc[ORGANS]
        groups = [means.loc[organ == o, sig].to_numpy() for o in ORGANS]
        ref = ss.kruskal(*groups)
        assert sub["statistic"].iloc[0] == pytest.approx(ref.statistic, rel=1e-10)
        assert sub["pvalue"].iloc[0] == pytest.approx(ref.pvalue, rel=1e-9)
        m = np.array([g.mean() for g in groups])
        np.testing.assert_allclose(sub["z_specificity"], (m - m.mean()) / m.std(ddof=1), rtol=1e-10)
        pooled_var[sig] = sum(((g - g.mean()) ** 2).sum() for g in groups) / (sum(map(len, groups)) - len(groups))
        gap = [(m[i] - np.delete(m, i).max()) / np.sqrt(pooled_var[sig]) for i in range(len(m))]
        np.testing.assert_allclose(sub["gap"], gap, rtol=1e-10)
        assert (sub["gap"] > 0).sum() == 1  # only the top organ leads
    first = t.drop_duplicates("signature")
    np.testing.assert_allclose(first["qvalue"], multipletests(first["pvalue"], method="fdr_bh")[1], rtol=1e-12)
    assert "Kruskal-Wallis" in t.attrs["fdr_family"]
    top = t[t["gap"] > 0].set_index("signature")
    for sig, o in PLANTED.items():
        assert top.loc[sig, "organ"] == o and top.loc[sig, "qvalue"] < 0.05 and top.loc[sig, "gap"] > 1
    assert (top.drop(list(PLANTED))["qvalue"] >= 0.05).all()


@pytest.mark.parametrize("constant", [7.3, -120.0])
def test_invariant_to_adding_a_constant(constant):
    act = organ_activity()
    shifted = act.copy()
    shifted.X = shifted.X + constant
    a, b = specificity(act, **KW), specificity(shifted, **KW)
    # differences of means and ranks only: equal up to rounding of the shifted sums (|constant| * 1e-15 scale)
    for col in ("z_specificity", "gap", "statistic", "pvalue", "qvalue", "sd"):
        np.testing.assert_allclose(b[col], a[col], rtol=1e-9, atol=1e-12, err_msg=col)
    np.testing.assert_allclose(b["mean"], a["mean"] + constant, rtol=1e-12)


def test_no_program_is_not_specific():
    """Without a planted program a tau on min-shifted organ means still reads 0.45-0.8 ("specific"); the gap
    and the Kruskal-Wallis q do not, while the planted programs lead by more than 1 pooled sd."""
    t = specificity(organ_activity(shift=0.0), **KW)
    for _, sub in t.groupby("signature"):
        shifted = sub["mean"] - sub["mean"].min()
        tau = (1 - shifted / shifted.max()).sum() / (len(sub) - 1)
        assert tau > 0.45 and sub["gap"].max() < 1.2 and sub["qvalue"].iloc[0] > 0.3
    planted = specificity(organ_activity(), **KW)
    assert (planted[planted["signature"].isin(list(PLANTED))].groupby("signature")["gap"].max() > 1.5).all()


def test_cell_types_stratified_never_pooled():
    act = organ_activity()
    t = specificity(act, **KW, cell_type_col="cellType1")
    assert set(t["cellType1"]) == {"CD8+ T cell", "Fibroblast", "Endothelial"}
    for ct, sub in t.groupby("cellType1"):
        alone = specificity(act[(act.obs["cellType1"] == ct).to_numpy()].copy(), **KW)
        np.testing.assert_allclose(sub["pvalue"].to_numpy(), alone["pvalue"].to_numpy(), rtol=1e-12)
        np.testing.assert_allclose(sub["z_specificity"].to_numpy(), alone["z_specificity"].to_numpy(), rtol=1e-12)
    first = t.drop_duplicates(["cellType1", "signature"])
    np.testing.assert_allclose(first["qvalue"], multipletests(first["pvalue"], method="fdr_bh")[1], rtol=1e-12)


def test_organ_with_one_sample_gets_a_reason():
    act = organ_activity()
    keep = (act.obs["organ"] != "Skin") | (act.obs["sampleID"] == "Skin_S0")
    t = specificity(act[keep.to_numpy()].copy(), **KW)
    skin = t[t["organ"] == "Skin"]
    assert (skin["n_samples"] == 1).all() and (skin["reason"] == "n_samples<2").all()
    assert skin[["z_specificity", "gap", "pvalue", "qvalue"]].isna().all().all() and skin["mean"].notna().all()
    rest = t[t["organ"] != "Skin"]
    assert rest["pvalue"].notna().all() and (rest["reason"] == "").all()


def test_bad_input():
    act = organ_activity()
    with pytest.raises(ValueError, match=r"organ.specificity: obs has no column\(s\) \['tissue'\]"):
        specificity(act, organ_col="tissue", sample_col="sampleID")
    two = act.copy()
    two.obs["organ"] = two.obs["organ"].astype(str)
    two.obs.loc[two.obs_names[0], "organ"] = "Lung"  # Colon_S0's first row now says Lung
    with pytest.raises(ValueError, match=r"sample\(s\) \['Colon_S0'\] have several values of 'organ'"):
        specificity(two, **KW)
    with pytest.raises(TypeError, match=r"AnnData .* or a \(values, obs\) pair"):
        specificity(act.X, **KW)
    frame = (act.to_df(), act.obs)
    pd.testing.assert_frame_equal(specificity(frame, **KW), specificity(act, **KW))
