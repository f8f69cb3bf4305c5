"""Fixtures of the aggregation tests: the shared counts as atlas stores and with cell-type levels."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from cytodask.ingest import LocalH5ADSource, convert

L1_OF = {"T": "Lymphoid", "B": "Lymphoid", "NK": "Lymphoid", "Mono": "Myeloid"}


@pytest.fixture(scope="session")
def atlas_store(tmp_path_factory: pytest.TempPathFactory, counts_h5ad: Path) -> Callable[[int], Path]:
    """``atlas_store(block_cells)``: the shared counts converted to an atlas store (cached per block size)."""
    cache: dict[int, Path] = {}

    def make(block_cells: int) -> Path:
        if block_cells not in cache:
            path = tmp_path_factory.mktemp("atlas") / f"b{block_cells}.zarr"
            convert(LocalH5ADSource(counts_h5ad), path, batch_size=block_cells, fsync=False)
            cache[block_cells] = path
        return cache[block_cells]

    return make


def with_levels(adata: ad.AnnData, seed: int = 0) -> ad.AnnData:
    """A copy with consistent CIMA-style levels: cell_type_l1 ⊃ cell_type_l2 (= cell_type) ⊃ cell_type_l3."""
    out = adata.copy()
    rng = np.random.default_rng(seed)
    l2 = out.obs["cell_type"].astype(str)
    out.obs["cell_type_l1"] = pd.Categorical(l2.map(L1_OF))
    out.obs["cell_type_l2"] = pd.Categorical(l2)
    out.obs["cell_type_l3"] = pd.Categorical(l2 + np.where(rng.random(len(l2)) < 0.5, "-a", "-b"))
    out.obs["donor"] = out.obs["sample"]
    return out


@pytest.fixture(scope="session")
def levels_adata(counts_adata: ad.AnnData) -> ad.AnnData:
    return with_levels(counts_adata)
