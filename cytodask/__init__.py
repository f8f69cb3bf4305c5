"""cytodask: the CytoAtlas pipeline on Dask and GPUs."""

from __future__ import annotations

__version__ = "0.1.0"

from cytodask.core.config import Config

__all__ = ["Config", "Pipeline", "PipelineResults", "__version__", "open_results"]


def __getattr__(name: str):  # lazy: `import cytodask` stays light
    if name == "Pipeline":
        from cytodask.orchestration.pipeline import Pipeline

        return Pipeline
    if name in ("open_results", "PipelineResults"):
        from cytodask.orchestration import results

        return getattr(results, name)
    raise AttributeError(f"module 'cytodask' has no attribute {name!r}")
