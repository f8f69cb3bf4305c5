"""Skip marker for tests that need CuPy and a CUDA device."""

from __future__ import annotations

import pytest

from cytodask.core.backend import gpu_available

requires_gpu = [pytest.mark.gpu, pytest.mark.skipif(not gpu_available(), reason="needs CuPy and a CUDA device")]
