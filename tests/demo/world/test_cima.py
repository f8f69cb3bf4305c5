"""The CIMA-like atlas: sample tables keyed by sample, planted associations visible, other variables null."""

from __future__ import annotations

from scipy.stats import spearmanr

from cytodask.demo.world import sample_tables
from tests.demo.world._helpers import pseudobulk, response_score, symbols


def test_tables_are_keyed_by_sample(cima) -> None:
    tables = sample_tables(cima.spec)
    samples = set(cima.obs["sample"].astype(str))
    for name in ("sample_meta", "biochemistry", "metabolites"):
        assert set(tables[name]["Sample_name"]) == samples and tables[name]["Sample_name"].is_unique
    assert {"Age", "BMI", "Sex"} <= set(tables["sample_meta"].columns)
    assert {"ALT", "AST", "Creatinine", "Glucose"} <= set(tables["biochemistry"].columns)
    meta = tables["sample_meta"].set_index("Sample_name")
    first = cima.obs.drop_duplicates("sample").set_index("sample")
    assert (meta.loc[first.index.astype(str), "Age"].to_numpy() == first["age"].to_numpy()).all()
    assert cima.obs["donor"].nunique() == len(samples)  # one sample per donor


def test_planted_associations_and_nulls(cima) -> None:
    pb, g = pseudobulk(cima.counts, cima.obs, ["cell_type_l2", "sample"], symbols(cima.spec))
    tables = {k: v.set_index("Sample_name") for k, v in sample_tables(cima.spec).items()}
    rows = [e for e in cima.truth["effects"] if e["kind"] == "association"]
    assert len(rows) >= 4
    for e in rows:
        sel = (g["cell_type_l2"] == e["cell_type"]).to_numpy()
        score = response_score(pb, e["signature"])[sel]
        values = tables[e["table"].removesuffix(".csv")].loc[g.loc[sel, "sample"], e["variable"]].to_numpy()
        rho = spearmanr(score, values).statistic
        assert rho * e["rho_sign"] > 0.6, (e["id"], rho)
        # the same signature in the same cell type shows nothing with a null variable
        for null in cima.truth["tables"]["null_variables"]["biochemistry"][:3]:
            other = tables["biochemistry"].loc[g.loc[sel, "sample"], null].to_numpy()
            assert abs(spearmanr(score, other).statistic) < 0.5, (e["id"], null)
