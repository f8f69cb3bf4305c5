"""Nothing where nothing was planted: every planted signature, tested where the truth says it is absent.

Each test gathers one family of p-values (the planted signatures in the null cell types, the drivers in
the other diseases, the associations in the other cell types, the tumour shifts elsewhere and the null
signatures where the shifts are) and asks the smallest to survive Bonferroni at 0.01: with independent
nulls a family passes with probability >= 0.99, a planted effect of the size the atlases plant (p < 1e-3
in the recovery tests) fails it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import mannwhitneyu, spearmanr, wilcoxon

from cytodask.demo.world import sample_tables
from tests.demo.world._helpers import pseudobulk, response_score, symbols


def _bonferroni_clean(pvalues: dict[str, float]) -> None:
    assert len(pvalues) >= 5, pvalues
    worst = min(pvalues, key=pvalues.get)
    assert pvalues[worst] * len(pvalues) > 0.01, (worst, pvalues[worst], len(pvalues))


def _planted(truth: dict, *kinds: str) -> list[dict]:
    return [e for e in truth["effects"] if e["kind"] in kinds]


def _study_centred(score: np.ndarray, g: pd.DataFrame, sel: np.ndarray) -> np.ndarray:
    """``score`` minus the mean of the same study's healthy samples of the selected rows (study-matched)."""
    well = g["disease"].str.lower().eq("healthy").to_numpy()
    out = score.copy()
    for study in g["studyID"].unique():
        rows = (g["studyID"] == study).to_numpy() & sel
        out[rows] -= score[rows & well].mean()
    return out


def test_inflammation_planted_signatures_absent_elsewhere(inflammation) -> None:
    t = inflammation.truth
    pb, g = pseudobulk(inflammation.counts, inflammation.obs, ["Level2", "sampleID", "disease", "studyID"],
                       symbols(inflammation.spec))
    well = g["disease"].str.lower().eq("healthy").to_numpy()
    pvalues = {}
    for e in _planted(t, "disease_shift", "driver"):
        score = response_score(pb, e["signature"])
        sick = g["disease"].isin(e["groups"]["disease"]).to_numpy()
        for cell in t["null"]["cell_types"]:  # the planted diseases, in the null cell types
            sel = (g["Level2"] == cell).to_numpy()
            if (sel & sick).sum() >= 8:
                centred = _study_centred(score, g, sel)
                pvalues[f"{e['id']} in {cell}"] = mannwhitneyu(centred[sel & sick], centred[sel & well]).pvalue
        sel = (g["Level2"] == e["cell_type"]).to_numpy()  # the planted cell type, in the other diseases
        same = {d for x in _planted(t, "disease_shift", "driver") if (x["signature"], x["cell_type"]) ==
                (e["signature"], e["cell_type"]) for d in x["groups"]["disease"]}
        centred = _study_centred(score, g, sel)
        for disease in set(g.loc[~well, "disease"]) - same:
            other = (g["disease"] == disease).to_numpy()
            pvalues[f"{e['id']} in {disease}"] = mannwhitneyu(centred[sel & other], centred[sel & well]).pvalue
    _bonferroni_clean(pvalues)


def test_cima_associations_absent_in_other_cell_types(cima) -> None:
    pb, g = pseudobulk(cima.counts, cima.obs, ["cell_type_l2", "sample"], symbols(cima.spec))
    tables = {k: v.set_index("Sample_name") for k, v in sample_tables(cima.spec).items()}
    pvalues = {}
    for e in _planted(cima.truth, "association"):
        score = response_score(pb, e["signature"])
        same = {x["cell_type"] for x in _planted(cima.truth, "association") if x["signature"] == e["signature"]}
        for cell in set(g["cell_type_l2"]) - same:
            sel = (g["cell_type_l2"] == cell).to_numpy()
            if sel.sum() >= 20:
                values = tables[e["table"].removesuffix(".csv")].loc[g.loc[sel, "sample"], e["variable"]]
                pvalues[f"{e['id']} in {cell}"] = spearmanr(score[sel], values.to_numpy()).pvalue
    _bonferroni_clean(pvalues)


def test_scatlas_tumour_shift_only_where_planted(scatlas) -> None:
    t = scatlas.truth
    pb, g = pseudobulk(scatlas.counts, scatlas.obs, ["cellType1", "tissue", "donorID"], symbols(scatlas.spec))
    shifts = _planted(t, "tumor_shift")
    pvalues = {}

    def paired(signature: str, cell: str) -> float | None:
        sel = (g["cellType1"] == cell).to_numpy()
        frame = g.loc[sel, ["donorID", "tissue"]].assign(score=response_score(pb, signature)[sel])
        wide = frame.pivot_table(index="donorID", columns="tissue", values="score", observed=True)
        if not {"Tumor", "Adjacent"} <= set(wide.columns):
            return None
        wide = wide.dropna(subset=["Tumor", "Adjacent"])
        return wilcoxon(wide["Tumor"] - wide["Adjacent"]).pvalue if len(wide) >= 8 else None

    for e in shifts:  # the planted shifts in the null cell types
        for cell in t["null"]["cell_types"]:
            if (p := paired(e["signature"], cell)) is not None:
                pvalues[f"{e['id']} in {cell}"] = p
    for e in shifts:  # the null signatures where the shifts are
        for signature in t["null"]["signatures"]:
            if (p := paired(signature, e["cell_type"])) is not None:
                pvalues[f"{signature} in {e['cell_type']}"] = p
    _bonferroni_clean(pvalues)
