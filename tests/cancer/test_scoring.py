"""Gene-set scores against scanpy's score_genes; exhaustion from expression; labels matched literally."""

from __future__ import annotations

import warnings

import anndata as ad
import dask.array as da
import numpy as np
import pandas as pd
import pytest
import scanpy as sc

from cytodask.cancer import EXHAUSTION_MARKERS, exhausted_vs_other, exhaustion_scores, score_cells
from tests.cancer._data import CELL_TYPE_MAP, cancer_atlas


@pytest.fixture(scope="module")
def atlas():
    return cancer_atlas()


def _scanpy_scores(expr, mask, genes, **kw):
    ref = expr[mask].copy()
    ref.X = ref.X.astype(np.float64)
    sc.pp.normalize_total(ref, target_sum=1e4)
    sc.pp.log1p(ref)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sc.tl.score_genes(ref, list(genes), **kw)
    return ref.obs["score"].to_numpy()


@pytest.mark.parametrize("lazy", [False, True], ids=["numpy", "dask"])
@pytest.mark.parametrize("kw", [{}, {"ctrl_size": 20, "n_bins": 10, "random_state": 3}])
def test_score_equals_scanpy_score_genes(atlas, lazy, kw):
    expr = atlas[0]
    mask = (expr.obs["cellType1"] == "CD8+ T cell").to_numpy()
    if lazy:  # the atlas streamed as Dask blocks of rows (CSR blocks), never whole
        expr = ad.AnnData(da.from_array(expr.X, chunks=(500, expr.n_vars)), obs=expr.obs, var=expr.var)
    ours = score_cells(expr, {"exh": EXHAUSTION_MARKERS}, cells=mask, batch_size=333, **kw)
    ref = _scanpy_scores(atlas[0], mask, EXHAUSTION_MARKERS, **kw)
    # same control genes, same float64 means: agreement to rounding of a mean of ~60 values
    np.testing.assert_allclose(ours["exh"].to_numpy(), ref, rtol=0, atol=1e-12)
    assert set(ours.attrs["control_genes"]["exh"]).isdisjoint(EXHAUSTION_MARKERS)


def test_block_size_does_not_change_scores(atlas):
    expr = atlas[0]
    a = score_cells(expr, {"exh": EXHAUSTION_MARKERS}, batch_size=97)
    b = score_cells(expr, {"exh": EXHAUSTION_MARKERS}, batch_size=100_000)
    np.testing.assert_allclose(a.to_numpy(), b.to_numpy(), rtol=0, atol=1e-13)


def test_exhausted_cells_recovered_from_expression(atlas):
    expr, _, truth = atlas
    cells = exhaustion_scores(expr, cell_type_col="cellType1", cell_type_map=CELL_TYPE_MAP, threshold=1.0)
    true = truth.loc[cells.index, "exhausted"].to_numpy()
    called = cells["exhausted"].to_numpy()
    precision = (called & true).sum() / called.sum()
    recall = (called & true).sum() / true.sum()
    assert precision > 0.95 and recall > 0.95, (precision, recall)
    assert (cells["cell_type"] == "CD8+ T cell").all()


def test_cd8_label_matched_literally(atlas):
    expr = atlas[0].copy()
    labels = expr.obs["cellType1"].astype(str).to_numpy().copy()
    labels[:40] = "CD88 T cell"  # what the regex 'CD8+ T cell' matches (and it misses 'CD8+ T cell' itself)
    labels[40:80] = "CD888 T cell"
    expr.obs["cellType1"] = labels
    cells = exhaustion_scores(expr, cell_type_col="cellType1")  # the shipped mapping, no user table
    assert set(cells["cell_type"]) == {"CD8+ T cell"}
    assert len(cells) == (labels == "CD8+ T cell").sum()
    assert not cells.index.isin(expr.obs_names[:80]).any()


def test_no_target_cells_and_missing_genes(atlas):
    expr = atlas[0]
    no_cd8 = expr.copy()
    no_cd8.obs["cellType1"] = no_cd8.obs["cellType1"].replace({"CD8+ T cell": "Fibro"})
    with pytest.raises(ValueError, match=r"no label of 'cellType1' maps to 'CD8 T'.*cell_type_map"):
        exhaustion_scores(no_cd8, cell_type_col="cellType1")
    with pytest.raises(ValueError, match=r"none of \['NOPE1', 'NOPE2'\].*gene_symbols="):
        exhaustion_scores(expr, cell_type_col="cellType1", cell_type_map=CELL_TYPE_MAP, markers=["NOPE1", "NOPE2"])
    with pytest.raises(ValueError, match=r"maps to \['CD8 T cells'\], which are not common cell types"):
        exhaustion_scores(expr, cell_type_col="cellType1", cell_type_map={"CD8+ T cell": "CD8 T cells"})
    part = exhaustion_scores(expr, cell_type_col="cellType1", cell_type_map=CELL_TYPE_MAP,
                             markers=[*EXHAUSTION_MARKERS, "NOPE"])
    assert part.attrs["missing"]["exhaustion"] == ["NOPE"]


def test_exhausted_vs_other_paired_over_donors(atlas):
    import scipy.stats as ss
    from statsmodels.stats.multitest import multipletests

    expr, activity, _ = atlas
    cells = exhaustion_scores(expr, cell_type_col="cellType1", cell_type_map=CELL_TYPE_MAP)
    lazy = ad.AnnData(da.from_array(activity.X, chunks=(700, activity.n_vars)), obs=activity.obs,
                      var=activity.var)
    t = exhausted_vs_other(lazy, cells, donor_col="donorID", min_cells=3)
    donors = t.attrs["donors"]
    used = [d for d, u in zip(donors["donor"], donors["used"], strict=True) if u]
    frame = pd.DataFrame(activity.X, index=activity.obs_names, columns=activity.var_names).loc[cells.index]
    frame["donor"] = activity.obs.loc[cells.index, "donorID"].to_numpy()
    frame["exhausted"] = cells["exhausted"].to_numpy()
    means = frame.groupby(["donor", "exhausted"]).mean()
    for _, r in t.iterrows():
        x = means.xs(True, level="exhausted").loc[used, r.signature].to_numpy()
        y = means.xs(False, level="exhausted").loc[used, r.signature].to_numpy()
        ref = ss.ttest_rel(x, y) if r.test == "paired_t" else ss.wilcoxon(x, y, method="asymptotic", correction=False)
        assert r.n_pairs == len(used) and r.pvalue == pytest.approx(ref.pvalue, rel=1e-9)
        assert r["diff"] == pytest.approx(np.mean(x - y), rel=1e-10)
    for _, sub in t.groupby("test"):
        np.testing.assert_allclose(sub["qvalue"], multipletests(sub["pvalue"], method="fdr_bh")[1], rtol=1e-12)
    top = t[t["test"] == "paired_t"].set_index("signature")
    assert top.loc["IL10", "qvalue"] < 0.05 and top.loc["IL10", "diff"] > 1.0
    assert (top.drop("IL10")["qvalue"] >= 0.05).all()
