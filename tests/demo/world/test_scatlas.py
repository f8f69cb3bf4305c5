"""The scAtlas-like atlas: its truth table agrees with the generated counts."""

from __future__ import annotations

import numpy as np
from scipy.stats import wilcoxon

from tests.demo.world._helpers import pseudobulk, response_score, symbols


def _logcpm(atlas, rows: np.ndarray, genes: list[str]) -> np.ndarray:
    x = atlas.counts[rows]
    lib = np.asarray(x.sum(axis=1)).ravel()
    sym = symbols(atlas.spec)
    cols = [sym.index(g) for g in genes]
    return np.log2(np.asarray(x[:, cols].todense()) / lib[:, None] * 1e4 + 1).mean(axis=1)


def test_design_shape(scatlas) -> None:
    obs, t = scatlas.obs, scatlas.truth
    samples = obs.drop_duplicates("sampleID")
    normal = samples.loc[samples["tissue"] == "Normal"]
    assert normal["organ"].nunique() >= 4
    assert samples.loc[samples["tissue"] == "Tumor", "cancerType"].nunique() >= 3
    tissues = samples.groupby("donorID", observed=True)["tissue"].agg(lambda s: set(s.astype(str)))
    paired = [d for d, ts in tissues.items() if {"Tumor", "Adjacent"} <= ts]
    assert len(paired) >= 6 and sorted(paired) == sorted(t["paired_donors"])
    assert any(ts == {"Tumor"} or ts == {"Tumor", "Blood"} for ts in tissues)  # unpaired donors
    assert (samples["tissue"] == "Blood").sum() >= 3
    labels = set(obs["cellType1"].astype(str))
    assert {"CD8+ T cell", "Plasmacytoid DC", "Secretory epithelial"} <= labels
    assert "CD8T02_Tem_GZMK" in set(obs["subCluster"].astype(str))
    assert any(s.startswith("S22_") for s in obs["subCluster"].astype(str))


def test_hidden_states_are_not_in_any_label(scatlas) -> None:
    obs, hidden = scatlas.obs, scatlas.hidden
    assert hidden["exhausted"].any() and (hidden["caf_subtype"] != "").any()
    for col in ("cellType1", "cellType2", "subCluster"):
        ex = obs.loc[hidden["exhausted"].to_numpy(), col].astype(str).unique()
        assert len(ex) == 1  # one label, shared with the other CD8 T cells of that label
        assert (obs.loc[~hidden["exhausted"].to_numpy(), col].astype(str) == ex[0]).any()
        caf = obs.loc[(hidden["caf_subtype"] != "").to_numpy()].groupby(col, observed=True).size()
        for sub in ("myCAF", "iCAF", "apCAF"):
            sel = (hidden["caf_subtype"] == sub).to_numpy()
            assert set(obs.loc[sel, col].astype(str)) == set(caf.index.astype(str)), (col, sub)


def _markers(truth: dict, kind: str) -> dict[str, list[str]]:
    return {e["id"].removeprefix("caf_"): e["markers"] for e in truth["effects"] if e["kind"] == kind}


def test_exhausted_cells_express_the_markers(scatlas) -> None:
    obs, hidden = scatlas.obs, scatlas.hidden
    markers = _markers(scatlas.truth, "exhaustion")["exhaustion"]
    assert set(markers) == {"PDCD1", "HAVCR2", "LAG3", "TIGIT", "CTLA4", "TOX"}  # ANALYSES.md §4
    cd8 = (obs["subCluster"] == "CD8T02_Tem_GZMK").to_numpy()
    ex = hidden["exhausted"].to_numpy()
    a = _logcpm(scatlas, np.flatnonzero(cd8 & ex), markers)
    b = _logcpm(scatlas, np.flatnonzero(cd8 & ~ex), markers)
    assert a.mean() > b.mean() + 1.0
    # exhausted cells are in tumours (mostly) and never in blood or normal tissue
    tissue = obs.loc[ex, "tissue"].astype(str).value_counts()
    assert tissue.get("Tumor", 0) > 4 * tissue.get("Adjacent", 0) and "Blood" not in tissue.index[tissue > 0]


def test_caf_subtypes_express_their_markers(scatlas) -> None:
    caf = scatlas.hidden["caf_subtype"].to_numpy()
    markers = _markers(scatlas.truth, "caf_subtype")
    assert set(markers) == {"myCAF", "iCAF", "apCAF"} and {"ACTA2", "IL6", "CD74"} <= {g for v in markers.values()
                                                                                        for g in v}
    for sub, genes in markers.items():
        own = _logcpm(scatlas, np.flatnonzero(caf == sub), list(genes))
        for other in markers:
            if other != sub:
                assert own.mean() > _logcpm(scatlas, np.flatnonzero(caf == other), list(genes)).mean() + 0.5


