"""Fixtures of the demo tests: the small atlas's counts and obs, generated once per session."""

from __future__ import annotations

import pandas as pd
import pytest
import scipy.sparse as sp

from cytodask.demo import cell_metadata, generate_block
from tests.demo._atlas import SMALL


@pytest.fixture(scope="session")
def small_counts() -> sp.csr_matrix:
    return generate_block(SMALL, 0, SMALL.n_cells)


@pytest.fixture(scope="session")
def small_obs() -> pd.DataFrame:
    return cell_metadata(SMALL)
