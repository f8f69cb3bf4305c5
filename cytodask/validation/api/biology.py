"""Check 5: do the expected producer cell types rank first by producer expression and by activity?"""

from __future__ import annotations

import importlib.resources
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from cytodask.core.vocabulary import ancestors, common_cell_types
from cytodask.validation.api.inputs import map_types
from cytodask.validation.api.sample import type_means

BIOLOGY_COLUMNS = ["signature", "gene", "expected_types", "matched_types", "n_types", "k",
                   "rank_expression", "percentile_expression", "top_k_expression",
                   "rank_activity", "percentile_activity", "top_k_activity", "unmapped_types", "reason"]


def expectations(path: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """The expectations table: ``signature``, ``producer_types`` (``;``-separated common cell types), ``note``.

    ``None`` reads the shipped table (``cytodask/validation/data/expectations.csv``; copy
    and edit it, then pass its path). Every type must be in the common vocabulary.
    """
    if path is None:
        resource = importlib.resources.files("cytodask.validation") / "data" / "expectations.csv"
        with importlib.resources.as_file(resource) as p:
            table = pd.read_csv(p, dtype=str, keep_default_na=False)
    else:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in ("signature", "producer_types") if c not in table.columns]
    if missing:
        raise ValueError(f"expectations table {path or 'shipped'} lacks column(s) {missing}; "
                         f"it needs signature, producer_types (';'-separated common cell types)")
    known = set(common_cell_types().index)
    for _, row in table.iterrows():
        bad = [t for t in _types(row["producer_types"]) if t not in known]
        if bad:
            raise ValueError(f"expectations table {path or 'shipped'}: {row['signature']!r} names {bad}, not in "
                             f"the common cell-type vocabulary (cytodask.core.vocabulary.common_cell_types())")
    return table


def _types(cell: str) -> list[str]:
    return [t.strip() for t in str(cell).split(";") if t.strip()]


def _rank(values: pd.Series, matched: list[str], k: int) -> tuple[float, float, bool]:
    """Best rank (1 = highest) of the matched labels, its percentile from the number of types, top-k hit."""
    ranks = values.rank(ascending=False, method="min")
    best = float(ranks[matched].min())
    n = len(values)
    return best, (n - best) / (n - 1) if n > 1 else np.nan, bool(best <= k)


def biological(activity: Any, expression: Any, *, sample_col: str, cell_type_col: str,
               cell_type_map: Mapping[str, str] | None = None, atlas: str | None = None,
               table: pd.DataFrame | str | os.PathLike[str] | None = None, top_k: int = 3,
               min_samples: int = 3) -> pd.DataFrame:
    """Check 5: rank of the expected producer types by mean producer expression and by mean activity.

    Cell-type labels reach the common vocabulary through ``cell_type_map`` (label → common
    type) and then :func:`cytodask.core.vocabulary.mapping.map_cell_types` when installed;
    a data type matches an expected type ``E`` when ``E`` is the type or one of its
    ancestors (a ``Th1`` label matches ``CD4 T``; a bare ``T`` label does not match
    ``CD8 T``). Per expectation present in the data: the best rank of the matched types
    among the ``n_types`` types with ≥ ``min_samples`` samples (1 = highest mean),
    ``percentile = (n_types − rank)/(n_types − 1)`` (1 = first, 0 = last), and whether it
    is in the top ``top_k``.
    """
    exp = table if isinstance(table, pd.DataFrame) else expectations(table)
    mean_z, mean_e, _, prod = type_means(activity, expression, sample_col=sample_col,
                                         cell_type_col=cell_type_col, min_samples=min_samples)
    mapping = map_types(mean_z.index, cell_type_map, atlas)
    unmapped = ";".join(sorted(set(mean_z.index) - set(mapping)))
    lineage = {lab: set(ancestors(c)) for lab, c in mapping.items()}
    genes = prod.set_index("signature")["gene"]
    rows = []
    for _, e in exp.iterrows():
        sig, expected = str(e["signature"]), _types(e["producer_types"])
        matched = sorted(lab for lab, anc in lineage.items() if anc & set(expected))
        row: dict[str, Any] = {"signature": sig, "gene": genes.get(sig, ""), "expected_types": ";".join(expected),
                               "matched_types": ";".join(matched), "n_types": len(mean_z), "k": top_k,
                               "unmapped_types": unmapped, "reason": ""}
        if sig not in mean_z.columns:
            row["reason"] = f"signature {sig} not in the activity"
        elif not matched:
            row["reason"] = f"no cell type of the data maps to {expected} (unmapped: {unmapped or 'none'})"
        elif len(mean_z) < 2:
            row["reason"] = f"{len(mean_z)} cell type(s) with ≥ {min_samples} samples; ranks need 2"
        else:
            r = _rank(mean_z[sig], matched, top_k)
            row.update(rank_activity=r[0], percentile_activity=r[1], top_k_activity=r[2])
            if row["gene"] in mean_e.columns:
                r = _rank(mean_e[row["gene"]], matched, top_k)
                row.update(rank_expression=r[0], percentile_expression=r[1], top_k_expression=r[2])
            else:
                row["reason"] = f"producer gene {row['gene']} not in the expression data (expression ranks NaN)"
        rows.append(row)
    out = pd.DataFrame(rows).reindex(columns=BIOLOGY_COLUMNS)
    for c in ("top_k_expression", "top_k_activity"):
        out[c] = out[c].astype("boolean")
    for c in ("rank_expression", "percentile_expression", "rank_activity", "percentile_activity"):
        out[c] = out[c].astype(np.float64)
    return out
