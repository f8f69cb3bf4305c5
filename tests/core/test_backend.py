from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from cytodask.core import backend as be


def test_numpy_dispatch():
    assert be.resolve_backend("numpy") is np
    assert be.array_module(np.zeros(3)) is np
    assert be.array_module(sp.csr_matrix((2, 2))) is np
    assert be.is_sparse(sp.csr_matrix((2, 2))) and not be.is_sparse(np.zeros(2))
    assert be.sparse_module(np) is sp
    m = sp.random(3, 3, density=0.5, format="csr")
    assert be.to_device(m, np) is m
    with pytest.raises(ValueError, match="is not one of"):
        be.resolve_backend("torch")  # type: ignore[arg-type]


def test_cupy_request_without_gpu_is_clear(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(be, "cupy_or_none", lambda: None)
    assert be.resolve_backend("auto") is np
    with pytest.raises(RuntimeError, match="backend='cupy' but CuPy is not installed or sees no CUDA device"):
        be.resolve_backend("cupy")
