"""Ingest: sources → atlas store (AnnData Zarr with CSR X in blocks of cells)."""

from __future__ import annotations

from cytodask.ingest.atlas import Atlas, open_atlas
from cytodask.ingest.base import DataSource, Schema, check_counts, detect_symbol_column
from cytodask.ingest.convert import ConvertStage, convert
from cytodask.ingest.h5ad import LocalH5ADSource
from cytodask.ingest.sources import SUPPORTED, open_source

__all__ = [
    "Atlas", "ConvertStage", "DataSource", "LocalH5ADSource", "Schema",
    "SUPPORTED", "CellxgeneCensusSource", "LoomSource", "RemoteH5ADSource", "TenXSource",
    "check_counts", "convert", "detect_symbol_column", "open_atlas", "open_source",
]


def __getattr__(name: str) -> object:
    """Optional sources, imported on first use (their dependencies are extras)."""
    lazy = {"CellxgeneCensusSource": "cytodask.ingest.census", "RemoteH5ADSource": "cytodask.ingest.remote",
            "TenXSource": "cytodask.ingest.tenx", "LoomSource": "cytodask.ingest.loom"}
    if name in lazy:
        import importlib

        return getattr(importlib.import_module(lazy[name]), name)
    raise AttributeError(f"module 'cytodask.ingest' has no attribute {name!r}")
