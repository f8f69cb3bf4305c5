"""Shared fixtures: small count matrices written as real .h5ad files."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import settings

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"

# Hypothesis: CI runs a fixed set of examples (`.ci/run` sets HYPOTHESIS_PROFILE=ci), so a red build
# is reproducible and never a roll of the dice; local runs ("dev", the default) explore new examples
# every time. Either way a failure prints the seed/blob that reproduces it.
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.register_profile("dev", print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

warnings.filterwarnings("ignore", message=".*autosharding.*")
warnings.filterwarnings("ignore", message=".*Consolidated metadata.*")


@pytest.fixture(autouse=True, scope="session")
def _private_user_cache(tmp_path_factory: pytest.TempPathFactory):
    """Parsed signature copies and other user-cache files go to a session folder, not ~/.cache."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("user-cache")))
        yield


def make_counts_adata(n_obs: int = 2000, n_vars: int = 300, *, seed: int = 0, density: float = 0.15) -> ad.AnnData:
    """Random NB-like counts with sample / cell type / disease obs columns."""
    rng = np.random.default_rng(seed)
    mask = rng.random((n_obs, n_vars)) < density
    values = rng.negative_binomial(2, 0.4, size=mask.sum()) + 1
    x = np.zeros((n_obs, n_vars), dtype=np.float32)
    x[mask] = values
    samples = np.array([f"S{i:02d}" for i in range(8)])
    sample = np.sort(rng.choice(samples, n_obs))
    obs = pd.DataFrame(
        {
            "sample": pd.Categorical(sample),
            "cell_type": pd.Categorical(rng.choice(["T", "B", "Mono", "NK"], n_obs, p=[0.4, 0.2, 0.3, 0.1])),
            "disease": pd.Categorical(np.where(np.isin(sample, samples[:4]), "disease", "healthy")),
            "age": np.repeat(40.0, n_obs) + (pd.Series(sample).str[1:].astype(int).to_numpy()),
        },
        index=[f"cell{i}" for i in range(n_obs)],
    )
    var = pd.DataFrame({"feature_name": [f"G{i}" for i in range(n_vars)]}, index=[f"G{i}" for i in range(n_vars)])
    return ad.AnnData(sp.csr_matrix(x), obs=obs, var=var)


@pytest.fixture(scope="session")
def counts_adata() -> ad.AnnData:
    return make_counts_adata()


@pytest.fixture(scope="session")
def counts_h5ad(tmp_path_factory: pytest.TempPathFactory, counts_adata: ad.AnnData) -> Path:
    path = tmp_path_factory.mktemp("h5ad") / "counts.h5ad"
    counts_adata.write_h5ad(path)
    return path


@pytest.fixture(scope="session")
def e2e_atlas(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small synthetic atlas of the end-to-end tests (tests/e2e.py), as .h5ad."""
    from cytodask.demo import donor_table, write_h5ad
    from tests.e2e import ATLAS, samples_csv

    path = tmp_path_factory.mktemp("atlas") / "atlas.h5ad"
    write_h5ad(ATLAS, path, batch_size=1000)
    donors = donor_table(ATLAS).rename(columns={"sample": "Sample_name", "age": "Age"})
    donors.to_csv(samples_csv(path), index=False)
    return path
