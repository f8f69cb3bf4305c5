"""CAF subtypes from expression: calls vs the planted truth, proportions, Kruskal–Wallis vs scipy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.stats as ss
from statsmodels.stats.multitest import multipletests

from cytodask.cancer import caf_activity, caf_proportions, caf_subtypes
from tests.cancer._data import CELL_TYPE_MAP, cancer_atlas


@pytest.fixture(scope="module")
def called():
    expr, activity, truth = cancer_atlas()
    cells = caf_subtypes(expr, cell_type_col="cellType1", cell_type_map=CELL_TYPE_MAP, threshold=1.0)
    return expr, activity, truth, cells


def test_calls_agree_with_truth(called):
    _, _, truth, cells = called
    confusion = pd.crosstab(truth.loc[cells.index, "caf_subtype"], cells["caf_subtype"])
    agree = np.trace(confusion.reindex(index=["apCAF", "iCAF", "myCAF"], columns=["apCAF", "iCAF", "myCAF"],
                                       fill_value=0).to_numpy())
    assert agree / confusion.to_numpy().sum() > 0.97, confusion
    assert {"score_myCAF", "score_iCAF", "score_apCAF"} <= set(cells.columns)


def test_threshold_leaves_cells_unassigned(called):
    expr = called[0]
    cells = caf_subtypes(expr, cell_type_col="cellType1", cell_type_map=CELL_TYPE_MAP, threshold=1e6)
    assert (cells["caf_subtype"] == "unassigned").all()


def test_proportions(called):
    expr, _, _, cells = called
    p = caf_proportions(cells, expr.obs, sample_col="sampleID", cancer_type_col="cancerType")
    s = p[(p["level"] == "sample")]
    assert np.allclose(s.groupby("key")["proportion"].sum(), 1.0)
    one = s[s["key"] == "T0"].set_index("caf_subtype")
    ref = cells[expr.obs.loc[cells.index, "sampleID"] == "T0"]["caf_subtype"].value_counts(normalize=True)
    np.testing.assert_allclose(one["proportion"].reindex(ref.index), ref.to_numpy(), rtol=1e-12)
    assert set(p.loc[p["level"] == "cancer_type", "key"]) == {"LIHC", "LUAD", "CRC"}


def test_activity_per_subtype_kruskal_matches_scipy(called):
    _, activity, _, cells = called
    t = caf_activity(activity, cells, sample_col="sampleID")
    frame = pd.DataFrame(activity.X, index=activity.obs_names, columns=activity.var_names).loc[cells.index]
    frame["sample"] = activity.obs.loc[cells.index, "sampleID"].to_numpy()
    frame["sub"] = cells["caf_subtype"].to_numpy()
    frame = frame[frame["sub"] != "unassigned"]
    size = frame.groupby(["sample", "sub"]).size()
    means = frame.groupby(["sample", "sub"]).mean(numeric_only=True)[size >= 3]
    for sig, sub in t.groupby("signature"):
        groups = [means.xs(s, level="sub")[sig].to_numpy() for s in sorted(sub["caf_subtype"])]
        ref = ss.kruskal(*groups)
        assert sub["statistic"].iloc[0] == pytest.approx(ref.statistic, rel=1e-10)
        assert sub["pvalue"].iloc[0] == pytest.approx(ref.pvalue, rel=1e-9)
    first = t.drop_duplicates("signature")
    np.testing.assert_allclose(first["qvalue"], multipletests(first["pvalue"], method="fdr_bh")[1], rtol=1e-12)
    tgfb = t[t["signature"] == "TGFB1"].set_index("caf_subtype")
    assert tgfb["qvalue"].iloc[0] < 0.05 and tgfb["mean"].idxmax() == "myCAF"
    assert (first.set_index("signature").drop("TGFB1")["qvalue"] >= 0.05).all()
