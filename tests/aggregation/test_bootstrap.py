"""Bootstrap replicates: block-size independence, equality with a direct NumPy resampling, CI coverage."""

from __future__ import annotations

import anndata as ad
import dask
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from cytodask.aggregation import bootstrap_pseudobulk, cell_draws, donor_draws
from cytodask.aggregation.bootstrap import SEGMENT


@pytest.mark.parametrize("resample", ["donor", "cell"])
def test_same_seed_same_replicates_for_any_block_size(atlas_store, resample: str):
    kw = {"n_boot": 6, "seed": 7, "resample": resample, "donor": "sample", "min_cells": 1}
    a = bootstrap_pseudobulk(atlas_store(137), ["cell_type"], **kw)
    b = bootstrap_pseudobulk(atlas_store(500), ["cell_type"], chunk_replicates=4, **kw)
    ca, cb = dask.compute(a.counts, b.counts)
    np.testing.assert_array_equal(ca, cb)  # integer sums with integer weights: exact
    np.testing.assert_array_equal(a.n_cells, b.n_cells)
    other = bootstrap_pseudobulk(atlas_store(137), ["cell_type"], **{**kw, "seed": 8}).counts.compute()
    assert not np.array_equal(ca, other)


def test_replicates_equal_direct_numpy_resampling(levels_adata: ad.AnnData):
    """Replicate b = sum over the drawn donors' / cells' rows (repeats included), computed on the full matrix."""
    x = levels_adata.X.toarray().astype(np.float64)
    obs = levels_adata.obs.astype({"cell_type": str, "donor": str})
    donor = bootstrap_pseudobulk(levels_adata, ["cell_type"], n_boot=4, seed=3, resample="donor", min_cells=1,
                                 batch_size=300)
    cell = bootstrap_pseudobulk(levels_adata, ["cell_type"], n_boot=4, seed=3, resample="cell", min_cells=1,
                                batch_size=300)
    got_d, got_c = dask.compute(donor.counts, cell.counts)
    for b in range(4):
        drawn = donor_draws(3, obs["donor"], b)
        assert len(drawn) == obs["donor"].nunique()
        for g, ct in enumerate(donor.obs["cell_type"]):
            rows = np.concatenate([np.nonzero(((obs["donor"] == d) & (obs["cell_type"] == ct)).to_numpy())[0]
                                   for d in drawn])
            np.testing.assert_array_equal(got_d[b, g], x[rows].sum(0))
            assert donor.n_cells[b, g] == rows.size
            members = np.nonzero((obs["cell_type"] == ct).to_numpy())[0]  # atlas order = rank order
            ranks = cell_draws(3, [ct], b, members.size)
            np.testing.assert_array_equal(got_c[b, g], x[members[ranks]].sum(0))


def test_cell_draws_are_resampling_with_replacement():
    n = 3 * SEGMENT + 17  # several segments, a short last one
    draws = cell_draws(0, "T|S01", 5, n)
    assert draws.size == n and draws.min() >= 0 and draws.max() < n
    assert 0.55 < np.unique(draws).size / n < 0.71  # ≈ 1 − 1/e of the cells appear at least once
    np.testing.assert_array_equal(draws, cell_draws(0, "T|S01", 5, n))
    assert not np.array_equal(draws, cell_draws(0, "T|S01", 6, n))


def _poisson_atlas(n_groups: int, n_per: int, n_genes: int, seed: int,
                   donors: int = 0) -> tuple[ad.AnnData, np.ndarray]:
    """Cells with Poisson counts; returns the AnnData and the true mean per (group, gene)."""
    rng = np.random.default_rng(seed)
    lam = rng.uniform(0.5, 5.0, size=(n_groups, n_genes))
    group = np.repeat(np.arange(n_groups), n_per)
    if donors:  # independent donor × gene effects, E[u] = exp(σ²/2)
        donor = np.tile(np.repeat(np.arange(donors), n_per // donors), n_groups)
        u = np.exp(rng.normal(0, 0.3, size=(donors, n_genes)))
        mu = lam[group] * u[donor]
        truth = lam * np.exp(0.3**2 / 2)
    else:
        donor = np.zeros(group.size, dtype=int)
        mu, truth = lam[group], lam
    obs = pd.DataFrame({"g": pd.Categorical([f"G{i}" for i in group]), "donor": [f"D{d:02d}" for d in donor]},
                       index=[f"c{i}" for i in range(group.size)])
    return ad.AnnData(sp.csr_matrix(rng.poisson(mu).astype(np.float32)), obs=obs), truth


@pytest.mark.parametrize("resample", ["cell", "donor"])
def test_percentile_interval_coverage(resample: str):
    """95 % percentile intervals of the per-cell mean cover the true mean for ~95 % of (group, gene) pairs.

    400 independent pairs: the coverage has s.d. ~1.1 %; bounds [0.88, 0.99] leave room for the
    bootstrap's known small-sample under-coverage (donor mode: 40 donors).
    """
    adata, truth = _poisson_atlas(2, 400, 200, seed=11, donors=40 if resample == "donor" else 0)
    reps = bootstrap_pseudobulk(adata, ["g"], n_boot=200, seed=0, resample=resample, min_cells=1)
    lo, hi = dask.compute(*reps.interval(0.95, statistic="mean"))
    covered = (lo <= truth) & (truth <= hi)
    assert 0.88 <= covered.mean() <= 0.99, covered.mean()
    assert reps.normalized().shape == (200, 2, 200)


def test_bootstrap_errors(levels_adata: ad.AnnData):
    with pytest.raises(ValueError, match=r"\['patient'\] do not exist; available columns"):
        bootstrap_pseudobulk(levels_adata, ["cell_type"], donor="patient")
    with pytest.raises(ValueError, match="remove 'donor' from by"):
        bootstrap_pseudobulk(levels_adata, ["cell_type", "donor"])
    with pytest.raises(ValueError, match="resample='sample' is not"):
        bootstrap_pseudobulk(levels_adata, ["cell_type"], resample="sample")  # type: ignore[arg-type]
