"""Shared specs and helpers of the demo tests."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from cytodask.demo import SyntheticAtlasSpec

SMALL = SyntheticAtlasSpec(n_cells=3000, n_genes=6000, n_donors=8, seed=0)
GOLDEN_SPEC = SyntheticAtlasSpec(n_cells=300, n_genes=4881, n_donors=3, seed=7, tile_cells=128)


def assert_csr_identical(a: sp.csr_matrix, b: sp.csr_matrix) -> None:
    """Same shape, dtype and CSR arrays (not only equal values)."""
    assert a.shape == b.shape
    assert a.dtype == b.dtype == np.int32
    np.testing.assert_array_equal(a.indptr, b.indptr)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.data, b.data)
