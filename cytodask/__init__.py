"""cytodask: the CytoAtlas pipeline on Dask and GPUs."""

from __future__ import annotations

__version__ = "0.1.0"

from cytodask.core.config import Config  # noqa: E402

__all__ = ["Config", "__version__"]
