"""The CuPy branches of the activity preprocessing use forms of the declared CuPy floor (issue 15.2), run on the CPU.

``cupy.repeat`` with an array of repeats needs CuPy ≥ 14.1 and sparse ``astype(copy=)`` ≥ 14.2; the
``gpu`` extra allows CuPy 13. NumPy under another name (:func:`tests.gpu_util.device_numpy`, with no
``repeat``) drives the device branch here; it must give the CPU branch's bits.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from cytodask.activity.preprocess import normalize, normalize_sparse
from tests.gpu_util import device_numpy


def _block(dtype=np.float32) -> sp.csr_matrix:
    m = sp.random(300, 80, density=0.1, format="csr", random_state=1, dtype=np.float64)
    m.data = np.ceil(m.data * 20)
    m[[5, 6, 200]] = 0  # empty cells
    m.eliminate_zeros()
    return m.astype(dtype)


@pytest.mark.parametrize("dtype", [np.int32, np.float32, np.float64])
def test_device_branch_of_normalize_sparse_equals_cpu(dtype):
    block = _block(dtype)
    totals = np.asarray(block.sum(axis=1), dtype=np.float64).ravel()
    ref = normalize_sparse(block, totals, xp=np)
    got = normalize_sparse(block, totals, xp=device_numpy("repeat"))
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got.indptr, ref.indptr)
    assert got.data.tobytes() == ref.data.tobytes()


@pytest.mark.parametrize("copy", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sparse_astype_without_copy_keyword(dtype, copy):
    """Non-count input: float64 values without ``astype(copy=)``, the same arrays shared as before."""
    block = _block(dtype)
    out = normalize(block, None, "logexpr", copy=copy, xp=np)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out.toarray(), block.toarray().astype(np.float64))
    shares = np.shares_memory(out.data, block.data)
    assert shares == (not copy and dtype == np.float64)  # scipy's astype(float64, copy=copy) did the same


def test_device_branch_of_row_sums_sums_in_float64():
    """Library sizes of a float32 block on the device: float64 sums, as on the CPU (a float32 sum would drift)."""
    from cytodask.activity.preprocess import row_sums

    rng = np.random.default_rng(2)
    block = sp.random(40, 5000, density=0.8, format="csr", random_state=3, dtype=np.float64)
    block.data = rng.integers(1, 50, block.nnz) + 0.1
    block = block.astype(np.float32)
    ref = row_sums(block, xp=np)
    for square in (False, True):
        got = row_sums(block, square=square, xp=device_numpy("repeat"))
        want = row_sums(block, square=square, xp=np)
        assert got.dtype == np.float64
        np.testing.assert_allclose(got, want, rtol=1e-14)
    in_float32 = np.asarray(block.sum(axis=1, dtype=np.float32), dtype=np.float64).ravel()
    assert np.max(np.abs(in_float32 - ref) / ref) > 1e-9  # what summing the block as it is would give
