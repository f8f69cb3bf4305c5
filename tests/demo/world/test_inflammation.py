"""The Inflammation-like atlas: its truth table agrees with the generated counts."""

from __future__ import annotations

from scipy.stats import mannwhitneyu

from tests.demo.world._helpers import pseudobulk, response_score, symbols


def _effect(t: dict, eid: str) -> dict:
    return next(e for e in t["effects"] if e["id"] == eid)


def _pb(atlas):
    return pseudobulk(atlas.counts, atlas.obs, ["Level2", "sampleID", "disease", "studyID", "therapyResponse",
                                                "timepoint", "patientID"], symbols(atlas.spec))


def test_shape_of_the_design(inflammation) -> None:
    obs, t = inflammation.obs, inflammation.truth
    assert obs["studyID"].nunique() >= 3
    healthy = {"healthy", "normal", "control"}
    diseases = {d for d in obs["disease"].astype(str).unique() if d.lower() not in healthy}
    assert len(diseases) >= 4
    spellings = obs.loc[obs["disease"].astype(str).str.lower() == "healthy", "disease"].astype(str).unique()
    assert len(set(spellings)) >= 2  # the case differs between studies
    for study, frame in obs.groupby("studyID", observed=True):  # every study has its own controls
        assert (frame["disease"].astype(str).str.lower() == "healthy").any(), study
    labelled = obs.loc[obs["therapyResponse"].isin(["R", "NR"])].drop_duplicates("sampleID")
    per = labelled.groupby(["disease", "therapyResponse"], observed=True).size()
    assert (per >= 8).all() and per.index.get_level_values(0).nunique() >= 2
    times = obs.drop_duplicates("sampleID").groupby("patientID", observed=True)["timepoint"].nunique()
    assert times.max() == 3 and (times >= 2).sum() >= 4
    assert list(inflammation.spec and t["columns"].values())[:3] == ["sampleID", "patientID", "Level2"]
    assert set(obs["Level2"].astype(str)) <= set(t["crosswalk"])


def test_conserved_and_driver_shifts_are_visible(inflammation) -> None:
    pb, g = _pb(inflammation)
    t = inflammation.truth
    for eid in ("conserved_ifn1", "driver_RA", "driver_CD", "driver_PS", "driver_SLE"):
        e = _effect(t, eid)
        score = response_score(pb, e["signature"])
        in_type = (g["Level2"] == e["cell_type"]).to_numpy()
        sick = g["disease"].isin(e["groups"]["disease"]).to_numpy()
        well = g["disease"].str.lower().eq("healthy").to_numpy()
        diff = score[in_type & sick].mean() - score[in_type & well].mean()
        p = mannwhitneyu(score[in_type & sick], score[in_type & well], alternative="greater").pvalue
        assert diff > 0.3 and p < 1e-3, (eid, diff, p)


def test_response_is_predictive_and_auc_is_stated(inflammation) -> None:
    pb, g = _pb(inflammation)
    for eid in ("response_RA", "response_CD"):
        e = _effect(inflammation.truth, eid)
        assert abs(e["expected_auc"] - 0.9214) < 1e-3
        score = response_score(pb, e["signature"])
        base = (g["Level2"] == e["cell_type"]) & g["disease"].isin(e["groups"]["disease"])
        r, nr = score[(base & (g["therapyResponse"] == "R")).to_numpy()], score[
            (base & (g["therapyResponse"] == "NR")).to_numpy()]
        auc = mannwhitneyu(r, nr).statistic / (len(r) * len(nr))
        assert auc > 0.75, (eid, auc)
        amps = e["sample_amplitude"]
        assert len(amps) >= 16 and len(r) + len(nr) >= 14  # a sample may have too few cells of the type


def test_longitudinal_change_is_down(inflammation) -> None:
    pb, g = _pb(inflammation)
    e = _effect(inflammation.truth, "longitudinal_COVID")
    score = response_score(pb, e["signature"])
    sel = ((g["Level2"] == e["cell_type"]) & (g["disease"] == "COVID")).to_numpy()
    frame = g.loc[sel, ["patientID", "timepoint"]].assign(score=score[sel])
    wide = frame.pivot_table(index="patientID", columns="timepoint", values="score")
    assert (wide[2] - wide[1]).mean() < -0.3 and e["direction"] == "down"


def test_study_shift_is_in_healthy_controls_too(inflammation) -> None:
    pb, g = _pb(inflammation)
    shifts = inflammation.truth["study_shift"]
    sig = shifts["SCGT01"]["signature"]
    score = response_score(pb, sig)
    well = g["disease"].str.lower().eq("healthy").to_numpy()
    assert score[well & (g["studyID"] == "SCGT01").to_numpy()].mean() > score[
        well & (g["studyID"] == "SCGT00").to_numpy()].mean() + 0.2
    assert shifts["SCGT00"] is None


def test_null_signatures_show_nothing(inflammation) -> None:
    pb, g = _pb(inflammation)
    t = inflammation.truth
    assert "IFN1" not in t["null"]["signatures"] and "IFNG" not in t["null"]["signatures"]
    ps = []
    for sig in t["null"]["signatures"]:
        score = response_score(pb, sig)
        in_type = (g["Level2"] == "Mono_classical").to_numpy()
        sick = g["disease"].isin(["RA", "SLE", "CD"]).to_numpy()
        well = g["disease"].str.lower().eq("healthy").to_numpy()
        ps.append(mannwhitneyu(score[in_type & sick], score[in_type & well]).pvalue)
    assert min(ps) * len(ps) > 0.01, ps  # Bonferroni: nothing where nothing was planted


def test_producers_are_expressed_in_producer_types(inflammation) -> None:
    pb, g = _pb(inflammation)
    for gene, producer, other in (("IFNG", "T_CD8_CM", "B_Naive"), ("IL1B", "Mono_classical", "T_CD4_Naive"),
                                  ("IL10", "Tregs", "T_CD4_Naive"), ("IL17A", "Th17", "B_Naive"),
                                  ("IL4", "Th2", "Mono_classical")):
        a = pb.loc[(g["Level2"] == producer).to_numpy(), gene].mean()
        b = pb.loc[(g["Level2"] == other).to_numpy(), gene].mean()
        assert a > b + 1.5, (gene, a, b)
    rows = {r["gene"]: r for r in inflammation.truth["producers"]}
    assert "T_CD8_CM" in rows["IFNG"]["cell_types"] and "NK" in rows["IFNG"]["common"]


def test_var_is_ensembl_with_symbols() -> None:
    from cytodask.demo.world.genes import var_frame

    var = var_frame(6000, ensembl_index=True)
    assert var.index[0].startswith("ENSG") and {"IFNG", "PDCD1", "TNF"} <= set(var["symbol"])
