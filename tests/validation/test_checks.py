"""Each check against an independent reference on the same numbers (scipy, statsmodels, direct formulas)."""

from __future__ import annotations

import anndata
import dask.array as da
import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from cytodask.validation import (
    cell_type_level,
    gene_coverage,
    pseudobulk_vs_single_cell,
    sample_level,
    single_cell_auc,
    stability,
)
from tests.validation._data import Inputs

SIGS_WITH_PRODUCER = ["GDF11", "MCSF", "TGFB3", "VEGFA"]  # producer genes present among the demo's genes


def _log_cpm(pb: anndata.AnnData, gene: str) -> np.ndarray:
    counts = np.asarray(pb.layers["counts"])
    return np.log2(counts[:, list(pb.var_names).index(gene)] / counts.sum(axis=1) * 1e6 + 1)


def test_sample_level_matches_scipy(demo_inputs: Inputs) -> None:
    act, pb = demo_inputs.activity, demo_inputs.pseudobulk
    table = sample_level(act, pb, sample_col="sample", cell_type_col="cell_type_l2")
    tested = table.dropna(subset=["pvalue"])
    assert set(tested["signature"]) == set(SIGS_WITH_PRODUCER)
    for _, row in tested.iterrows():
        rows = (act.obs["cell_type_l2"] == row["cell_type"]).to_numpy()
        x = _log_cpm(pb, row["gene"])[rows]
        y = np.asarray(act.X)[rows, list(act.var_names).index(row["signature"])]
        pr, sr, lr = stats.pearsonr(x, y), stats.spearmanr(x, y), stats.linregress(x, y)
        assert row["n"] == rows.sum()
        np.testing.assert_allclose([row["pearson_r"], row["pvalue"], row["spearman_rho"], row["spearman_pvalue"],
                                    row["slope"], row["r_squared"]],
                                   [pr.statistic, pr.pvalue, sr.statistic, sr.pvalue, lr.slope, lr.rvalue**2],
                                   rtol=1e-9)
    ok = table["pvalue"].notna()
    np.testing.assert_allclose(table.loc[ok, "qvalue"], multipletests(table.loc[ok, "pvalue"], method="fdr_bh")[1],
                               rtol=1e-12)
    assert table.attrs["fdr_family"].startswith("Benjamini-Hochberg")


def test_cell_type_level_matches_scipy(demo_inputs: Inputs) -> None:
    act, pb = demo_inputs.activity, demo_inputs.pseudobulk
    table = cell_type_level(act, pb, sample_col="sample", cell_type_col="cell_type_l2")
    types = act.obs["cell_type_l2"].astype(str).to_numpy()
    keep = [t for t in sorted(set(types)) if act.obs.loc[types == t, "sample"].nunique() >= 3]
    for sig in SIGS_WITH_PRODUCER:
        row = table.set_index("signature").loc[sig]
        e = _log_cpm(pb, row["gene"])
        z = np.asarray(act.X)[:, list(act.var_names).index(sig)]
        x = [e[types == t].mean() for t in keep]
        y = [z[types == t].mean() for t in keep]
        assert row["n"] == len(keep)
        np.testing.assert_allclose([row["pearson_r"], row["pvalue"], row["spearman_rho"]],
                                   [stats.pearsonr(x, y).statistic, stats.pearsonr(x, y).pvalue,
                                    stats.spearmanr(x, y).statistic], rtol=1e-9)


