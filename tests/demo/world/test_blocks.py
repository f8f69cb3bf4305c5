"""Determinism and block independence of the world atlases (as for the demo atlas)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cytodask.demo.world import ATLASES, cell_metadata, generate_block, iter_blocks, world_spec
from tests.demo._atlas import assert_csr_identical


@pytest.mark.parametrize("atlas", ATLASES)
def test_blocks_do_not_depend_on_boundaries(atlas: str) -> None:
    spec = world_spec(atlas, n_cells=2500, tile_cells=512)
    whole = generate_block(spec, 0, spec.n_cells)
    for start, stop in ((0, 700), (700, 1031), (1031, 2500), (511, 513)):
        assert_csr_identical(generate_block(spec, start, stop), whole[start:stop])
    assert_csr_identical(generate_block(spec, 0, spec.n_cells), whole)  # repeatable
    obs = cell_metadata(spec)
    parts = [(o, x) for _, _, o, x in iter_blocks(spec, 900)]
    pd.testing.assert_frame_equal(pd.concat([o for o, _ in parts]), obs)
    for (o, x), start in zip(parts, range(0, spec.n_cells, 900), strict=True):
        assert_csr_identical(x, whole[start:start + len(o)])


def test_seeds_and_atlases_give_different_streams() -> None:
    a = generate_block(world_spec("cima", n_cells=600), 0, 600)
    b = generate_block(world_spec("cima", n_cells=600, seed=1), 0, 600)
    assert (a != b).nnz > 0
    # the samples (and truth) do not depend on n_cells: only their number of cells does
    small, large = world_spec("inflammation", n_cells=3000), world_spec("inflammation", n_cells=6000)
    assert cell_metadata(small)["sampleID"].cat.categories.equals(cell_metadata(large)["sampleID"].cat.categories)


def test_counts_are_realistic() -> None:
    spec = world_spec("scatlas", n_cells=1500)
    x = generate_block(spec, 0, spec.n_cells)
    assert x.dtype == np.int32
    umis = np.asarray(x.sum(axis=1)).ravel()
    assert 1000 < np.median(umis) < 6000 and 0.6 < 1 - x.nnz / np.prod(x.shape) < 0.95


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"atlas": "pbmc"}, "atlas='pbmc' is unknown"),
    ({"atlas": "cima", "size": "huge"}, "size='huge' is unknown"),
    ({"atlas": "cima", "n_cells": 0}, "n_cells=0"),
    ({"atlas": "cima", "n_genes": 5000}, "n_genes=5000"),
    ({"atlas": "cima", "seed": -1}, "seed=-1"),
])
def test_invalid_specs(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        world_spec(**kwargs)


def test_out_of_range_block() -> None:
    with pytest.raises(ValueError, match="out of range"):
        generate_block(world_spec("cima", n_cells=100), 50, 101)
