"""Truth recovery of the organ stages on the scAtlas-like synthetic world (rebuilt once per session by
tests/cancer/_world.py, shared with tests/cancer/test_world.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cytodask.core.tables import read_table
from cytodask.core.vocabulary import ancestors
from cytodask.demo.spec import DIRICHLET_CONCENTRATION
from cytodask.organ import specificity
from tests.cancer._world import read_activity, stage_data, world_run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def world():
    return world_run()


def _programs(truth):
    return [e for e in truth["effects"] if e["kind"] == "organ_program"]


def test_organ_programs_specific_to_their_organ(world, record_property):
    out, truth, _ = world
    t = read_table(stage_data(out, "organ"))
    top = t[t["gap"] > 0].set_index("signature")
    gaps = {}
    for e in _programs(truth):
        (organ,) = e["groups"]["organ"]
        row = top.loc[e["signature"]]
        z = t[t["signature"] == e["signature"]].set_index("organ")["z_specificity"]
        assert row["organ"] == organ and z.idxmax() == organ and row["qvalue"] < 0.05, (e["id"], row.to_dict())
        gaps[e["signature"]] = row["gap"]
    record_property("organ_program_gaps", gaps)
    # null signatures: their top organ leads by less than any planted program. (Their Kruskal-Wallis q is not
    # asserted: with 3 normal samples per organ and four programs moving correlated signatures through the
    # ridge fit, most signatures differ between some organs; the gap is the measure of specificity.)
    null = top.loc[truth["null"]["signatures"], "gap"]
    record_property("null_max_gap", float(null.max()))
    assert null.max() < min(gaps.values()), null
    profiles = read_table(stage_data(out, "organ"), "profiles")
    for e in _programs(truth):  # the program is the top signature of its organ's profile
        first = profiles[(profiles["organ"] == e["groups"]["organ"][0]) & (profiles["rank"] == 1)]
        assert first["signature"].item() == e["signature"]


def test_only_normal_samples_used(world):
    out, truth, _ = world
    obs = read_activity(out).obs
    normal = obs[(obs["tissue"] == "Normal") & ~obs["empty"].to_numpy(dtype=bool)]
    want = normal.groupby("organ", observed=True)["sampleID"].nunique()
    t = read_table(stage_data(out, "organ"))
    got = t.drop_duplicates("organ").set_index("organ")["n_samples"]
    assert set(got.index) == {"Liver", "Lung", "Colon", "Skin"} and (got == want.reindex(got.index)).all()


def test_constant_leaves_world_specificity_unchanged(world):
    out, _, _ = world
    act = read_activity(out)
    act = act[(act.obs["tissue"] == "Normal").to_numpy()].copy()
    a = specificity(act, organ_col="organ", sample_col="sampleID")
    act.X = act.X + 3.5
    b = specificity(act, organ_col="organ", sample_col="sampleID")
    for col in ("z_specificity", "gap", "pvalue", "qvalue"):  # float32 activity shifted: rounding at 1e-6
        np.testing.assert_allclose(b[col], a[col], rtol=1e-5, atol=1e-6, err_msg=col)
    np.testing.assert_array_equal(a["organ"], b["organ"])


def test_composition_equals_generated_mix(world):
    out, truth, _ = world
    t = read_table(stage_data(out, "composition"))
    assert set(t["organ"]) == {"Liver", "Lung", "Colon", "Skin"}  # tumour, adjacent and blood left out
    crosswalk = truth["crosswalk"]
    expected_entropy = {}
    for organ, sub in t.groupby("organ"):
        mix = truth["composition"][organ]
        n = sub["n_cells"].sum()
        n_samples = sub["n_samples"].iloc[0]
        for _, r in sub.iterrows():
            common = crosswalk[r.cell_type]
            p = sum(v for c, v in mix.items() if common in ancestors(c))
            # Dirichlet(C p) noise per sample averaged over the organ's samples, plus drawing its n cells
            se = np.sqrt(p * (1 - p) * (1 / ((DIRICHLET_CONCENTRATION + 1) * n_samples) + 1 / n))
            assert abs(r.proportion - p) <= 4 * se + 1e-12, (organ, r.cell_type, r.proportion, p)
            expected_entropy[organ] = expected_entropy.get(organ, 0.0) - (p * np.log(p) if p > 0 else 0.0)
        parenchyma = sub.loc[sub["proportion"].idxmax()]
        assert parenchyma["qvalue"] < 0.05 and parenchyma["log2_enrichment"] > 1, parenchyma.to_dict()
    # the least and the most even organ are those of the generating mixes (Skin 1.31, Lung 1.91 nats; the
    # middle two, Liver 1.44 and Colon 1.58, are closer than the sampling noise of three samples)
    entropy = t.groupby("organ")["entropy"].first()
    want = pd.Series(expected_entropy)
    assert entropy.idxmin() == want.idxmin() and entropy.idxmax() == want.idxmax(), (entropy, want)
