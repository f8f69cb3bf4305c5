"""driving_populations and conserved_programs: recomputed from the contrast table, planted truth, pooling."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from cytodask.disease import conserved_programs, disease_vs_healthy, driving_populations
from cytodask.disease.api.summaries import CONSERVED_COLUMNS, DRIVER_COLUMNS
from tests.disease._data import COLUMNS, DRIVERS, activity, baseline


@pytest.fixture(scope="module")
def table():
    return disease_vs_healthy(baseline(activity()), **COLUMNS, study_col="studyID")


def test_drivers_recomputed_from_the_table_and_ranked(table):
    d = driving_populations(table)
    assert tuple(d.columns) == DRIVER_COLUMNS
    assert d.attrs["alpha"] == 0.05 and d.attrs["min_abs_diff"] == 0.5  # the stated defaults
    assert len(d) == table[["disease", "cell_type"]].drop_duplicates().shape[0]
    sig = table[(table["qvalue"] < 0.05) & (table["diff"].abs() > 0.5)]
    for _, row in d.iterrows():
        block = table[(table["disease"] == row["disease"]) & (table["cell_type"] == row["cell_type"])]
        s = sig[(sig["disease"] == row["disease"]) & (sig["cell_type"] == row["cell_type"])]
        assert row["n_significant"] == len(s) and row["n_tested"] == block["pvalue"].notna().sum()
        assert row["min_qvalue"] == pytest.approx(block["qvalue"].min(), rel=1e-15)
        if len(s):
            assert row["mean_abs_diff"] == pytest.approx(s["diff"].abs().mean(), rel=1e-12)
            assert row["top_signature"] == s.loc[s["diff"].abs().idxmax(), "signature"] and row["reason"] == ""
        else:
            assert np.isnan(row["mean_abs_diff"]) and row["reason"] == "no significant signature"
    for _, g in d.groupby("disease"):  # ranks 1..n by (n_significant desc, mean |diff| desc)
        assert list(g["rank"]) == list(range(1, len(g) + 1))
        key = list(zip(-g["n_significant"], -g["mean_abs_diff"].fillna(-np.inf), strict=True))
        assert key == sorted(key)


def test_each_planted_driver_population_ranks_first(table):
    d = driving_populations(table)
    first = d[d["rank"] == 1].set_index("disease")
    for disease, (cell_type, signatures) in DRIVERS.items():
        assert first.loc[disease, "cell_type"] == cell_type, disease
        assert first.loc[disease, "top_signature"] in signatures
        assert first.loc[disease, "n_significant"] >= 2


def test_stricter_thresholds_only_remove_signatures(table):
    loose = driving_populations(table, alpha=0.1, min_abs_diff=0.0).set_index(["disease", "cell_type"])
    strict = driving_populations(table, alpha=0.01, min_abs_diff=1.5).set_index(["disease", "cell_type"])
    assert (strict["n_significant"] <= loose.loc[strict.index, "n_significant"]).all()
    assert strict["n_significant"].sum() < loose["n_significant"].sum()


def test_conserved_program_only_where_planted(table):
    c = conserved_programs(table)
    assert tuple(c.columns) == CONSERVED_COLUMNS and c.attrs["min_diseases"] == 3
    conserved = c[c["conserved"]]
    assert list(zip(conserved["signature"], conserved["cell_type"], strict=True)) == [("IFNG", "CD8T")]
    row = conserved.iloc[0]
    assert (row["n_up"], row["n_down"], row["direction"], row["diseases_significant"]) == (3, 0, "up", "CD;RA;SLE")
    assert c[["pooled_g", "tau2"]].isna().all().all()  # pooling not asked for
    sig = table[table["qvalue"] < 0.05]
    for _, r in c.sample(30, random_state=0).iterrows():
        s = sig[(sig["signature"] == r["signature"]) & (sig["cell_type"] == r["cell_type"])]
        assert (r["n_up"], r["n_down"]) == ((s["diff"] > 0).sum(), (s["diff"] < 0).sum())
    # two diseases share IL17A in CD4T (CD and PS drivers): conserved only when two suffice
    c2 = conserved_programs(table, min_diseases=2)
    assert {("IFNG", "CD8T"), ("IL17A", "CD4T")} <= set(zip(c2.loc[c2["conserved"], "signature"],
                                                            c2.loc[c2["conserved"], "cell_type"], strict=True))


def test_pooled_effect_equals_dersimonian_laird_by_hand_and_statsmodels(table):
    from statsmodels.stats.meta_analysis import combine_effects

    c = conserved_programs(table, pooled=True).set_index(["signature", "cell_type"])
    negative = 0
    for key in [("IFNG", "CD8T"), ("IL6", "B"), ("IL10", "Mono"), ("TNFA", "Mono"), ("IL17A", "CD4T")]:
        g = table[(table["signature"] == key[0]) & (table["cell_type"] == key[1])]
        y = g["hedges_g"].to_numpy()
        n1, n2 = g["n_disease"].to_numpy(float), g["n_healthy"].to_numpy(float)
        v = (n1 + n2) / (n1 * n2) + y**2 / (2 * (n1 + n2))  # Hedges & Olkin variance of g
        w = 1 / v
        fixed = (w * y).sum() / w.sum()
        q = (w * (y - fixed) ** 2).sum()
        tau2 = max(0.0, (q - (len(y) - 1)) / (w.sum() - (w**2).sum() / w.sum()))  # DerSimonian & Laird 1986
        ws = 1 / (v + tau2)
        est, se = (ws * y).sum() / ws.sum(), np.sqrt(1 / ws.sum())
        r = c.loc[key]
        np.testing.assert_allclose([r["pooled_g"], r["pooled_se"], r["tau2"]], [est, se, tau2], rtol=1e-10)
        np.testing.assert_allclose(r["pooled_pvalue"], 2 * stats.norm.sf(abs(est / se)), rtol=1e-8)
        np.testing.assert_allclose([r["pooled_ci_low"], r["pooled_ci_high"]],
                                   est + np.array([-1, 1]) * stats.norm.ppf(0.975) * se, rtol=1e-8)
        np.testing.assert_allclose(r["i2"], max(0.0, (q - (len(y) - 1)) / q), rtol=1e-8, atol=1e-12)
        ref = combine_effects(y, v, method_re="dl")  # statsmodels leaves tau2 < 0 untruncated
        if ref.tau2 >= 0:
            sm = ref.summary_frame().loc["random effect"]
            np.testing.assert_allclose([r["pooled_g"], r["pooled_se"], r["pooled_ci_low"], r["tau2"]],
                                       [sm["eff"], sm["sd_eff"], sm["ci_low"], ref.tau2], rtol=1e-10)
        else:
            negative += 1
            assert r["tau2"] == 0.0
    assert 0 < negative < 5  # both branches checked
    assert c.loc[("IFNG", "CD8T"), "pooled_g"] > 1 and c.loc[("IFNG", "CD8T"), "pooled_pvalue"] < 1e-3


def test_bad_input(table):
    with pytest.raises(TypeError, match="needs the DataFrame of disease_vs_healthy"):
        driving_populations(table.to_numpy())
    with pytest.raises(ValueError, match=r"lacks \['qvalue'\]"):
        conserved_programs(table.drop(columns="qvalue"))
    with pytest.raises(ValueError, match="min_diseases=0"):
        conserved_programs(table, min_diseases=0)
    empty = driving_populations(table.iloc[:0])
    assert empty.empty and tuple(empty.columns) == DRIVER_COLUMNS
    nothing = driving_populations(table.assign(qvalue=1.0))
    assert (nothing["n_significant"] == 0).all() and nothing["mean_abs_diff"].isna().all()
    assert set(nothing["reason"]) == {"no significant signature"}
    assert isinstance(nothing, pd.DataFrame)
