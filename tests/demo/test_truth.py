"""Metadata and planted truth of the synthetic atlas (cytodask.demo.truth, cytodask.demo.cells)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from cytodask.demo import SyntheticAtlasSpec, cell_metadata, donor_table, gene_table, planted_truth
from cytodask.demo.spec import HIERARCHY, cytosig
from cytodask.demo.truth import atlas_model
from tests.demo._atlas import SMALL


def test_hierarchy_is_nested(small_obs: pd.DataFrame) -> None:
    obs = small_obs
    assert obs.groupby("cell_type_l3", observed=True)["cell_type_l2"].nunique().eq(1).all()
    assert obs.groupby("cell_type_l2", observed=True)["cell_type_l1"].nunique().eq(1).all()
    for l3, (l2, l1, _) in HIERARCHY.items():
        rows = obs[obs["cell_type_l3"] == l3]
        assert set(rows["cell_type_l2"]) <= {l2} and set(rows["cell_type_l1"]) <= {l1}
    fractions = obs["cell_type_l2"].value_counts(normalize=True)
    assert fractions.idxmax() == "T cell"
    assert obs["cell_type_l3"].value_counts().idxmin() in {"pDC", "cDC2", "CD56bright NK"}


def test_obs_columns_and_types(small_obs: pd.DataFrame) -> None:
    obs = small_obs
    assert list(obs.columns) == [
        "sample", "donor", "disease", "age", "BMI", "sex", "cell_type_l1", "cell_type_l2", "cell_type_l3",
    ]  # fmt: skip
    for column in ["sample", "donor", "disease", "sex", "cell_type_l1", "cell_type_l2", "cell_type_l3"]:
        assert isinstance(obs[column].dtype, pd.CategoricalDtype), column
    assert obs.index[0] == "cell_000000001" and obs.index[-1] == "cell_000003000"
    assert obs["sample"].cat.codes.is_monotonic_increasing  # cells ordered by sample
    assert obs["age"].between(20, 80).all() and obs["BMI"].between(17, 40).all()
    assert set(obs["sex"]) <= {"F", "M"}


@pytest.mark.parametrize(
    ("n_donors", "fraction", "n_disease"), [(8, 0.5, 4), (8, 0.25, 2), (5, 0.0, 0), (24, 1.0, 24)]
)
def test_donor_table(n_donors: int, fraction: float, n_disease: int) -> None:
    spec = SyntheticAtlasSpec(n_cells=500, n_genes=5000, n_donors=n_donors, disease_fraction=fraction)
    donors = donor_table(spec)
    assert list(donors.columns) == ["sample", "donor", "disease", "age", "BMI", "sex"]
    assert len(donors) == n_donors and donors["donor"].is_unique and donors["sample"].is_unique
    assert set(donors["disease"]) <= {"healthy", "disease"}
    assert (donors["disease"] == "disease").sum() == n_disease
    obs = cell_metadata(spec)
    merged = obs.drop_duplicates("sample").astype({"sample": str, "disease": str})
    by_sample = donors.set_index("sample")["disease"]
    assert (merged["disease"].to_numpy() == by_sample.loc[merged["sample"]].to_numpy()).all()


def test_gene_table(small_counts: sp.csr_matrix) -> None:
    var = gene_table(SMALL)
    assert len(var) == SMALL.n_genes == small_counts.shape[1]
    assert var.index.is_unique and var["gene_ids"].is_unique
    assert (var.index == var["feature_name"]).all()
    assert set(cytosig().index) <= set(var.index)
    assert var.index[-1] == "SYN01119" and var["gene_ids"].iloc[0] == "ENSG00000000001"




def _pseudobulk_lfc(counts: sp.csr_matrix, obs: pd.DataFrame, cell_type: str) -> pd.Series:
    """Disease minus healthy mean of log2(CPM + 1) pseudobulk (sample x cell type), CytoSig genes."""
    mask = (obs["cell_type_l2"] == cell_type).to_numpy()
    codes, samples = pd.factorize(obs["sample"][mask].astype(str))
    n = int(mask.sum())
    summing = sp.csr_matrix((np.ones(n), (codes, np.arange(n))), shape=(len(samples), n))
    pseudobulk = np.asarray((summing @ counts[mask]).todense())
    log_cpm = np.log2(pseudobulk / pseudobulk.sum(axis=1, keepdims=True) * 1e6 + 1.0)
    genes = gene_table(SMALL).index
    log_cpm = pd.DataFrame(log_cpm, index=samples, columns=genes)[cytosig().index]
    diseased = donor_table(SMALL).set_index("sample").loc[samples, "disease"].eq("disease").to_numpy()
    lfc = log_cpm[diseased].mean() - log_cpm[~diseased].mean()
    # Keep the better-expressed half: the usual pseudobulk expression filter
    # (low-count genes carry Poisson noise well above the planted shifts).
    return lfc[log_cpm.mean() >= log_cpm.mean().median()]


@pytest.mark.parametrize(
    ("cell_type", "cytokine", "min_r"),
    [("Monocyte", "IFNG", 0.3), ("B cell", "IL4", 0.25)],
)
def test_planted_response_is_recovered(
    small_counts: sp.csr_matrix, small_obs: pd.DataFrame, cell_type: str, cytokine: str, min_r: float
) -> None:
    """Disease-vs-healthy pseudobulk log fold change correlates with the planted CytoSig column.

    Measured at this size over seeds 0-2: r = 0.32-0.43 (Monocyte/IFNG) and
    0.29-0.41 (B cell/IL4) on ~2,440 genes, whose null standard deviation is
    1/sqrt(2440) = 0.02; the thresholds leave room for the seed while staying
    >10 null SDs. Unrelated cytokines (|signature correlation| < 0.2) reach at
    most ~0.09, so the planted one must beat them all by >= 0.15.
    """
    signature = cytosig()
    lfc = _pseudobulk_lfc(small_counts, small_obs, cell_type)
    r = signature.loc[lfc.index].corrwith(lfc)
    assert r[cytokine] > min_r, r[cytokine]
    unrelated = signature.corr()[cytokine].abs() < 0.2
    assert r[cytokine] > r[unrelated].abs().max() + 0.15, (r[cytokine], r[unrelated].abs().max())


def test_unplanted_cell_type_shows_no_response(small_counts: sp.csr_matrix, small_obs: pd.DataFrame) -> None:
    """T cells get no planted shift: |r| with IFNG stays within ~5 null SDs (0.1)."""
    lfc = _pseudobulk_lfc(small_counts, small_obs, "T cell")
    r = cytosig().loc[lfc.index].corrwith(lfc)
    assert abs(r["IFNG"]) < 0.1, r["IFNG"]


def test_planted_truth_table() -> None:
    truth = planted_truth(SMALL)
    assert list(truth.columns) == ["cytokine", "cell_type_l2", "condition", "strength"]
    assert truth.to_dict("records") == [
        {"cytokine": "IFNG", "cell_type_l2": "Monocyte", "condition": "disease", "strength": 1.0},
        {"cytokine": "IL4", "cell_type_l2": "B cell", "condition": "disease", "strength": 1.0},
    ]


def test_no_planted_response_means_no_disease_effect() -> None:
    """Without planted responses, disease and healthy samples share one expression model."""
    base = SyntheticAtlasSpec(n_cells=300, n_genes=5000, n_donors=4, planted=())
    assert planted_truth(base).empty
    model = atlas_model(base)
    assert model.planted_log.shape == (0, 5000)
