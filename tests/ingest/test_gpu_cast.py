"""Atlas blocks bound for the GPU (issue 15.1), checked without one.

cupyx's sparse matrices hold only bool/float32/float64/complex values; count stores are int32. A stand-in
``cupyx.scipy.sparse`` that refuses other dtypes as CuPy 13/14 do (``_compressed_sparse_matrix.__init__``)
shows the cast happens on the host, before the block reaches CuPy, and that the graph's meta has its dtype.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

import dask
import numpy as np
import pytest
import scipy.sparse as sp

from cytodask.ingest import LocalH5ADSource, open_atlas
from cytodask.ingest import atlas as atlas_mod
from cytodask.ingest.atlas import device_dtype
from cytodask.ingest.conversion import convert


class _FakeCupyCSR:
    """What cupyx.scipy.sparse.csr_matrix accepts: '?fdFD' values only."""

    def __init__(self, arg: object, shape: tuple[int, int] | None = None, dtype: object = None) -> None:
        host = sp.csr_matrix(arg, shape=shape, dtype=dtype)
        if host.dtype.char not in "?fdFD":
            raise ValueError("Only bool, float32, float64, complex64 and complex128 are supported")
        self.host, self.dtype, self.shape, self.ndim = host, host.dtype, host.shape, 2

    def __getitem__(self, key: object) -> _FakeCupyCSR:  # Dask slices metas to (0, 0)
        return _FakeCupyCSR(self.host[key])

    def astype(self, dtype: object) -> _FakeCupyCSR:
        return _FakeCupyCSR(self.host.astype(dtype))


@pytest.fixture
def fake_cupyx(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    sparse = types.ModuleType("cupyx.scipy.sparse")
    sparse.csr_matrix = _FakeCupyCSR  # type: ignore[attr-defined]
    scipy_mod = types.ModuleType("cupyx.scipy")
    scipy_mod.sparse = sparse  # type: ignore[attr-defined]
    cupyx = types.ModuleType("cupyx")
    cupyx.scipy = scipy_mod  # type: ignore[attr-defined]
    for name, mod in (("cupyx", cupyx), ("cupyx.scipy", scipy_mod), ("cupyx.scipy.sparse", sparse)):
        monkeypatch.setitem(sys.modules, name, mod)
    monkeypatch.setattr(atlas_mod, "resolve_backend", lambda b: np if b == "numpy" else types.ModuleType("cupy"))
    return sparse


@pytest.mark.parametrize(("stored", "on_device"), [(np.int32, np.float32), (np.int64, np.float32),
                                                   (np.uint16, np.float32), (np.float16, np.float32),
                                                   (np.float32, np.float32), (np.float64, np.float64),
                                                   (np.bool_, np.bool_)])
def test_device_dtype(stored, on_device):
    assert device_dtype(stored) == np.dtype(on_device)


@pytest.mark.parametrize("dtype", [np.int32, np.float32])
def test_cupy_blocks_cast_on_host(tmp_path: Path, counts_adata, fake_cupyx, dtype):
    adata = counts_adata.copy()
    adata.X = adata.X.astype(dtype)
    adata.write_h5ad(tmp_path / "c.h5ad")
    convert(LocalH5ADSource(tmp_path / "c.h5ad"), tmp_path / "a.zarr", batch_size=512, fsync=False)
    atlas = open_atlas(tmp_path / "a.zarr")
    assert atlas.dtype == np.dtype(dtype)
    if np.dtype(dtype).kind == "i":  # what the old code handed CuPy
        with pytest.raises(ValueError, match="Only bool, float32"):
            fake_cupyx.csr_matrix(atlas.read_block(0))
    x = atlas.to_dask("cupy")
    assert x.dtype == np.float32
    assert isinstance(x._meta, _FakeCupyCSR) and x._meta.dtype == np.float32
    blocks = dask.compute(*x.to_delayed().ravel(), scheduler="sync")
    for b, got in enumerate(blocks):
        assert isinstance(got, _FakeCupyCSR) and got.dtype == np.float32
        np.testing.assert_array_equal(got.host.toarray(), atlas.read_block(b).toarray())  # counts exact in float32
    assert atlas.to_dask("numpy").dtype == np.dtype(dtype)  # the CPU path keeps the stored values


def test_to_device_casts_integer_sparse_on_host(fake_cupyx):
    """Activity blocks of a count store reach the GPU through core.xp.to_device: int32 rows become float64."""
    from cytodask.core.xp import to_device

    rows = sp.random(20, 10, density=0.3, format="csr", random_state=0, dtype=np.float64)
    rows.data = np.ceil(rows.data * 9)
    ints = rows.astype(np.int32)
    with pytest.raises(ValueError, match="Only bool, float32"):
        fake_cupyx.csr_matrix(ints)
    dev = to_device(ints, types.ModuleType("cupy"))
    assert isinstance(dev, _FakeCupyCSR) and dev.dtype == np.float64
    np.testing.assert_array_equal(dev.host.toarray(), rows.toarray())
    assert to_device(rows.astype(np.float32), types.ModuleType("cupy")).dtype == np.float32  # floats as they are


def test_device_block_resolves_auto_where_it_runs(fake_cupyx, monkeypatch: pytest.MonkeyPatch):
    """Pseudobulk block tasks outside a run (backend 'auto') go to the GPU a worker sees, as activity blocks do."""
    from cytodask.ingest.atlas import device_block

    block = sp.random(30, 8, density=0.3, format="csr", random_state=1, dtype=np.float64)
    block.data = np.ceil(block.data * 5)
    ints = block.astype(np.int32)
    assert device_block(ints, "numpy") is ints
    got = device_block(ints, "auto")  # fake_cupyx: this worker "sees a GPU"
    assert isinstance(got, _FakeCupyCSR) and got.dtype == np.float32
    np.testing.assert_array_equal(got.host.toarray(), block.toarray())
    monkeypatch.setattr(atlas_mod, "resolve_backend", lambda b: np)  # no GPU here: the block stays on the host
    assert device_block(ints, "auto") is ints
