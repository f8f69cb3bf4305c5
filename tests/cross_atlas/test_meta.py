"""Meta-analysis against statsmodels' combine_effects on the same numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.meta_analysis import combine_effects

from cytodask.cross_atlas import fisher_z, meta_analysis
from cytodask.cross_atlas.meta import META_COLUMNS


def _effects(seed: int, spread: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for g in ("IFNG", "IL6", "TNFA"):
        y = rng.normal(0.3, spread, 5)
        se = rng.uniform(0.05, 0.2, 5)
        rows += [{"signature": g, "atlas": f"a{i}", "effect": y[i], "se": se[i]} for i in range(5)]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_and_fixed_equal_statsmodels_dl(seed: int) -> None:
    eff = _effects(seed, spread=0.6)  # heterogeneous: tau² > 0
    out = meta_analysis(eff, effect_col="effect", se_col="se", group_cols=["signature"]).set_index("signature")
    for sig, g in eff.groupby("signature"):
        ref = combine_effects(g["effect"].to_numpy(), g["se"].to_numpy() ** 2, method_re="dl")
        frame = ref.summary_frame()
        row = out.loc[sig]
        assert ref.tau2 > 0
        np.testing.assert_allclose(row["fixed"], frame.loc["fixed effect", "eff"], rtol=1e-12)
        np.testing.assert_allclose(row["fixed_se"], frame.loc["fixed effect", "sd_eff"], rtol=1e-12)
        np.testing.assert_allclose(row["random"], frame.loc["random effect", "eff"], rtol=1e-12)
        np.testing.assert_allclose(row["random_se"], frame.loc["random effect", "sd_eff"], rtol=1e-12)
        np.testing.assert_allclose([row["ci_low"], row["ci_high"]],
                                   frame.loc["random effect", ["ci_low", "ci_upp"]].to_numpy(float), rtol=1e-12)
        np.testing.assert_allclose([row["tau2"], row["q"], row["i2"] / 100], [ref.tau2, ref.q, ref.i2], rtol=1e-10)
        assert row["k"] == 5


@pytest.mark.filterwarnings("ignore:invalid value encountered in sqrt:RuntimeWarning")
def test_homogeneous_effects_truncate_tau2_at_zero() -> None:
    """DerSimonian–Laird truncates τ² at 0 when Q < k − 1 (statsmodels 0.15 leaves it negative): then the
    random estimate is the fixed one, which equals statsmodels' fixed effect."""
    eff = _effects(0, spread=0.01)
    out = meta_analysis(eff, effect_col="effect", se_col="se", group_cols=["signature"]).set_index("signature")
    for sig, g in eff.groupby("signature"):
        ref = combine_effects(g["effect"].to_numpy(), g["se"].to_numpy() ** 2, method_re="dl")
        row = out.loc[sig]
        assert row["tau2"] == 0 and row["i2"] == 0
        np.testing.assert_allclose(row["random"], ref.summary_frame().loc["fixed effect", "eff"], rtol=1e-12)
        assert row["random"] == row["fixed"]


def test_columns_p_q_and_one_atlas() -> None:
    eff = _effects(3, spread=0.3)
    eff = pd.concat([eff, pd.DataFrame([{"signature": "SOLO", "atlas": "a0", "effect": 0.5, "se": 0.1}])])
    out = meta_analysis(eff, effect_col="effect", se_col="se", group_cols=["signature"])
    assert list(out.columns) == ["signature", *META_COLUMNS, "fixed_pvalue", "q_pvalue", "reason"]
    solo = out.set_index("signature").loc["SOLO"]
    assert solo["k"] == 1 and np.isnan(solo["i2"]) and solo["tau2"] == 0 and "one atlas" in solo["reason"]
    from scipy import stats
    from statsmodels.stats.multitest import multipletests

    z = out["random"] / out["random_se"]
    np.testing.assert_allclose(out["pvalue"], 2 * stats.norm.sf(np.abs(z)), rtol=1e-12)
    np.testing.assert_allclose(out["qvalue"], multipletests(out["pvalue"], method="fdr_bh")[1], rtol=1e-12)
    assert out.attrs["fdr_family"]


def test_fisher_z() -> None:
    z, se = fisher_z(np.array([0.5, -0.2, 1.0]), np.array([30, 4, 10]))
    np.testing.assert_allclose(z[:2], np.arctanh([0.5, -0.2]))
    np.testing.assert_allclose(se[0], 1 / np.sqrt(27))
    assert np.isfinite(z[2]) and se[1] == 1.0


def test_bad_input_names_the_columns() -> None:
    eff = _effects(0, 0.3)
    with pytest.raises(ValueError, match=r"\['stderr'\] are not in the effects table"):
        meta_analysis(eff, effect_col="effect", se_col="stderr", group_cols=["signature"])
    with pytest.raises(ValueError, match="group_cols is empty"):
        meta_analysis(eff, effect_col="effect", se_col="se", group_cols=[])
    bad = eff.assign(se=0.0)
    out = meta_analysis(bad, effect_col="effect", se_col="se", group_cols=["signature"])
    assert out["k"].eq(0).all() and out["random"].isna().all() and out["reason"].str.contains("standard error").all()


def test_mean_difference_effects_equal_welch() -> None:
    from scipy import stats

    from cytodask.cross_atlas import mean_difference_effects
    from tests.cross_atlas._data import planted

    data = planted()
    sex = {s: "MF"[int(s.rsplit("-", 1)[1]) % 2] for s in data["sample"].unique()}  # 5 M, 5 F per atlas
    data["sex"] = data["sample"].map(sex)
    out = mean_difference_effects(data)
    assert len(out) == 3 * 6 * 10 and set(out["variable"]) == {"sex"} and (out["n1"] == 5).all()
    few = mean_difference_effects(data[~data["sample"].isin(["cima-1", "cima-3", "cima-5"])])  # cima: 2 F left
    assert len(few) == 2 * 6 * 10 and "cima" not in set(few["atlas"])
    for _, row in out.sample(5, random_state=1).iterrows():
        sub = data[(data["atlas"] == row["atlas"]) & (data["signature"] == row["signature"])
                   & (data["common"] == row["common"])]
        m, f = sub.loc[sub["sex"] == "M", "value"], sub.loc[sub["sex"] == "F", "value"]
        ref = stats.ttest_ind(m, f, equal_var=False)
        np.testing.assert_allclose(row["effect"], m.mean() - f.mean(), rtol=1e-12)
        np.testing.assert_allclose(row["se"], np.sqrt(m.var() / len(m) + f.var() / len(f)), rtol=1e-12)
        np.testing.assert_allclose(row["pvalue"], ref.pvalue, rtol=1e-10)
        assert (row["n1"], row["n2"]) == (len(m), len(f))
    with pytest.raises(ValueError, match="no column 'sex'"):
        mean_difference_effects(data.drop(columns="sex"))
