"""``validate``, the quality score, and what missing or bad inputs give: a NaN with its reason, or an error."""

from __future__ import annotations

import anndata
import numpy as np
import pandas as pd
import pytest

from cytodask.validation import (
    CHECKS,
    COMPONENTS,
    biological,
    cell_type_level,
    expectations,
    pseudobulk_vs_single_cell,
    quality_score,
    sample_level,
    validate,
)
from tests.validation._data import Inputs

DEMO_MAP = {"T cell": "T", "B cell": "B", "NK cell": "NK", "Monocyte": "Monocyte", "Dendritic cell": "DC"}


@pytest.fixture(scope="module")
def full(demo_inputs: Inputs):
    i = demo_inputs
    return validate(i.activity, i.pseudobulk, sample_col="sample", cell_type_col="cell_type_l2",
                    single_cell=i.single_cell, cells=i.cells, cell_type_map=DEMO_MAP, n_boot=3, max_cells=300)


def test_validate_runs_every_check(full) -> None:
    assert set(full.tables) == set(CHECKS) and full.skipped == {}
    s = full.summary
    assert s["signature"].iloc[-1] == "(overall)" and len(s) == 44
    comps = s[list(COMPONENTS)].to_numpy(dtype=float)
    assert np.nanmin(comps) >= 0 and np.nanmax(comps) <= 1
    row = s.set_index("signature").loc["VEGFA"]  # producer present: every component but biology (no type maps)
    assert row["n_components"] == 6 and "biological: no cell type of the data maps" in row["missing_components"]
    present = [c for c in COMPONENTS if np.isfinite(row[c])]
    assert row["quality_score"] == pytest.approx(np.mean([row[c] for c in present]))
    for name in CHECKS:
        table = getattr(full, name)
        assert table.columns[0] == "signature" and "reason" in table.columns
        numeric = table.select_dtypes("number")
        nan_rows = numeric.isna().all(axis=1) & (len(numeric.columns) > 0)
        assert (table.loc[nan_rows, "reason"] != "").all(), name  # no NaN row without a word


def test_quality_weights_renormalise_and_bands() -> None:
    tables = {"coverage": pd.DataFrame({"signature": ["A"], "coverage": [1.0], "reason": [""]}),
              "cell_type_level": pd.DataFrame({"signature": ["A"], "spearman_rho": [0.4], "reason": [""]})}
    q = quality_score(tables, ["A"], weights={"coverage": 0.6, "cell_type_level": 0.2})
    assert q.loc[0, "quality_score"] == pytest.approx((0.6 * 1.0 + 0.2 * 0.4) / 0.8)
    assert q.loc[0, "n_components"] == 2 and q.loc[0, "confidence"] == "low"  # fewer than 3 components
    assert "sample_level: check not run" in q.loc[0, "missing_components"]
    with pytest.raises(ValueError, match="unknown component"):
        quality_score(tables, ["A"], weights={"speed": 1.0})


def test_removing_an_input_makes_its_component_nan_with_a_reason(demo_inputs: Inputs, full) -> None:
    i = demo_inputs
    less = validate(i.activity, i.pseudobulk, sample_col="sample", cell_type_col="cell_type_l2",
                    cells=i.cells, cell_type_map=DEMO_MAP, n_boot=3, max_cells=300)
    assert set(less.skipped) == {"pseudobulk_vs_single_cell", "single_cell"}
    for comp in ("pseudobulk_single_cell", "single_cell"):
        assert full.summary[comp].notna().any() and less.summary[comp].isna().all()
    assert less.summary["missing_components"].iloc[0].count("no single-cell activity given") == 2
    with pytest.raises(AttributeError, match="did not run: no single-cell activity"):
        _ = less.single_cell
    # the producer gene removed from the expression: sample-level component NaN with the reason
    keep = [g for g in i.pseudobulk.var_names if g != "VEGFA"]
    no_gene = validate(i.activity, i.pseudobulk[:, keep], sample_col="sample", cell_type_col="cell_type_l2",
                       checks=["sample_level"])
    row = no_gene.summary.set_index("signature").loc["VEGFA"]
    assert np.isnan(row["sample_level"]) and "producer gene VEGFA not in the expression data" in \
        row["missing_components"]


