"""Immune infiltration of tumour samples through the common cell-type vocabulary (never substring tests)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from cytodask.cancer.api.labels import belongs_to, common_labels, compartment_of
from cytodask.core.stats.fdr import fdr_bh
from cytodask.organ.api.inputs import activity_frame, check_columns, per_sample

#: Subtype → (common type counted, common types left out of it): CD4 T is conventional CD4 T (Treg apart).
INFILTRATION_SUBTYPES: dict[str, tuple[str, tuple[str, ...]]] = {
    "CD8 T": ("CD8 T", ()), "CD4 T": ("CD4 T", ("Treg",)), "Treg": ("Treg", ()), "NK": ("NK", ()),
    "B": ("B", ()), "Plasma": ("Plasma", ()), "Monocyte": ("Monocyte", ()), "Macrophage": ("Macrophage", ()),
    "DC": ("DC", ()), "Mast": ("Mast", ()), "Neutrophil": ("Neutrophil", ()),
}


def fraction_column(subtype: str) -> str:
    """Column of a subtype's fraction: ``fraction_CD8_T``."""
    return "fraction_" + subtype.replace(" ", "_")


def immune_infiltration(obs: pd.DataFrame, *, sample_col: str, cell_type_col: str, tissue_col: str | None = None,
                        tumor: str = "Tumor", cancer_type_col: str | None = None, counts_col: str | None = None,
                        cell_type_map: Mapping[str, str] | None = None, atlas: str | None = None) -> pd.DataFrame:
    """Per tumour sample: immune fraction, subtype fractions and the CD8:Treg ratio, weighted by cell counts.

    Parameters
    ----------
    obs
        One row per cell (the atlas obs), or per group with its cell count in
        ``counts_col`` (e.g. pseudobulk ``n_cells``).
    sample_col, cell_type_col
        obs columns of the sample and the cell-type label.
    tissue_col, tumor
        Only rows with ``tissue_col == tumor`` are used (all rows without
        ``tissue_col``).
    cancer_type_col
        Carried into the output as ``cancer_type``.
    cell_type_map, atlas
        Labels → common vocabulary (see :func:`~cytodask.cancer.api.labels.common_labels`):
        exact matches, so ``"T"`` never matches "fibroblast"; the immune
        compartment and the subtypes come from the vocabulary tree.

    Returns
    -------
    DataFrame
        ``sample, cancer_type, n_cells, n_immune, n_unmapped, immune_fraction``
        (immune cells / all cells), ``fraction_<subtype>`` for CD8 T, CD4 T
        (conventional: Treg apart), Treg, NK, B, Plasma, Monocyte, Macrophage,
        DC, Mast, Neutrophil (each / all cells; descendants included, e.g.
        CD14 Monocyte in Monocyte), ``cd8_treg_ratio`` (NaN with
        ``reason = "no Treg"`` when a sample has none). Unmapped labels count
        in ``n_cells`` but in no compartment; they are listed in
        ``attrs["unmapped"]``.
    """
    where = "cancer.immune_infiltration"
    cols = [sample_col, cell_type_col] + [c for c in (tissue_col, cancer_type_col, counts_col) if c]
    check_columns(obs, cols, where)
    if tissue_col:
        levels = sorted(obs[tissue_col].astype(str).unique())
        if tumor not in levels:
            raise ValueError(f"{where}: tissue label {tumor!r} is not in column {tissue_col!r} (levels: {levels}); "
                             "pass tumor= with one of them")
        obs = obs[obs[tissue_col].astype(str) == tumor]
    labels = obs[cell_type_col].astype(str)
    weight = obs[counts_col].to_numpy(dtype=float) if counts_col else np.ones(len(obs))
    counts = pd.Series(weight, index=obs.index).groupby([obs[sample_col].astype(str), labels]).sum().unstack(
        fill_value=0.0)
    common = common_labels(counts.columns, cell_type_map=cell_type_map, atlas=atlas, where=where)
    total = counts.sum(axis=1)
    out = pd.DataFrame({"sample": counts.index.astype(str)})
    if cancer_type_col:
        ctype = obs.groupby(obs[sample_col].astype(str))[cancer_type_col].agg(lambda s: "/".join(
            sorted(set(s.astype(str)))))
        out["cancer_type"] = ctype.reindex(counts.index).to_numpy()
    else:
        out["cancer_type"] = ""
    immune = (compartment_of(common) == "immune").reindex(counts.columns).to_numpy(dtype=bool)
    unmapped = common.isna().reindex(counts.columns).to_numpy(dtype=bool)
    out["n_cells"] = total.to_numpy()
    out["n_immune"] = counts.loc[:, immune].sum(axis=1).to_numpy()
    out["n_unmapped"] = counts.loc[:, unmapped].sum(axis=1).to_numpy()
    out["immune_fraction"] = out["n_immune"] / out["n_cells"]
    for name, (keep, drop) in INFILTRATION_SUBTYPES.items():
        member = belongs_to(common, keep)
        for d in drop:
            member &= ~belongs_to(common, d)
        cols_in = member.reindex(counts.columns).to_numpy(dtype=bool)
        out[fraction_column(name)] = counts.loc[:, cols_in].sum(axis=1).to_numpy() / out["n_cells"].to_numpy()
    cd8, treg = out[fraction_column("CD8 T")], out[fraction_column("Treg")]
    with np.errstate(divide="ignore", invalid="ignore"):
        out["cd8_treg_ratio"] = np.where(treg > 0, cd8 / treg, np.nan)
    out["reason"] = np.where(treg > 0, "", "no Treg")
    out.attrs["unmapped"] = common.attrs["unmapped"]
    return out


