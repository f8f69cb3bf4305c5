"""out += A @ W: the compiled kernel equals SciPy's product; CuPy path equals NumPy."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from cytodask.core import spmm
from cytodask.core.backend import gpu_available


def _case(rows: int, n: int, width: int, density: float, seed: int, index_dtype=np.int32):
    rng = np.random.default_rng(seed)
    a = sp.random(rows, n, density=density, format="csr", random_state=seed, dtype=np.float64)
    a.indices = a.indices.astype(index_dtype)
    a.indptr = a.indptr.astype(index_dtype)
    return a, rng.standard_normal((n, width)), rng.standard_normal((rows, width))


@pytest.mark.parametrize(("rows", "n", "width", "density"), [
    (50, 30, 7, 0.3),      # row lengths not multiples of 4 (remainder loop)
    (200, 500, 129, 0.05),
    (40, 10, 3, 1.0),      # dense rows
    (30, 20, 5, 0.0),      # no stored values: out unchanged
])
def test_accumulates_scipy_product(rows, n, width, density):
    a, w, out = _case(rows, n, width, density, seed=rows + n)
    expected = out + a @ w
    got = spmm.csr_matmul_accumulate(a, w, out.copy())
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-13)


def test_int64_indices_unsorted_rows_and_column_slices():
    a, w, out = _case(300, 400, 33, 0.1, seed=3, index_dtype=np.int64)
    perm = np.random.default_rng(0).permutation(400)
    shuffled = a[:, perm]  # SciPy keeps indices unsorted after fancy column indexing in some versions
    shuffled.has_sorted_indices = False
    np.testing.assert_allclose(spmm.csr_matmul_accumulate(shuffled, w[perm], out.copy()), out + a @ w, rtol=1e-12,
                               atol=1e-12)
    acc = np.zeros_like(out)
    for g0, g1 in ((0, 130), (130, 131), (131, 400)):  # gene slices add up to the whole product
        spmm.csr_matmul_accumulate(a[:, g0:g1], w[g0:g1], acc)
    np.testing.assert_allclose(acc, a @ w, rtol=1e-12, atol=1e-12)


def test_float32_values_and_noncontiguous_operand_and_out():
    a, w, out = _case(60, 80, 10, 0.2, seed=5)
    a32 = a.astype(np.float32)
    wide = np.asfortranarray(w)
    np.testing.assert_allclose(spmm.csr_matmul_accumulate(a32, wide, out.copy()), out + a32.astype(np.float64) @ w,
                               rtol=1e-12, atol=1e-12)
    f_out = np.asfortranarray(out)  # not C-contiguous: SciPy fallback, same result
    np.testing.assert_allclose(spmm.csr_matmul_accumulate(a, w, f_out), out + a @ w, rtol=1e-13, atol=1e-13)


def test_shape_mismatch_is_an_error():
    a, w, out = _case(10, 8, 4, 0.5, seed=1)
    with pytest.raises(ValueError, match="shapes do not chain"):
        spmm.csr_matmul_accumulate(a, w[:5], out)
    with pytest.raises(ValueError, match="shapes do not chain"):
        spmm.csr_matmul_accumulate(a, w, out[:, :2])


def test_csr_matmul_choice_is_explicit():
    a, w, _ = _case(70, 60, 9, 0.2, seed=2)
    scipy_out = spmm.csr_matmul(a, w, compiled=False)
    np.testing.assert_array_equal(scipy_out, a @ w)  # exactly SciPy's product
    compiled_out = spmm.csr_matmul(a, w, compiled=True)
    assert compiled_out.flags.c_contiguous and compiled_out.dtype == np.float64
    np.testing.assert_allclose(compiled_out, a @ w, rtol=1e-13, atol=1e-13)
    assert not spmm.worth_compiling(spmm.COMPILE_MIN_WORK - 1) and spmm.worth_compiling(spmm.COMPILE_MIN_WORK)


def test_kernel_is_compiled():
    assert spmm.compiled()  # numba is a dependency; the SciPy fallback is for broken installs only


@pytest.mark.gpu
@pytest.mark.skipif(not gpu_available(), reason="needs CuPy and a CUDA device")
def test_cupy_path_equals_numpy():
    import cupy as cp
    import cupyx.scipy.sparse as cps

    a, w, out = _case(120, 90, 17, 0.1, seed=7)
    got = spmm.csr_matmul_accumulate(cps.csr_matrix(a), cp.asarray(w), cp.asarray(out), xp=cp)
    np.testing.assert_allclose(cp.asnumpy(got), out + a @ w, rtol=1e-12, atol=1e-12)
