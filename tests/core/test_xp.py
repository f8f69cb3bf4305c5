"""Array-module dispatch, special functions and host↔device transfer (NumPy side; CuPy in GPU tests)."""

from __future__ import annotations

import dask.array as da
import numpy as np
import scipy.sparse as sp
import scipy.special

from cytodask.core import backend
from cytodask.core import xp as xpm


def test_numpy_dispatch():
    assert xpm.array_module(np.zeros(3)) is np
    assert xpm.array_module(sp.csr_matrix((2, 2))) is np
    assert xpm.array_module(da.zeros((4, 2), chunks=2)) is np  # through the Dask array's _meta
    assert xpm.is_sparse(sp.csr_matrix((2, 2))) and not xpm.is_sparse(np.zeros(2))
    assert xpm.is_dask(da.zeros(2)) and not xpm.is_dask(np.zeros(2))
    assert xpm.sparse_module(np) is sp
    m = sp.random(3, 3, density=0.5, format="csr")
    assert xpm.to_device(m, np) is m
    a = np.arange(3.0)
    assert xpm.to_numpy(a) is a


def test_backend_reexports_are_the_same_functions():
    """Existing ``cytodask.core.backend`` imports keep working: one home, no copies."""
    for name in ("array_module", "is_sparse", "sparse_module", "to_device", "to_numpy"):
        assert getattr(backend, name) is getattr(xpm, name)


def test_special_and_reverse_cummin_on_numpy():
    assert xpm.special(np, "ndtr") is scipy.special.ndtr
    a = np.array([[3.0, 1.0, 2.0, 0.5], [np.inf, 4.0, 5.0, 6.0]])
    np.testing.assert_array_equal(xpm.reverse_cummin(a, np), [[0.5, 0.5, 0.5, 0.5], [4.0, 4.0, 5.0, 6.0]])
