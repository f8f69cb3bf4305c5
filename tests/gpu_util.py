"""Skip marker for tests that need CuPy and a CUDA device."""

from __future__ import annotations

import pytest

from cytodask.core.backend import gpu_available

requires_gpu = [pytest.mark.gpu, pytest.mark.skipif(not gpu_available(), reason="needs CuPy and a CUDA device")]


def device_numpy(*missing: str):
    """NumPy under another name: code takes its non-NumPy (CuPy) branch, on the CPU.

    ``missing`` names raise AttributeError, as on a CuPy that lacks them (e.g. ``"repeat"``, to
    show a branch does not use a form newer than the declared CuPy floor).
    """
    import types

    import numpy as np

    mod = types.ModuleType("device_numpy")

    def __getattr__(name: str):
        if name in missing:
            raise AttributeError(f"device_numpy has no {name!r} (as an older CuPy)")
        return getattr(np, name)

    mod.__getattr__ = __getattr__  # type: ignore[attr-defined]
    return mod


STORE_DTYPES = ["int32", "float32"]  # count stores as 10x/demo write them (int32), and float32: both reach the GPU


def counts_store(folder, adata, dtype: str, batch_size: int = 500):
    """``adata`` with X in ``dtype``, converted to an atlas store under ``folder`` (cached by dtype and blocks)."""
    from pathlib import Path

    from cytodask.ingest import LocalH5ADSource
    from cytodask.ingest.conversion import convert

    folder = Path(folder)
    store = folder / f"{dtype}-{batch_size}.zarr"
    if not store.exists():
        a = adata.copy()
        a.X = a.X.astype(dtype)
        a.write_h5ad(folder / f"{dtype}.h5ad")
        convert(LocalH5ADSource(folder / f"{dtype}.h5ad"), store, batch_size=batch_size, fsync=False)
    return store


# What CuPy 13 and cupyx lack that NumPy/SciPy have (the GPU code must not call them).
CUPY_LACKS = ("nanquantile", "repeat")
CUPYX_SPECIAL_LACKS = ("stdtr", "betaincc", "stdtrit")


def install_fake_cupy(monkeypatch) -> None:
    """Put a NumPy-backed stand-in for ``cupy``/``cupyx`` in ``sys.modules`` (CPU tests of the CuPy branches).

    It computes with NumPy/SciPy, so the device branches (``xp is not np``) run their Python on the CPU
    and must give the NumPy branches' numbers; it lacks what CuPy 13 lacks (:data:`CUPY_LACKS`,
    :data:`CUPYX_SPECIAL_LACKS`), its sparse matrices refuse integer values as cupyx's do, and it
    reports one device. Arrays it makes are NumPy arrays, so code that dispatches on an array's type
    sees NumPy: this checks the branches chosen by a backend name, not CuPy's own behaviour.
    """
    import sys
    import types

    import numpy as np
    import scipy.linalg
    import scipy.sparse as sp
    import scipy.special

    def forward(name: str, target, lacks=()):
        mod = types.ModuleType(name)

        def __getattr__(attr: str):
            if attr in lacks:
                raise AttributeError(f"{name} has no {attr!r} (as CuPy 13)")
            return getattr(target, attr)

        mod.__getattr__ = __getattr__  # type: ignore[attr-defined]
        return mod

    cupy = forward("cupy", np, CUPY_LACKS)
    device = types.SimpleNamespace(id=0, synchronize=lambda: None, mem_info=(80 * 2**30, 80 * 2**30))
    runtime = types.SimpleNamespace(getDeviceCount=lambda: 1, runtimeGetVersion=lambda: 13000,
                                    driverGetVersion=lambda: 13000,
                                    getDeviceProperties=lambda i: {"name": b"Fake GPU", "totalGlobalMem": 80 * 2**30})
    cupy.cuda = types.SimpleNamespace(Device=lambda *a: device, runtime=runtime)  # type: ignore[attr-defined]
    cupy.__version__ = "13.0.0-fake"  # type: ignore[attr-defined]
    cupy.asnumpy = np.asarray  # type: ignore[attr-defined]

    def csr_matrix(arg, shape=None, dtype=None, copy=False):
        m = sp.csr_matrix(arg, shape=shape, dtype=dtype, copy=copy)
        if m.dtype.char not in "?fdFD":
            raise ValueError("Only bool, float32, float64, complex64 and complex128 are supported")
        return m

    sparse = forward("cupyx.scipy.sparse", sp)
    sparse.csr_matrix = csr_matrix  # type: ignore[attr-defined]
    special = forward("cupyx.scipy.special", scipy.special, CUPYX_SPECIAL_LACKS)
    linalg = forward("cupyx.scipy.linalg", scipy.linalg)
    cupyx_scipy = types.ModuleType("cupyx.scipy")
    cupyx_scipy.sparse, cupyx_scipy.special, cupyx_scipy.linalg = sparse, special, linalg  # type: ignore[attr-defined]
    cupyx = types.ModuleType("cupyx")
    cupyx.scipy = cupyx_scipy  # type: ignore[attr-defined]
    for name, mod in (("cupy", cupy), ("cupyx", cupyx), ("cupyx.scipy", cupyx_scipy),
                      ("cupyx.scipy.sparse", sparse), ("cupyx.scipy.special", special),
                      ("cupyx.scipy.linalg", linalg)):
        monkeypatch.setitem(sys.modules, name, mod)