def _ccc(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * np.cov(a, b, ddof=0)[0, 1] / (a.var() + b.var() + (a.mean() - b.mean()) ** 2)


@pytest.mark.parametrize("chunk", [None, 700])
def test_pseudobulk_vs_single_cell_matches_direct_summaries(demo_inputs: Inputs, chunk: int | None) -> None:
    act, sc = demo_inputs.activity, demo_inputs.single_cell
    if chunk:  # a Dask single-cell activity, streamed block by block
        sc = anndata.AnnData(X=da.from_array(np.asarray(sc.X), chunks=(chunk, -1)), obs=sc.obs, var=sc.var)
    table, groups = pseudobulk_vs_single_cell(act, sc, sample_col="sample", cell_type_col="cell_type_l2")
    z = np.asarray(demo_inputs.single_cell.X)
    key = demo_inputs.single_cell.obs["sample"].astype(str) + "|" + demo_inputs.single_cell.obs["cell_type_l2"].astype(str)
    for sig in ["IFNG", "IL4", "TGFB3"]:
        j = list(sc.var_names).index(sig)
        g = groups[groups["signature"] == sig]
        means = np.array([z[(key == f"{s}|{t}").to_numpy(), j].mean() for s, t in zip(g["sample"], g["cell_type"],
                                                                                         strict=True)])
        medians = np.array([np.median(z[(key == f"{s}|{t}").to_numpy(), j]) for s, t in zip(g["sample"],
                                                                                            g["cell_type"],
                                                                                            strict=True)])
        # streamed sums add in another order than numpy's pairwise mean: float64 rounding only (a mean
        # near 0 after cancellation needs the absolute term; z-scores are O(1), so 1e-12 is 4 digits of slack)
        np.testing.assert_allclose(g["sc_mean"], means, rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(g["sc_median"], medians)  # exact, whatever the blocks
        row = table.set_index("signature").loc[sig]
        pb = g["pseudobulk"].to_numpy()
        np.testing.assert_allclose([row["pearson_mean"], row["spearman_mean"], row["ccc_mean"],
                                    row["pearson_median"], row["ccc_median"]],
                                   [stats.pearsonr(pb, means).statistic, stats.spearmanr(pb, means).statistic,
                                    _ccc(pb, means), stats.pearsonr(pb, medians).statistic, _ccc(pb, medians)],
                                   rtol=1e-9)


def test_single_cell_auc_matches_mannwhitneyu(demo_inputs: Inputs) -> None:
    cells, sc = demo_inputs.cells, demo_inputs.single_cell
    table = single_cell_auc(sc, cells, cell_type_col="cell_type_l2", max_cells=100_000)
    tested = table.dropna(subset=["auc"])
    assert set(tested["signature"]) <= set(SIGS_WITH_PRODUCER) and len(tested) >= 8
    x = cells.X.tocsc()
    for _, row in tested.iterrows():
        in_type = (sc.obs["cell_type_l2"] == row["cell_type"]).to_numpy()
        expressed = (x[:, list(cells.var_names).index(row["gene"])].toarray().ravel() > 0)
        z = np.asarray(sc.X)[:, list(sc.var_names).index(row["signature"])]
        a, b = z[in_type & expressed], z[in_type & ~expressed]
        ref = stats.mannwhitneyu(a, b, method="asymptotic", use_continuity=True)
        assert (row["n1_used"], row["n2_used"]) == (a.size, b.size) == (row["n_expressing"], row["n_other"])
        np.testing.assert_allclose([row["u"], row["auc"], row["pvalue"], row["activity_diff"]],
                                   [ref.statistic, ref.statistic / (a.size * b.size), ref.pvalue, a.mean() - b.mean()],
                                   rtol=1e-9)
    ok = table["pvalue"].notna()
    np.testing.assert_allclose(table.loc[ok, "qvalue"], multipletests(table.loc[ok, "pvalue"], method="fdr_bh")[1])


def test_single_cell_auc_subsample_is_stated_and_block_independent(demo_inputs: Inputs) -> None:
    cells, sc = demo_inputs.cells, demo_inputs.single_cell
    whole = single_cell_auc(sc, cells, cell_type_col="cell_type_l2", max_cells=50)
    blocked = anndata.AnnData(X=da.from_array(np.asarray(sc.X), chunks=(450, -1)), obs=sc.obs, var=sc.var)
    cut = single_cell_auc(blocked, cells, cell_type_col="cell_type_l2", max_cells=50)
    # the subsample and its statistics are exact; the mean difference over all cells is a sum (order of blocks)
    pd.testing.assert_frame_equal(whole.drop(columns="activity_diff"), cut.drop(columns="activity_diff"),
                                  check_exact=True)
    np.testing.assert_allclose(whole["activity_diff"], cut["activity_diff"], rtol=1e-12)
    tested = whole.dropna(subset=["auc"])
    assert (tested["n1_used"] == np.minimum(tested["n_expressing"], 50)).all()
    assert (tested["n2_used"] == np.minimum(tested["n_other"], 50)).all() and (tested["max_cells"] == 50).all()


def test_bootstrap_replicates_bit_identical_across_block_sizes(demo_inputs: Inputs) -> None:
    runs = [stability(signature="CytoSig", cells=demo_inputs.cells, by=["cell_type_l2", "sample"], n_boot=3,
                      min_cells=5, batch_size=b) for b in (3000, 700)]
    pd.testing.assert_frame_equal(runs[0], runs[1], check_exact=True)
    assert runs[0]["bootstrap_rho_mean"].notna().all()


def test_coverage_is_the_true_coverage_when_genes_are_absent(demo_inputs: Inputs) -> None:
    genes = list(demo_inputs.cells.var_names)
    present, absent = genes[:60], [f"ABSENT{i}" for i in range(40)]
    sig = pd.DataFrame({"S": 1.0, "T": 0.0}, index=present + absent)
    sig.loc[present[:10], "T"] = 2.0
    detected = pd.Series(0.0, index=genes)
    detected[present[:45]] = 0.5  # 45 of the 60 found genes in ≥ 1 % of cells
    table = gene_coverage(sig, genes, detected=detected).set_index("signature")
    assert table.loc["S", ["n_genes", "n_found", "n_detected"]].tolist() == [100, 60, 45]
    assert table.loc["S", "found_fraction"] == 0.6 and table.loc["S", "detected_fraction"] == 0.75
    assert table.loc["S", "coverage"] == 0.45 and table.loc["S", "grade"] == "poor"
    assert table.loc["T", "coverage"] == 1.0 and table.loc["T", "grade"] == "excellent"
    no_cells = gene_coverage(sig, genes).set_index("signature")
    assert np.isnan(no_cells.loc["S", "detected_fraction"]) and "no single-cell expression" in no_cells.loc["S",
                                                                                                          "reason"]
