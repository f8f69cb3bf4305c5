"""Atlas cell-type labels → the common vocabulary (ANALYSES.md §1 rule 8): exact lookups, never substrings."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from cytodask.core.vocabulary import ancestors, common_cell_types


def common_labels(labels: Iterable[Any], *, cell_type_map: Mapping[str, str] | None = None,
                  atlas: str | None = None, where: str = "cancer") -> pd.Series:
    """The common cell type of each distinct label (NaN where unmapped), indexed by label.

    Parameters
    ----------
    labels
        Atlas labels (e.g. ``obs["cellType1"]``).
    cell_type_map
        ``{atlas label: common cell type}`` tried first (exact strings:
        ``"CD8+ T cell"`` is that text, not a pattern); the other labels go
        through :func:`cytodask.core.vocabulary.mapping.map_cell_types`
        (shipped crosswalk of ``atlas``, token rules, fuzzy matching).
    atlas
        Atlas name passed to ``map_cell_types``.

    Returns
    -------
    Series
        Common cell type per distinct label; labels that already are common
        cell types map to themselves. ``attrs["unmapped"]`` lists the labels
        left unmapped.
    """
    from cytodask.core.vocabulary.mapping import map_cell_types

    distinct = pd.Index(pd.unique(pd.Series(list(labels), dtype=object).dropna().astype(str)))
    vocab = common_cell_types()
    if cell_type_map is not None:
        if not isinstance(cell_type_map, Mapping):
            raise TypeError(f"{where}: cell_type_map must be a dict {{atlas label: common cell type}}; "
                            f"got {type(cell_type_map).__name__}")
        unknown = sorted({str(v) for v in cell_type_map.values()} - set(vocab.index) - {""})
        if unknown:
            raise ValueError(f"{where}: cell_type_map maps to {unknown}, which are not common cell types; "
                             f"use names of cytodask.core.vocabulary.common_cell_types(): {sorted(vocab.index)}")
    mapped = map_cell_types(list(distinct), atlas=atlas, extra=dict(cell_type_map or {}))
    lookup = {str(a): str(c) for a, c in zip(mapped["label"], mapped["common"], strict=True)
              if isinstance(c, str) and c}
    out = pd.Series([lookup.get(lab, np.nan) for lab in distinct],
                    index=distinct, dtype=object)
    out.attrs["unmapped"] = [str(lab) for lab in out.index[out.isna()]]
    return out


def belongs_to(common: pd.Series, target: str) -> pd.Series:
    """Whether each common cell type is ``target`` or one of its descendants (through :func:`ancestors`)."""
    ancestors(target)  # a ValueError names an unknown target and the known ones
    return common.map(lambda c: isinstance(c, str) and target in ancestors(c)).astype(bool)


def compartment_of(common: pd.Series) -> pd.Series:
    """The compartment (immune, stromal, epithelial, malignant, other) of each common cell type."""
    comp = common_cell_types()["compartment"]
    return common.map(lambda c: comp.get(c, np.nan) if isinstance(c, str) else np.nan)


def cells_of(labels: pd.Series, target: str, *, cell_type_map: Mapping[str, str] | None = None,
             atlas: str | None = None, where: str = "cancer") -> np.ndarray:
    """Boolean mask of the cells whose label maps to ``target`` or a descendant; error if none do."""
    common = common_labels(labels, cell_type_map=cell_type_map, atlas=atlas, where=where)
    member = belongs_to(common, target)
    mask = labels.astype(str).map(member).fillna(False).to_numpy(dtype=bool)
    if not mask.any():
        raise ValueError(f"{where}: no label of {labels.name!r} maps to {target!r} in the common vocabulary "
                         f"(labels: {list(common.index[:12])}; unmapped: {common.attrs['unmapped'][:12]}). "
                         "Pass cell_type_map={label: common cell type} naming the labels exactly.")
    return mask