def infiltration_summary(infiltration: pd.DataFrame) -> pd.DataFrame:
    """Per cancer type: number of samples, then ``<column>_mean, _sd, _median`` of every fraction and of the
    CD8:Treg ratio (immune fraction first)."""
    cols = ["immune_fraction", *[fraction_column(s) for s in INFILTRATION_SUBTYPES], "cd8_treg_ratio"]
    g = infiltration.groupby("cancer_type", sort=True)[cols]
    stats = {"mean": g.mean(), "sd": g.std(ddof=1), "median": g.median()}
    out = pd.DataFrame({f"{c}_{stat}": stats[stat][c] for c in cols for stat in stats})
    out.insert(0, "n_samples", g.size())
    return out.reset_index()


def infiltration_correlation(activity: Any, infiltration: pd.DataFrame, *, sample_col: str,
                             cell_type_col: str | None = None, min_n: int = 5) -> pd.DataFrame:
    """Spearman correlation of each signature's sample activity with the immune fraction, BH.

    Rows of ``activity`` are averaged per sample (× cell type when
    ``cell_type_col`` is given: one test per cell type, cell types never
    pooled); samples are matched to ``infiltration["sample"]``.

    Returns ``[cell_type,] signature, rho, pvalue, n, qvalue, reason`` (rho
    and p equal ``scipy.stats.spearmanr``; BH over every row).
    """
    from cytodask.correlation import spearman

    strata = [cell_type_col] if cell_type_col else []
    values, obs = activity_frame(activity, [sample_col, *strata], where="cancer.infiltration_correlation")
    vals, meta = per_sample(values, obs, sample_col, strata, where="cancer.infiltration_correlation")
    immune = infiltration.set_index("sample")["immune_fraction"]
    parts = []
    groups = meta.groupby(strata, sort=True).indices if strata else {"": np.arange(len(meta))}
    for key, rows in groups.items():
        sub, m = vals.iloc[rows], meta.iloc[rows]
        frac = immune.reindex(m[sample_col].to_numpy()).to_numpy(dtype=float)
        a = pd.DataFrame(sub.to_numpy().T, index=sub.columns, columns=m[sample_col].to_numpy())
        b = pd.DataFrame(frac[None, :], index=["immune_fraction"], columns=a.columns)
        res = spearman(a, b, min_n=min_n).to_frame().rename(columns={"feature_a": "signature"})
        res = res.drop(columns="feature_b")
        if strata:
            res.insert(0, cell_type_col, key[0] if isinstance(key, tuple) else key)
        parts.append(res)
    out = pd.concat(parts, ignore_index=True)
    out.insert(out.columns.get_loc("reason"), "qvalue", fdr_bh(out["pvalue"].to_numpy(dtype=float)))
    out.attrs["fdr_family"] = "Benjamini-Hochberg over every signature" + (" x cell type" if strata else "")
    return out
