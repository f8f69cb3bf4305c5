"""Fixtures of the world tests: each atlas generated once per session, at a small unit size."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import pytest
import scipy.sparse as sp

from cytodask.demo.world import WorldSpec, cell_metadata, generate_block, truth, truth_cells, world_spec

# Small enough for seconds, large enough that every planted effect is plain at the sample level.
TEST_CELLS = {"cima": 8_000, "inflammation": 12_000, "scatlas": 12_000}


@dataclass
class Atlas:
    spec: WorldSpec
    counts: sp.csr_matrix
    obs: pd.DataFrame
    hidden: pd.DataFrame
    truth: dict


def _atlas(name: str) -> Atlas:
    spec = world_spec(name, n_cells=TEST_CELLS[name])
    return Atlas(spec, generate_block(spec, 0, spec.n_cells), cell_metadata(spec), truth_cells(spec), truth(spec))


@pytest.fixture(scope="session")
def inflammation() -> Atlas:
    return _atlas("inflammation")


@pytest.fixture(scope="session")
def scatlas() -> Atlas:
    return _atlas("scatlas")


@pytest.fixture(scope="session")
def cima() -> Atlas:
    return _atlas("cima")
