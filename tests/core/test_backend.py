from __future__ import annotations

import numpy as np
import pytest

from cytodask.core import backend as be


def test_numpy_dispatch():
    assert be.resolve_backend("numpy") is np
    with pytest.raises(ValueError, match="is not one of"):
        be.resolve_backend("torch")  # type: ignore[arg-type]


def test_cupy_request_without_gpu_is_clear(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(be, "cupy_or_none", lambda: None)
    assert be.resolve_backend("auto") is np
    with pytest.raises(RuntimeError, match="backend='cupy' but CuPy is not installed or sees no CUDA device"):
        be.resolve_backend("cupy")
