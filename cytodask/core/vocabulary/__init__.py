"""One cell-type vocabulary and one CytoSig name table for every family (ANALYSES.md §1, rules 7 and 8).

- :func:`common_cell_types`: the common cell-type vocabulary (``cell_type``,
  ``parent``, ``compartment``, ``lineage``, ``description``); every atlas label
  reaches it through a crosswalk, then token rules, then fuzzy matching
  (:mod:`cytodask.core.vocabulary.mapping`).
- :func:`signature_gene`: the producer gene of a CytoSig signature (``TNFA`` →
  ``TNF``); SecAct names are gene symbols already.

Both are package data (``cytodask/core/vocabulary/data/*.csv``) that users can
read, copy and extend.
"""

from __future__ import annotations

import importlib.resources
from functools import lru_cache

import pandas as pd

__all__ = ["common_cell_types", "cytosig_names", "signature_gene", "ancestors"]


def _read(name: str) -> pd.DataFrame:
    resource = importlib.resources.files("cytodask.core.vocabulary") / "data" / name
    with importlib.resources.as_file(resource) as path:
        return pd.read_csv(path, dtype=str, keep_default_na=False)


@lru_cache(maxsize=1)
def _common() -> pd.DataFrame:
    table = _read("common_cell_types.csv").set_index("cell_type", drop=False)
    unknown = sorted(set(table["parent"]) - set(table.index) - {""})
    if unknown:  # a packaging error, not a user error
        raise RuntimeError(f"common_cell_types.csv names parents that are not cell types: {unknown}")
    return table


def common_cell_types() -> pd.DataFrame:
    """The common vocabulary, indexed by ``cell_type`` (a copy: edit freely)."""
    return _common().copy()


def ancestors(cell_type: str) -> list[str]:
    """``cell_type`` and its parents up to the root (``"Treg"`` → ``["Treg", "CD4 T", "T"]``)."""
    table = _common()
    if cell_type not in table.index:
        raise ValueError(
            f"{cell_type!r} is not in the common cell-type vocabulary; "
            f"known types: {sorted(table.index)}"
        )
    chain = [cell_type]
    while table.at[chain[-1], "parent"]:
        chain.append(table.at[chain[-1], "parent"])
    return chain


@lru_cache(maxsize=1)
def cytosig_names() -> pd.DataFrame:
    """CytoSig names that are not gene symbols: ``cytosig``, ``gene``, ``note``."""
    return _read("cytosig_names.csv")


def signature_gene(name: str) -> str:
    """The producer gene of signature ``name``: the name table for CytoSig names, else ``name`` itself."""
    table = cytosig_names()
    hit = table.loc[table["cytosig"] == name, "gene"]
    return str(hit.iloc[0]) if len(hit) else name
