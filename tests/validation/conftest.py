"""Fixtures of the validation tests: the small demo atlas and a unit-size Inflammation-like world atlas."""

from __future__ import annotations

from pathlib import Path

import anndata
import pandas as pd
import pytest

from tests.validation._data import Inputs, build


@pytest.fixture(scope="session")
def demo_inputs() -> Inputs:
    """3,000 demo cells (8 donors): pseudobulk per cell_type_l2 × sample, its activity, single-cell activity."""
    from cytodask.demo import cell_metadata, gene_table, generate_block
    from tests.demo._atlas import SMALL

    genes = gene_table(SMALL)
    cells = anndata.AnnData(X=generate_block(SMALL, 0, SMALL.n_cells), obs=cell_metadata(SMALL),
                            var=pd.DataFrame(index=genes["feature_name"].astype(str).to_numpy()))
    return build(cells, ["cell_type_l2", "sample"])


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Inputs, dict]:
    """The Inflammation-like world at 12,000 cells (Ensembl var with a symbol column) and its truth."""
    from cytodask.demo.world import truth, world_spec, write_world

    spec = world_spec("inflammation", n_cells=12_000, seed=0)
    paths = write_world(spec, Path(tmp_path_factory.mktemp("world")))
    return build(anndata.read_h5ad(paths.h5ad), ["Level2", "sampleID"]), truth(spec)
