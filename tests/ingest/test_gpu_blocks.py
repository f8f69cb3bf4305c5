"""CuPy block paths: atlas blocks on the GPU and the aggregation kernel, compared with NumPy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cytodask.aggregation.kernels import group_sums, normalize_sums
from cytodask.ingest import open_atlas
from tests.gpu_util import STORE_DTYPES, counts_store, requires_gpu

pytestmark = requires_gpu


@pytest.mark.parametrize("dtype", STORE_DTYPES)
def test_atlas_cupy_blocks_equal_scipy_blocks(tmp_path: Path, counts_adata, dtype: str):
    """int32 stores (10x, demo) reach the GPU as float32 (cupyx holds no integers), float32 as is."""
    import cupy as cp
    import cupyx.scipy.sparse as cpsp

    atlas = open_atlas(counts_store(tmp_path, counts_adata, dtype, 512))
    assert atlas.dtype == np.dtype(dtype)
    gpu = atlas.to_dask("cupy")
    assert isinstance(gpu._meta, cpsp.csr_matrix) and gpu._meta.dtype == np.float32 and gpu.dtype == np.float32
    for b in range(atlas.n_blocks):
        got = gpu.blocks[b].compute()
        assert isinstance(got, cpsp.csr_matrix) and got.dtype == np.float32
        np.testing.assert_array_equal(cp.asnumpy(got.toarray()), atlas.read_block(b).toarray())


def test_group_sums_cupy_equals_numpy(counts_adata):
    import cupy as cp
    import cupyx.scipy.sparse as cpsp

    x = counts_adata.X
    codes = np.random.default_rng(0).integers(-1, 6, x.shape[0])
    ref = group_sums(x, codes, 6, np)
    got = group_sums(cpsp.csr_matrix(x), cp.asarray(codes), 6, cp)
    np.testing.assert_allclose(cp.asnumpy(got), ref, rtol=1e-12)
    np.testing.assert_allclose(cp.asnumpy(normalize_sums(got, got.sum(1), "log2cp1e5", cp)),
                               normalize_sums(ref, ref.sum(1), "log2cp1e5", np), rtol=1e-12)


def test_backend_resolution_on_gpu():
    import cupy as cp

    from cytodask.core.backend import array_module, resolve_backend

    assert resolve_backend("auto") is cp
    assert array_module(cp.zeros(2)) is cp
    with pytest.raises(ValueError):
        resolve_backend("torch")  # type: ignore[arg-type]