def test_no_common_samples_is_an_error(demo_inputs: Inputs) -> None:
    pb = demo_inputs.pseudobulk.copy()
    pb.obs_names = [f"other_{k}" for k in range(pb.n_obs)]
    with pytest.raises(ValueError, match="share no samples.*pass the pseudobulk"):
        sample_level(demo_inputs.activity, pb, sample_col="sample", cell_type_col="cell_type_l2")
    with pytest.raises(TypeError, match="expression must be an AnnData"):
        sample_level(demo_inputs.activity, pb.to_df(), sample_col="sample")
    with pytest.raises(ValueError, match="lacks column.*cell_type_col"):
        sample_level(demo_inputs.activity, demo_inputs.pseudobulk, sample_col="sample", cell_type_col="L9")


def test_signature_without_producer_gene_is_nan_with_reason(demo_inputs: Inputs) -> None:
    t = sample_level(demo_inputs.activity, demo_inputs.pseudobulk, sample_col="sample", cell_type_col="cell_type_l2")
    ifng = t[t["signature"] == "IFNG"]
    assert ifng["pvalue"].isna().all() and (ifng["reason"] == "producer gene IFNG not in the expression data").all()
    assert ifng["qvalue"].isna().all()


def test_cell_type_with_too_few_samples(demo_inputs: Inputs) -> None:
    act, pb = demo_inputs.activity, demo_inputs.pseudobulk
    dc_samples = act.obs.loc[act.obs["cell_type_l2"] == "Dendritic cell", "sample"].iloc[:2].tolist()
    few = (act.obs["cell_type_l2"] != "Dendritic cell") | act.obs["sample"].isin(dc_samples)
    t = sample_level(act[few], pb, sample_col="sample", cell_type_col="cell_type_l2")
    dc = t[(t["cell_type"] == "Dendritic cell") & (t["signature"] == "VEGFA")].iloc[0]
    assert np.isnan(dc["pearson_r"]) and dc["reason"] == "2 samples < 3 needed" and dc["n"] == 2
    c = cell_type_level(act[few], pb, sample_col="sample", cell_type_col="cell_type_l2")
    assert (c.loc[c["signature"] == "VEGFA", "n"] == 4).all()  # the type with 2 samples is left out
    c = cell_type_level(act[few], pb, sample_col="sample", cell_type_col="cell_type_l2", min_samples=30)
    with_gene = c[~c["reason"].str.startswith("producer gene")]
    assert len(with_gene) == 4 and with_gene["reason"].str.contains(r"0 cell types < 3 needed \(5 type").all()


def test_single_cell_activity_absent(demo_inputs: Inputs) -> None:
    with pytest.raises(ValueError, match="no single-cell activity given: pass single_cell="):
        pseudobulk_vs_single_cell(demo_inputs.activity, None, sample_col="sample", cell_type_col="cell_type_l2")
    with pytest.raises(ValueError, match="not validation checks"):
        validate(demo_inputs.activity, demo_inputs.pseudobulk, sample_col="sample", checks=["speed"])


def test_expectations_table_is_checked(tmp_path) -> None:
    table = expectations()
    assert {"IFNG", "IL17A", "TNFA", "IFN1", "VEGFA"} <= set(table["signature"])
    bad = tmp_path / "exp.csv"
    bad.write_text("signature,producer_types\nIFNG,CD8 T;Killer cells\n")
    with pytest.raises(ValueError, match="Killer cells.*not in the common cell-type vocabulary"):
        expectations(bad)


def test_biological_ranks_and_percentiles(demo_inputs: Inputs) -> None:
    t = biological(demo_inputs.activity, demo_inputs.pseudobulk, sample_col="sample", cell_type_col="cell_type_l2",
                   cell_type_map=DEMO_MAP, table=pd.DataFrame({"signature": ["IFNG"], "producer_types": ["Monocyte"]}))
    act = demo_inputs.activity
    means = pd.DataFrame(np.asarray(act.X), columns=act.var_names).groupby(
        act.obs["cell_type_l2"].astype(str).to_numpy())["IFNG"].mean()
    rank = int(means.rank(ascending=False)["Monocyte"])  # IFNG is planted in (disease) monocytes
    row = t.iloc[0]
    assert row["matched_types"] == "Monocyte" and row["rank_activity"] == rank == 1
    assert row["percentile_activity"] == 1.0 and bool(row["top_k_activity"])
    assert "producer gene IFNG not in the expression data" in row["reason"]


def test_symbols_from_var_and_anndata_only() -> None:
    z = anndata.AnnData(X=np.ones((3, 1)), obs=pd.DataFrame({"sample": list("abc")}, index=list("abc")),
                        var=pd.DataFrame(index=["IFNG"]))
    with pytest.raises(TypeError, match="activity must be an AnnData"):
        sample_level(z.to_df(), z, sample_col="sample")
