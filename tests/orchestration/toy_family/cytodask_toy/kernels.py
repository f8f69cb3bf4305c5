"""Pure block kernel: column mean and sample standard deviation (ddof = 1), for NumPy or CuPy."""

from __future__ import annotations

from types import ModuleType
from typing import Any


def spread_block(x: Any, xp: ModuleType) -> tuple[Any, Any]:
    """Mean and sd (ddof = 1) of each column of ``x`` (samples × signatures)."""
    return xp.mean(x, axis=0), xp.std(x, axis=0, ddof=1)
