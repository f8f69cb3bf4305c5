"""The cross_atlas and search_index stages on the three synthetic atlases (issue 16's world) as result stores."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.meta_analysis import combine_effects

from cytodask.core.config import Config
from cytodask.core.runner import run_stages
from cytodask.core.store import ResultStore
from cytodask.core.tables import read_table
from cytodask.cross_atlas import CrossAtlasStage, conserved_signatures, harmonize, long_activities
from cytodask.search import SearchIndex, SearchIndexStage, search


@pytest.fixture(scope="module")
def run(world, tmp_path_factory):
    root = tmp_path_factory.mktemp("cross_atlas_run")
    entries = [w["entry"] for w in world.values()]
    stages = [CrossAtlasStage("cross_atlas", atlases=entries),
              SearchIndexStage("search_index", atlases=[{"name": e["name"], "results": e["results"]} for e in entries])]
    store = ResultStore(root)
    store.ensure()
    first = run_stages(stages, store, Config(output_dir=root))
    return store, stages, first


def test_every_label_in_the_data_maps_to_its_planted_common_type(world, run) -> None:
    store, _, _ = run
    mapping = read_table(store.stage_path("cross_atlas"), "mapping")
    for atlas, w in world.items():
        planted = w["truth"]["crosswalk"]
        got = mapping[mapping["atlas"] == atlas].set_index("label")["common"]
        assert len(got) >= 10
        for label, common in got.items():
            assert common == planted[label], (atlas, label)


def test_planted_age_ifng_in_cd8_t_is_pooled_with_its_sign(world, run) -> None:
    store, _, _ = run
    planted = next(e for e in world["cima"]["truth"]["effects"] if e["id"] == "assoc_Age_IFNG")
    meta = read_table(store.stage_path("cross_atlas"), "meta").set_index(["signature", "variable", "common"])
    row = meta.loc[("IFNG", "age", planted["common"])]
    assert row["k"] == 2 and np.sign(row["fixed"]) == planted["rho_sign"] == np.sign(row["random"])
    assert row["fixed_pvalue"] < 1e-4
    # the same numbers through statsmodels
    from cytodask.cross_atlas.inputs import correlation_effects, stage_dir

    entries = [w["entry"] for w in world.values()]
    long, mapping = long_activities(entries)
    corr = {a["name"]: read_table(stage_dir(a, a["correlation"])) for a in entries if a.get("correlation")}
    eff = correlation_effects(corr, mapping, {a["name"]: a["cell_type"] for a in entries})
    up = dict(read_table(store.stage_path("cross_atlas"), "mapping")[["common", "compared_as"]].values)
    eff["common"] = eff["common"].map(up)
    g = (eff[(eff["signature"] == "IFNG") & (eff["common"] == planted["common"])]
         .sort_values(["n", "atlas"], ascending=[False, True]).drop_duplicates("atlas"))
    ref = combine_effects(g["effect"].to_numpy(), g["se"].to_numpy() ** 2, method_re="dl").summary_frame()
    np.testing.assert_allclose([row["fixed"], row["random"]], ref.loc[["fixed effect", "random effect"], "eff"],
                               rtol=1e-12)


def test_sex_is_pooled_and_nothing_was_planted_on_it(run) -> None:
    store, _, _ = run
    meta = read_table(store.stage_path("cross_atlas"), "meta")
    sex = meta[meta["variable"] == "sex"]
    assert len(sex) > 100 and (sex["k"] == 2).mean() > 0.5  # CIMA and Inflammation carry sex
    assert (sex["qvalue"] < 0.05).mean() < 0.05  # the world's sex is null


def test_a_planted_atlas_shift_is_removed_and_changes_no_w(world) -> None:
    long, _ = long_activities([w["entry"] for w in world.values()])
    from cytodask.cross_atlas.profiles import roll_up

    long = roll_up(long)
    shifted = long.assign(value=long["value"] + np.where(long["atlas"] == "scatlas", 3.0, 0.0))
    pd.testing.assert_series_equal(conserved_signatures(long)["W"], conserved_signatures(shifted)["W"])
    h = harmonize(shifted)
    assert np.ptp(h.groupby("atlas")["value"].mean()) > 2.5
    assert np.ptp(h.groupby("atlas")["harmonized"].mean()) < 0.3
    before = h.groupby(["atlas", "common"])["value"].mean().unstack(0)
    after = h.groupby(["atlas", "common"])["harmonized"].mean().unstack(0)
    for atlas in before.columns:  # cell-type differences within an atlas survive
        pair = pd.concat([before[atlas], after[atlas]], axis=1).dropna()
        assert len(pair) >= 3 and np.corrcoef(pair.iloc[:, 0], pair.iloc[:, 1])[0, 1] > 0.9


def test_programs_planted_on_the_world_conserved_high_w_specific_not(world) -> None:
    """Two signatures the world plants nothing in (truth "null" of all three atlases) get a cell-type program
    added to their activities: the same ranking of the shared types in every atlas (conserved), or a different
    one per atlas (atlas-specific: as planted, reversed, shuffled). W rises to ≈ 1 for the first only."""
    from cytodask.cross_atlas import consistency
    from cytodask.cross_atlas.profiles import roll_up

    long = roll_up(long_activities([w["entry"] for w in world.values()])[0])
    null = sorted(set.intersection(*(set(w["truth"]["null"]["signatures"]) for w in world.values())))
    cons, spec = null[:2]
    shared = sorted(set.intersection(*(set(g["common"]) for _, g in long.groupby("atlas"))))
    assert len(shared) >= 5
    before = conserved_signatures(long).set_index("signature")
    assert (before.loc[[cons, spec], "pvalue"] > 0.01).all()  # nothing planted yet
    step = 3 * long["value"].std()  # well above the noise of a mean over samples
    program = dict(zip(shared, np.linspace(-1, 1, len(shared)) * step, strict=True))
    shuffled = [shared[i] for i in np.random.default_rng(1).permutation(len(shared))]
    orders = {"cima": shared, "inflammation": shared[::-1], "scatlas": shuffled}
    planted = long.copy()
    for atlas, order in orders.items():
        for sig, types in ((cons, shared), (spec, order)):
            rows = (planted["atlas"] == atlas) & (planted["signature"] == sig) & planted["common"].isin(shared)
            planted.loc[rows, "value"] += planted.loc[rows, "common"].map(dict(zip(types, program.values(),
                                                                                   strict=True)))
    after = conserved_signatures(planted).set_index("signature")
    assert after.loc[cons, "W"] > 0.9 and after.loc[cons, "pvalue"] < 0.01 and after["W"].idxmax() == cons
    assert after.loc[spec, "W"] < 0.5 and after.loc[spec, "pvalue"] > 0.05
    score = consistency(planted).set_index("signature")["score"]
    assert score[cons] > 0.9 and score[spec] < 0.5


def test_stages_resume_and_report(run) -> None:
    store, stages, first = run
    assert [r.state for r in first] == ["computed", "computed"]
    again = run_stages(stages, store, Config(output_dir=store.root))
    assert [r.state for r in again] == ["skipped", "skipped"]
    from cytodask.cross_atlas.report import sections

    titles = [s.title for s in sections(store.stage_path("cross_atlas"))]
    assert titles[0] == "Conserved signatures across atlases" and "Cell-type mapping" in titles
    conserved = read_table(store.stage_path("cross_atlas"), "conserved")
    assert conserved["n_types"].min() >= 3 and conserved["W"].between(0, 1).all()


def test_search_index_of_the_three_rebuilds(run) -> None:
    store, _, _ = run
    index = SearchIndex.load(store.root / "stages" / "search_index")
    cd8 = search(index, "CD8_CTL", limit=1).iloc[0]
    assert (cd8["name"], cd8["type"], cd8["matched_on"]) == ("CD8 T", "cell_type", "alias")
    assert "cima:activity:cell_type_l2" in cd8["appears"] and cd8["parents"] == ["T"]
    assert search(index, "SLE", limit=1).iloc[0][["name", "type"]].tolist() == ["SLE", "disease"]
    assert search(index, "LIHC", types="cancer_type").iloc[0]["name"] == "LIHC"
    assert search(index, "Liver", types="organ").iloc[0]["appears"] == ["scatlas:activity:organ"]
    ifng = search(index, "IFNG", types="cytosig").iloc[0]
    assert {"cima:activity", "inflammation:activity", "scatlas:activity"} <= set(ifng["appears"])


def test_one_atlas_is_refused(world) -> None:
    with pytest.raises(ValueError, match="at least two atlases"):
        CrossAtlasStage("x", atlases=[world["cima"]["entry"]])
    with pytest.raises(ValueError, match="at least two atlases"):
        long, _ = long_activities([world["cima"]["entry"]])
        conserved_signatures(long)


def test_spec_runner(world, tmp_path, capsys) -> None:
    """A source-less spec (as graphs/cross_atlas.toml) runs with python -m cytodask.cross_atlas, then skips."""
    from cytodask.cross_atlas.__main__ import main

    lines = ['[config]', f'output_dir = "{tmp_path / "out"}"', "", "[[stages]]", 'name = "cross_atlas"',
             'type = "cross_atlas"', 'level = "shared"']
    for w in world.values():
        lines += ["", "[[stages.atlases]]", *[f'{k} = "{v}"' for k, v in w["entry"].items()]]
    spec = tmp_path / "cross.toml"
    spec.write_text("\n".join(lines) + "\n")
    assert main([str(spec)]) == 0
    assert main([str(spec)]) == 0
    state = ResultStore(tmp_path / "out").stage("cross_atlas").status()
    assert state["state"] == "complete"
    bad = tmp_path / "bad.toml"
    bad.write_text(spec.read_text().replace('name = "inflammation"', 'name = "cima"'))
    assert main([str(bad)]) == 1  # atlas names repeat
    fine = tmp_path / "fine.toml"  # as mapped, the three atlases share 2 types only: said, not a crash
    fine.write_text(spec.read_text().replace('level = "shared"', 'level = "fine"').replace(
        str(tmp_path / "out"), str(tmp_path / "out_fine")))
    assert main([str(fine)]) == 1
    assert "no signature has 3 cell types shared by the atlases (at most 2)" in capsys.readouterr().err


def test_graph_spec_builds() -> None:
    from pathlib import Path

    from cytodask.orchestration.spec import load_spec

    spec = load_spec(Path(__file__).resolve().parents[2] / "graphs" / "cross_atlas.toml")
    stages = spec.build(skip_types=("convert",))
    assert [type(s).__name__ for s in stages] == ["CrossAtlasStage", "SearchIndexStage", "ExportStage"]
    assert [a["name"] for a in stages[0].atlases] == ["cima", "inflammation", "scatlas"]
