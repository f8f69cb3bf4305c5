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

    from cytodask.ingest import LocalH5ADSource, convert

    folder = Path(folder)
    store = folder / f"{dtype}-{batch_size}.zarr"
    if not store.exists():
        a = adata.copy()
        a.X = a.X.astype(dtype)
        a.write_h5ad(folder / f"{dtype}.h5ad")
        convert(LocalH5ADSource(folder / f"{dtype}.h5ad"), store, batch_size=batch_size, fsync=False)
    return store