def test_tumor_shift_in_paired_donors(scatlas) -> None:
    pb, g = pseudobulk(scatlas.counts, scatlas.obs, ["cellType1", "tissue", "donorID"], symbols(scatlas.spec))
    e = next(e for e in scatlas.truth["effects"] if e["id"] == "tumor_shift_VEGFA")
    score = response_score(pb, e["signature"])
    sel = (g["cellType1"] == e["cell_type"]).to_numpy()
    frame = g.loc[sel, ["donorID", "tissue"]].assign(score=score[sel])
    wide = frame.pivot_table(index="donorID", columns="tissue", values="score", observed=True).dropna(
        subset=["Tumor", "Adjacent"])
    assert len(wide) >= 6
    diff = wide["Tumor"] - wide["Adjacent"]
    assert diff.mean() > 0.3 and wilcoxon(diff).pvalue < 0.01


def test_compositions_and_infiltration_are_as_stated(scatlas) -> None:
    obs, t = scatlas.obs, scatlas.truth
    common = obs["subCluster"].astype(str).map(t["crosswalk"])
    for organ in ("Liver", "Lung", "Colon", "Skin"):
        sel = ((obs["tissue"] == "Normal") & (obs["organ"] == organ)).to_numpy()
        observed = common[sel].value_counts(normalize=True)
        for cell_type, p in t["composition"][organ].items():
            assert abs(observed.get(cell_type, 0.0) - p) < 0.05 + 0.3 * p, (organ, cell_type)
    immune = {"immune"}
    from cytodask.core.vocabulary import common_cell_types

    compartment = common_cell_types()["compartment"]
    frac = {}
    for cancer in ("LIHC", "LUAD", "CRC"):
        sel = ((obs["tissue"] == "Tumor") & (obs["cancerType"] == cancer)).to_numpy()
        frac[cancer] = common[sel].map(compartment).isin(immune).mean()
        stated = next(r for r in t["effects"] if r["id"] == f"infiltration_{cancer}")["immune_fraction"]
        assert abs(frac[cancer] - stated) < 0.07, (cancer, frac[cancer], stated)
    assert frac["LUAD"] > frac["LIHC"] > frac["CRC"]


def test_organ_programs_are_in_their_organ_only(scatlas) -> None:
    pb, g = pseudobulk(scatlas.counts, scatlas.obs, ["tissue", "organ", "sampleID"], symbols(scatlas.spec))
    normal = (g["tissue"] == "Normal").to_numpy()
    rows = [e for e in scatlas.truth["effects"] if e["kind"] == "organ_program"]
    assert len(rows) >= 4
    checked = 0
    for e in rows:
        score = response_score(pb, e["signature"])
        own = normal & (g["organ"] == e["groups"]["organ"][0]).to_numpy()
        assert score[own].min() > score[normal & ~own].max(), e["id"]  # every sample of the organ above the rest
        tumour = (g["tissue"] == "Tumor").to_numpy() & (g["organ"] == e["groups"]["organ"][0]).to_numpy()
        checked += tumour.any()
        assert not tumour.any() or score[tumour].mean() < score[own].mean() - 0.3, e["id"]  # normal samples only
    assert checked >= 3  # Liver, Lung, Colon have tumours; Skin none


def _within_sample_shift(atlas, cells: np.ndarray, others: np.ndarray, signature: str) -> np.ndarray:
    """Per sample: response score of ``cells`` minus that of ``others`` (pseudobulk of each, >= 5 cells)."""
    obs = atlas.obs.assign(_grp=np.where(cells, "in", np.where(others, "out", "")))
    keep = (cells | others)
    pb, g = pseudobulk(atlas.counts[keep], obs.loc[keep], ["_grp", "sampleID"], symbols(atlas.spec))
    wide = g.assign(score=response_score(pb, signature)).pivot_table(index="sampleID", columns="_grp",
                                                                      values="score", observed=True)
    return (wide["in"] - wide["out"]).dropna().to_numpy()


def test_exhausted_and_caf_activity_shifts(scatlas) -> None:
    """The planted responses of exhausted CD8 T cells and of each CAF subtype, against their neighbours of
    the same label in the same samples."""
    hidden, obs = scatlas.hidden, scatlas.obs
    rows = {e["id"]: e for e in scatlas.truth["effects"]}
    cd8 = (obs["subCluster"] == "CD8T02_Tem_GZMK").to_numpy()
    ex = hidden["exhausted"].to_numpy()
    diff = _within_sample_shift(scatlas, cd8 & ex, cd8 & ~ex, rows["exhaustion"]["signature"])
    assert len(diff) >= 6 and diff.mean() > 0.3 and wilcoxon(diff).pvalue < 0.05, diff
    caf = hidden["caf_subtype"].to_numpy()
    for sub in ("myCAF", "iCAF", "apCAF"):
        diff = _within_sample_shift(scatlas, caf == sub, (caf != sub) & (obs["cellType1"] == "Fibroblast").to_numpy(),
                                    rows[f"caf_{sub}"]["signature"])
        assert len(diff) >= 6 and diff.mean() > 0.3 and wilcoxon(diff).pvalue < 0.05, (sub, diff)
