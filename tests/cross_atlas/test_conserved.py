"""Kendall's W (tie-corrected) against scipy's Friedman test; planted conserved vs atlas-specific programs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from cytodask.cross_atlas import conserved_signatures, kendall_w, sign_consistency
from tests.cross_atlas._data import TYPES, planted


@pytest.mark.parametrize("seed", range(4))
def test_w_is_friedman_chi2_over_m_n_minus_1_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 4, size=(3 + seed, 7)).astype(float)  # many ties
    w, chi2, p = kendall_w(x)
    ref = stats.friedmanchisquare(*x.T)  # items as groups, raters as blocks; scipy corrects for ties
    m, n = x.shape
    np.testing.assert_allclose(chi2, ref.statistic, rtol=1e-12)
    np.testing.assert_allclose(w, ref.statistic / (m * (n - 1)), rtol=1e-12)
    np.testing.assert_allclose(p, ref.pvalue, rtol=1e-10)


def test_w_extremes() -> None:
    assert kendall_w(np.tile(np.arange(5.0), (3, 1)))[0] == pytest.approx(1.0)
    w, _, _ = kendall_w(np.array([[1.0, 2, 3, 4], [4, 3, 2, 1]]))
    assert w == pytest.approx(0.0)
    with pytest.raises(ValueError, match="≥ 2 raters"):
        kendall_w(np.ones((1, 4)))


def test_planted_conserved_program_has_high_w_and_the_specific_one_does_not() -> None:
    out = conserved_signatures(planted()).set_index("signature")
    assert out.loc["CONS", "W"] > 0.95 and out.loc["CONS", "pvalue"] < 0.05  # 3 atlases × 6 types: chi2 15 on 5 df
    assert out.loc["CONS", "top_type"] == "CD8 T"
    assert out.loc["SPEC", "W"] < out.loc["CONS", "W"] - 0.3
    assert (out.loc[out.index.str.startswith("N"), "qvalue"] > 0.05).all()
    assert out.loc["CONS", "n_atlases"] == 3 and out.loc["CONS", "n_types"] == len(TYPES)


def test_w_does_not_rest_on_the_atlas_mean() -> None:
    """Adding a constant to one atlas (its overall mean) changes no W."""
    data = planted()
    moved = data.assign(value=data["value"] + np.where(data["atlas"] == "cima", 5.0, 0.0))
    pd.testing.assert_series_equal(conserved_signatures(data)["W"], conserved_signatures(moved)["W"])


def test_one_atlas_and_no_shared_types_are_refused() -> None:
    data = planted()
    with pytest.raises(ValueError, match="at least two atlases.*cima"):
        conserved_signatures(data[data["atlas"] == "cima"])
    apart = data.assign(common=data["atlas"] + ":" + data["common"])  # no type in two atlases
    with pytest.raises(ValueError, match="no signature has 3 cell types shared"):
        conserved_signatures(apart)
    few = data[data["common"].isin(["CD8 T", "NK"])]
    with pytest.raises(ValueError, match="at most 2"):
        conserved_signatures(few)


def test_sign_consistency() -> None:
    eff = pd.DataFrame({"atlas": ["a", "b", "c", "a", "b", "c", "a", "b"],
                        "signature": ["IFNG"] * 3 + ["IL6"] * 3 + ["TNFA"] * 2,
                        "effect": [0.5, 0.3, 0.2, 0.5, -0.4, 0.1, 0.3, 0.2],
                        "qvalue": [0.01, 0.02, 0.5, 0.01, 0.01, 0.9, 0.2, 0.3]})
    out = sign_consistency(eff, effect_col="effect", q_col="qvalue", group_cols=["signature"]).set_index("signature")
    assert out.loc["IFNG", ["n_sig", "n_up", "n_down"]].tolist() == [2, 2, 0]
    assert bool(out.loc["IFNG", "consistent"]) and out.loc["IFNG", "direction"] == "up"
    assert not out.loc["IL6", "consistent"] and out.loc["IL6", "direction"] == "mixed"
    assert not out.loc["TNFA", "consistent"] and out.loc["TNFA", "direction"] == ""
    with pytest.raises(ValueError, match="q"):
        sign_consistency(eff, effect_col="effect", q_col="q", group_cols=["signature"])


def test_an_atlas_sharing_no_cell_type_is_named() -> None:
    """A fourth atlas of liver cells shares no type (nor an ancestor) with three blood atlases: the error names
    it, its types and the fix, instead of every W coming out NaN."""
    from cytodask.cross_atlas.api import cross_atlas_tables

    data = planted()
    rng = np.random.default_rng(0)
    liver = pd.DataFrame([("liver", f"liver-{s}", t, t, sig, rng.normal()) for s in range(6)
                          for t in ("Hepatocyte", "Fibroblast", "Endothelial") for sig in data["signature"].unique()],
                         columns=data.columns)
    both = pd.concat([data, liver], ignore_index=True)
    mapping = both[["atlas", "label", "common"]].drop_duplicates().assign(source="table", score=1.0)
    with pytest.raises(ValueError, match=r"atlas 'liver' shares no cell type with the other atlases \(its common "
                                         r"types: \['Endothelial', 'Fibroblast', 'Hepatocyte'\].*leave it out"):
        cross_atlas_tables(both, mapping)
    unmapped = both.assign(common=both["common"].where(both["atlas"] != "liver"))
    with pytest.raises(ValueError, match="none: every label unmapped"):
        cross_atlas_tables(unmapped, mapping)
    tables = cross_atlas_tables(data, mapping[mapping["atlas"] != "liver"])  # without it: every W computed
    assert tables["conserved"]["W"].notna().all()
