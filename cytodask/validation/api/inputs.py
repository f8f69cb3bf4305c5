"""Shared input handling of the validation checks: alignment, producer genes, log-CPM, reasons, FDR."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import anndata
import numpy as np
import pandas as pd
import scipy.sparse as sp

from cytodask.core.stats.fdr import fdr_bh
from cytodask.core.vocabulary import common_cell_types, signature_gene

WHOLE_SAMPLE = "(whole sample)"  #: the stratum label of whole-sample rows


def _check_anndata(x: Any, what: str) -> anndata.AnnData:
    if not isinstance(x, anndata.AnnData):
        raise TypeError(f"{what} must be an AnnData (obs = pseudobulk groups or samples, var = "
                        f"{'signatures' if what == 'activity' else 'genes'}); got {type(x).__name__}")
    return x


def dense(x: Any) -> np.ndarray:
    """A host float64 array of an in-memory matrix (sparse densified: pseudobulk-sized only)."""
    if sp.issparse(x):
        x = x.toarray()
    if hasattr(x, "compute"):
        x = x.compute()
    if hasattr(x, "get"):
        x = x.get()
    return np.asarray(x, dtype=np.float64)


def activity_frame(activity: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(z, obs)`` of an activity AnnData (rows flagged ``empty`` left out)."""
    activity = _check_anndata(activity, "activity")
    obs = activity.obs
    z = pd.DataFrame(dense(activity.X), index=activity.obs_names.astype(str), columns=activity.var_names.astype(str))
    if "empty" in obs.columns:
        keep = ~obs["empty"].to_numpy(dtype=bool)
        z, obs = z[keep], obs[keep]
    return z, obs.set_axis(z.index)


def symbols(var: pd.DataFrame) -> pd.Index:
    """Gene symbols of ``var``: Ensembl IDs replaced from a symbol column (``activity.resolve_symbols``)."""
    from cytodask.activity import resolve_symbols

    return resolve_symbols(var.index.astype(str), var)


def counts_frame(expression: Any) -> pd.DataFrame:
    """Pseudobulk counts (groups × gene symbols) of an expression AnnData: its ``counts`` layer, else ``X``."""
    expression = _check_anndata(expression, "expression")
    x = expression.layers["counts"] if "counts" in expression.layers else expression.X
    return pd.DataFrame(dense(x), index=expression.obs_names.astype(str), columns=symbols(expression.var))


def align(activity: Any, expression: Any, columns: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Activity z, obs and expression counts on their common rows; errors name what is missing."""
    z, obs = activity_frame(activity)
    counts = counts_frame(expression)
    missing = [c for c in columns if c not in obs.columns]
    if missing:
        raise ValueError(f"activity obs lacks column(s) {missing}; available: {list(obs.columns)} "
                         f"(pass sample_col/cell_type_col naming its columns)")
    common = z.index.intersection(counts.index)
    if common.empty:
        raise ValueError(f"activity and expression share no samples (activity rows e.g. {list(z.index[:3])}, "
                         f"expression rows e.g. {list(counts.index[:3])}); pass the pseudobulk the activity "
                         f"was computed from")
    return z.loc[common], obs.loc[common], counts.loc[common]


def log_cpm(counts: pd.DataFrame, genes: Sequence[str]) -> pd.DataFrame:
    """``log2(1e6 · c / T + 1)`` of ``genes`` (T = the row's total over all genes; NaN where T = 0)."""
    total = counts.sum(axis=1).to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = np.where(total > 0, 1e6 / total, np.nan)
    return np.log2(counts[list(genes)].mul(scale, axis=0) + 1.0)


def producers(signatures: Sequence[str], genes: Sequence[str]) -> pd.DataFrame:
    """Producer gene of each signature (:func:`cytodask.core.vocabulary.signature_gene`) and whether it is present.

    Columns ``signature``, ``gene``, ``present``, ``reason`` (why a signature cannot be checked).
    """
    have = set(map(str, genes))
    rows = []
    for s in signatures:
        gene = signature_gene(str(s))
        ok = gene in have
        rows.append({"signature": str(s), "gene": gene, "present": ok,
                     "reason": "" if ok else f"producer gene {gene} not in the expression data"})
    return pd.DataFrame(rows, columns=["signature", "gene", "present", "reason"])


def map_types(labels: Sequence[str], cell_type_map: Mapping[str, str] | None, atlas: str | None) -> dict[str, str]:
    """Atlas label → common cell type (:func:`cytodask.core.vocabulary.mapping.map_cell_types`).

    ``cell_type_map`` (label → common type; ``None``/``""``: not a cell type) is tried first, then
    the atlas' shipped crosswalk (``atlas``; ``None`` tries all), token rules and fuzzy matching.
    Unmapped labels are left out (the biological check lists them).
    """
    from cytodask.core.vocabulary.mapping import map_cell_types

    extra = {str(k): (str(v) if isinstance(v, str) else "") for k, v in (cell_type_map or {}).items()}
    table = map_cell_types(sorted(set(map(str, labels))), atlas=atlas, extra=extra or None)
    known = set(common_cell_types().index)
    return {str(r.label): str(r.common) for r in table.itertuples() if isinstance(r.common, str) and r.common in known}


def finish(table: pd.DataFrame, columns: Sequence[str], family: str) -> pd.DataFrame:
    """BH ``qvalue`` over every ``pvalue`` of the table (the declared family), columns in schema order."""
    table = table.copy()
    if "pvalue" in table.columns:
        table["qvalue"] = fdr_bh(table["pvalue"].to_numpy(dtype=np.float64)) if len(table) else np.float64([])
        table.attrs["fdr_family"] = family
    table["reason"] = table["reason"].fillna("").astype(str) if "reason" in table else ""
    return table[list(columns)].reset_index(drop=True)
