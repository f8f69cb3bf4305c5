"""Ingest: sources → atlas store (AnnData Zarr with CSR X in blocks of cells).

Every name is imported on first use, so ``import cytodask.ingest.sources`` (the command line's
``--help``) does not load anndata, Dask or the optional sources' dependencies (extras).
"""

from __future__ import annotations

import importlib

_WHERE = {
    "Atlas": "atlas", "open_atlas": "atlas",
    "DataSource": "base", "Schema": "base", "check_counts": "base", "detect_symbol_column": "base",
    "ConvertStage": "conversion", "convert": "conversion",
    "LocalH5ADSource": "h5ad",
    "SUPPORTED": "sources", "open_source": "sources",
    "CellxgeneCensusSource": "census", "RemoteH5ADSource": "remote", "TenXSource": "tenx", "LoomSource": "loom",
}

__all__ = [
    "Atlas", "ConvertStage", "DataSource", "LocalH5ADSource", "Schema",
    "SUPPORTED", "CellxgeneCensusSource", "LoomSource", "RemoteH5ADSource", "TenXSource",
    "check_counts", "convert", "detect_symbol_column", "open_atlas", "open_source",
]


def __getattr__(name: str) -> object:
    """The public names, each from its module on first use."""
    if name in _WHERE:
        value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'cytodask.ingest' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
