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


#: Atlases of the world the proof runs on: (cells, (cell type, sample) columns). CIMA is left out: its planted
#: associations have signed amplitudes while producer genes follow |amplitude| (not a monotone pair).
WORLDS = {"inflammation": (12_000, ["Level2", "sampleID"]), "scatlas": (20_000, ["cellType1", "sampleID"])}


@pytest.fixture(scope="session", params=list(WORLDS))
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Inputs, dict]:
    """A world atlas at unit size (Inflammation-like: Ensembl var with a symbol column; scAtlas-like), its truth."""
    from cytodask.demo.world import truth, world_spec, write_world

    atlas = request.param
    n_cells, by = WORLDS[atlas]
    spec = world_spec(atlas, n_cells=n_cells, seed=0)
    paths = write_world(spec, Path(tmp_path_factory.mktemp(f"world_{atlas}")))
    return atlas, build(anndata.read_h5ad(paths.h5ad), by), truth(spec)
