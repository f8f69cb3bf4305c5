"""Truth recovery on the Inflammation-like synthetic world (cytodask.demo.world, truth.json), through the
disease stages of a rebuild (tests/disease/_world.py): conserved program, driving populations, study-matched
controls, treatment response, longitudinal change; exports, report and resuming."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from cytodask.core.tables import read_table
from tests.disease._world import read_activity, stage_data, world_run

pytestmark = pytest.mark.slow
RESPONSE = {"response_col": "therapyResponse", "patient_col": "patientID", "sample_col": "sampleID",
            "cell_type_col": "Level2", "disease_col": "disease"}


@pytest.fixture(scope="module")
def world():
    return world_run()


def _effects(truth: dict, kind: str) -> list[dict]:
    return [e for e in truth["effects"] if e["kind"] == kind]


def test_conserved_program_found_in_the_planted_cell_type_only(world, record_property):
    out, truth = world
    (planted,) = [e for e in _effects(truth, "disease_shift") if len(e["groups"]["disease"]) >= 3]
    table = read_table(stage_data(out, "conserved"))
    conserved = table[table["conserved"]]
    hit = conserved[(conserved["signature"] == planted["signature"]) & (conserved["cell_type"] == planted["cell_type"])]
    assert len(hit) == 1 and hit["direction"].item() == "up"
    assert hit["diseases_significant"].item() == ";".join(sorted(planted["groups"]["disease"]))
    # at q < 0.05 and >= 3 diseases with one sign, nothing is conserved outside the planted cell type (the
    # other rows there are CytoSig signatures sharing the planted response's genes)
    assert set(conserved["cell_type"]) == {planted["cell_type"]}
    assert hit["pooled_g"].item() > 1 and hit["pooled_pvalue"].item() < 0.01
    record_property("conserved_rows", len(conserved))


def test_each_disease_planted_driver_population_ranks_first(world):
    out, truth = world
    drivers = read_table(stage_data(out, "drivers"))
    first = drivers[drivers["rank"] == 1].set_index("disease")
    planted = {e["groups"]["disease"][0]: e for e in _effects(truth, "driver")}
    assert set(first.index) == set(planted)
    for disease, e in planted.items():
        assert first.loc[disease, "cell_type"] == e["cell_type"], (disease, first.loc[disease].to_dict())
    # the three diseases with 20 patients find their planted signature first; COVID (6 patients) and PS (8)
    # rank their planted population first by smallest q, significant or not at 40 tests x 16 cell types
    for disease in ("RA", "SLE", "CD"):
        assert first.loc[disease, "top_signature"] == planted[disease]["signature"]
        assert first.loc[disease, "n_significant"] >= 5


def test_study_matched_controls_remove_the_study_shift_all_healthy_controls_call(world, record_property):
    out, truth = world
    matched = read_table(stage_data(out, "disease_vs_healthy"))
    pooled = read_table(stage_data(out, "disease_vs_all_healthy"))
    assert (pooled["control_scope"] == "all_healthy").all()
    assert set(matched["control_scope"]) <= {"study_matched", "all_healthy_fallback"}
    shifts = {s: v["signature"] for s, v in truth["study_shift"].items() if v}
    # diseases sampled in one shifted study only: every case carries the shift; a third of all healthy do
    confounded = {"COVID": shifts["SCGT01"], "PS": shifts["SCGT02"]}
    counts = {}
    for name, table in (("matched", matched), ("all_healthy", pooled)):
        rows = pd.concat([table[(table["disease"] == d) & (table["signature"] == s) & (table["reason"] == "")]
                          for d, s in confounded.items()])
        if name == "matched":
            rows = rows[rows["control_scope"] == "study_matched"]
        counts[name] = {"rows": len(rows), "p<0.05": int((rows["pvalue"] < 0.05).sum()),
                        "q<0.05": int((rows["qvalue"] < 0.05).sum()), "mean_diff": float(rows["diff"].mean())}
    record_property("study_shift", json.dumps(counts))
    m, a = counts["matched"], counts["all_healthy"]
    # all healthy: the shift looks like disease (p < 0.05 in most cell types, some pass BH over the table)
    assert a["p<0.05"] >= a["rows"] / 2 and a["q<0.05"] >= 1 and a["mean_diff"] > 1.5
    # study-matched: no false positive at FDR 5 %, chance-level p, a mean difference near 0
    assert m["q<0.05"] == 0 and m["p<0.05"] <= 2 and abs(m["mean_diff"]) < 1.0, counts


def test_response_auc_near_the_planted_auc_and_a_shuffled_null(world, record_property):
    from cytodask.disease import treatment_response

    out, truth = world
    act = read_activity(out)
    fast = {"n_splits": 3, "n_repeats": 1, "n_permutations": 19, "n_estimators": 15, "importance_repeats": 1}
    for e in _effects(truth, "response"):
        disease = e["groups"]["disease"][0]
        res = treatment_response(act, **RESPONSE, disease=disease, cell_types=[e["cell_type"]], **fast)
        patients = res.oof["patient"].to_numpy()
        for train, test in res.folds:  # asserted again on the result, not only inside the function
            assert not set(patients[train]) & set(patients[test])
        # 16 patients (8 R, 8 NR), the planted cell type's 43 features: the out-of-fold AUC is within 0.15 of
        # Phi(d / sqrt 2) = 0.92 of the planted amplitude (SE of an AUC near 0.9 with 8 + 8 patients ~ 0.07)
        record_property(f"auc_{disease}", res.auc["ensemble"])
        assert abs(res.auc["ensemble"] - e["expected_auc"]) < 0.15, (disease, res.auc, e["expected_auc"])
        if disease == "RA":
            assert res.permutation_p <= 0.1  # at most 1 of 19 label permutations reaches it
    ra = act[(act.obs["disease"] == "RA").to_numpy()].copy()
    patients = ra.obs["patientID"].astype(str)
    labels = ra.obs.groupby(patients.to_numpy(), observed=True)["therapyResponse"].first().astype(str)
    shuffled = dict(zip(labels.index, np.random.default_rng(11).permutation(labels.to_numpy()), strict=True))
    ra.obs["therapyResponse"] = patients.map(shuffled).to_numpy()
    null = treatment_response(ra, **RESPONSE, cell_types=["Mono_classical"], **fast)
    # no signal: within about 2 SE (0.14 each) of 0.5, and a permutation p above 0.05
    record_property("auc_shuffled", null.auc["ensemble"])
    assert abs(null.auc["ensemble"] - 0.5) < 0.3 and null.permutation_p > 0.05, (null.auc, null.permutation_p)


def test_response_stage_rows_per_disease_and_pan_disease(world):
    out, _ = world
    table = read_table(stage_data(out, "response"))
    ens = table[table["model"] == "ensemble"].set_index("disease")
    assert set(ens.index) == {"RA", "CD", "all"} and (ens["reason"] == "").all()
    assert ens.loc["all", "n_patients"] == 32 and ens.loc["RA", "n_unlabelled"] == 4  # RA of SCGT01: unknown
    assert ens["auc"].between(0.0, 1.0).all() and ens["permutation_p"].notna().all()
    roc = read_table(stage_data(out, "response"), "roc")
    assert set(roc["disease"]) == {"RA", "CD", "all"} and set(roc["model"]) == {"logistic", "random_forest",
                                                                                  "ensemble"}


def test_longitudinal_change_recovered(world, record_property):
    from cytodask.disease import longitudinal_change

    out, truth = world
    (e,) = _effects(truth, "longitudinal") or [r for r in truth.get("rows", []) if r["kind"] == "longitudinal"]
    disease = e["groups"]["disease"][0]
    table = read_table(stage_data(out, "longitudinal"))
    assert table["has_longitudinal"].all() and set(table["disease"]) == {disease}  # only COVID is repeated
    row = table[(table["cell_type"] == e["cell_type"]) & (table["signature"] == e["signature"])].iloc[0]
    # every one of the 6 patients falls (statistic 0): the smallest p a signed-rank test of 6 pairs gives
    assert row["n_patients"] == 6 and row["mean_change"] < 0 and row["statistic"] == 0
    assert row["pvalue"] == pytest.approx(table["pvalue"].min())
    # with 6 patients BH over the table cannot reach 0.05; the mixed model (every timepoint) does
    act = read_activity(out)
    keep = act.obs["Level2"].isin([e["cell_type"], "T_CD4_Naive"]).to_numpy()
    mixed = longitudinal_change(act[keep].copy(), patient_col="patientID", timepoint_col="timepoint",
                                sample_col="sampleID", cell_type_col="Level2", method="mixedlm")
    hit = mixed[(mixed["cell_type"] == e["cell_type"]) & (mixed["signature"] == e["signature"])].iloc[0]
    assert hit["estimate"] < 0 and hit["qvalue"] < 0.05
    null = mixed[(mixed["cell_type"] == "T_CD4_Naive")]
    record_property("mixedlm_null_q05", int((null["qvalue"] < 0.05).sum()))
    assert (null["qvalue"] < 0.05).mean() <= 0.1  # a cell type without a planted change


def test_exports_have_their_schemas_and_the_report_its_sections(world):
    from cytodask.core.registry import get_stage_type

    out, _ = world
    folder = out / "exports" / "export"
    manifest = json.loads((folder / "manifest.json").read_text())
    n = 0
    for stage_type in ("disease_profiles", "disease_vs_healthy", "disease_drivers", "disease_conserved",
                       "treatment_response", "disease_longitudinal"):
        stage = get_stage_type(stage_type)("x", inputs=("activity",))
        for export in stage.export_tables():
            got = list(pd.read_parquet(folder / f"{export.name}.parquet").columns)
            assert got == list(export.columns), (export.name, got)
            records = json.loads((folder / f"{export.name}.json").read_text())
            assert records["columns"] == got and export.name in json.dumps(manifest)
            n += 1
    assert n == 8
    html = (out / "report.html").read_text()
    for ident in ("disease-volcano-RA", "disease-drivers", "disease-conserved", "disease-response",
                  "disease-longitudinal"):
        assert f'id="section-{ident}"' in html, ident  # figure or table sections alike


def test_a_killed_stage_is_recomputed_alone_and_identically(world):
    from cytodask.orchestration.rebuild import rebuild

    out, _ = world
    spec = out.parent / "spec.toml"
    before = {s: read_table(stage_data(out, s)) for s in ("disease_vs_healthy", "response")}
    assert {r.state for r in rebuild(spec, output=out, echo=None)} == {"skipped"}
    for stage in ("disease_vs_healthy", "response"):
        manifest = out / "stages" / stage / "manifest.json"
        m = json.loads(manifest.read_text())
        manifest.write_text(json.dumps({**m, "state": "running"}))
    records = sorted((out / "stages" / "disease_vs_healthy" / "blocks").iterdir())
    records[-1].unlink()  # one disease's block lost: only it is recomputed
    for record in (out / "stages" / "response" / "blocks").iterdir():
        record.unlink()
    shutil.rmtree(stage_data(out, "response") / "roc")
    states = {r.name: r.state for r in rebuild(spec, output=out, echo=None)}
    assert states["disease_vs_healthy"] == "computed" and states["response"] == "computed"
    assert all(states[s] == "skipped" for s in ("convert", "pseudobulk", "activity", "profiles", "longitudinal"))
    for s, frame in before.items():
        pd.testing.assert_frame_equal(read_table(stage_data(out, s)), frame)
