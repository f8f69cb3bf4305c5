"""cytodask: the CytoAtlas pipeline on Dask and GPUs."""

from __future__ import annotations

__version__ = "0.1.0"

from cytodask.core.config import Config

__all__ = ["Config", "Pipeline", "__version__"]


def __getattr__(name: str):  # lazy: `import cytodask` stays light
    if name == "Pipeline":
        from cytodask.orchestration.pipeline import Pipeline

        return Pipeline
    raise AttributeError(f"module 'cytodask' has no attribute {name!r}")
