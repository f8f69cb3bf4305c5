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


def test_value_rows_matches_repeat():
    """The row of each stored value by search (valid on CuPy 13), equal to NumPy's repeat, empty rows included."""
    from tests.gpu_util import device_numpy

    m = sp.random(50, 20, density=0.2, format="csr", random_state=0)
    m[[3, 4, 17]] = 0
    m.eliminate_zeros()
    ref = np.repeat(np.arange(50), np.diff(m.indptr))
    np.testing.assert_array_equal(xpm.value_rows(m.indptr, np), ref)
    np.testing.assert_array_equal(xpm.value_rows(m.indptr, device_numpy("repeat")), ref)
    a, b = int(m.indptr[10]), int(m.indptr[30])
    np.testing.assert_array_equal(xpm.value_rows(m.indptr, np, 10, 30, a, b), ref[a:b])


def test_nanquantile_fallback_equals_numpy():
    """CuPy has no nanquantile: the sort-based fallback gives NumPy's bits (bootstrap intervals finite on GPU)."""
    import warnings

    from tests.gpu_util import device_numpy

    rng = np.random.default_rng(0)
    a = rng.normal(size=(9, 5, 4))
    a[rng.random(a.shape) < 0.3] = np.nan
    a[:, 0, 0] = np.nan  # an all-NaN column
    a[:, 1, 1] = 3.0  # ties
    q = [0.025, 0.5, 0.975]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ref = np.nanquantile(a, q, axis=0)
    for got in (xpm.sorted_nanquantile(a, q, np), xpm.nanquantile(a, q, device_numpy("nanquantile"))):
        np.testing.assert_array_equal(got, ref)
    assert np.isfinite(xpm.sorted_nanquantile(a, q, np)[:, 1:]).all()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert xpm.nanquantile(a, q, np).tobytes() == ref.tobytes()  # NumPy's own where it has one


def test_device_copy_on_numpy():
    a = np.arange(4.0)
    assert xpm.device_copy(a, np) is a and xpm.device_copy(None, np) is None
