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
