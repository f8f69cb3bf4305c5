"""Specificity of each signature's activity to one group (organ, cancer type) over samples."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from cytodask.core.stats.fdr import fdr_bh
from cytodask.organ.api.inputs import activity_frame, constant_within, per_sample
from cytodask.organ.kernels import group_moments_block, kruskal_block, specificity_block

SPECIFICITY_COLUMNS = ("signature", "group", "mean", "sd", "n_samples", "z_specificity", "gap", "statistic",
                       "pvalue", "qvalue", "reason")


def group_specificity(values: pd.DataFrame, obs: pd.DataFrame, *, group_col: str, sample_col: str,
                      strata: Sequence[str] = (), min_samples: int = 2, where: str = "specificity",
                      ) -> pd.DataFrame:
    """Per stratum × signature × group: mean over samples, z-specificity, gap, Kruskal–Wallis p and BH q.

    See :func:`specificity`; ``group`` names the group column's value. Groups
    with fewer than ``min_samples`` samples keep their mean and sd but get NaN
    statistics with reason ``n_samples<min_samples`` and are left out of the
    between-group statistics of their stratum.
    """
    strata = list(strata)
    vals, meta = per_sample(values, obs, sample_col, [group_col, *strata], where=where)
    constant_within(meta, sample_col, group_col, where=where)
    parts = []
    stratum_keys = meta.groupby(strata, sort=True).indices if strata else {(): np.arange(len(meta))}
    for key, rows in stratum_keys.items():
        sub, m = vals.iloc[rows], meta.iloc[rows]
        groups = np.array(sorted(m[group_col].unique()), dtype=object)
        codes = np.searchsorted(groups, m[group_col].to_numpy()).astype(np.int64)
        x = sub.to_numpy(dtype=np.float64).T  # signatures × samples
        n, mean, var = group_moments_block(x, codes, len(groups), np)
        small = n[0] < min_samples
        used = np.where(small[codes], -1, codes)
        kw = kruskal_block(x, used, len(groups), np)
        with np.errstate(divide="ignore", invalid="ignore"):
            dof = n[:, ~small].sum(axis=1) - (~small).sum()
            pooled = np.sqrt(np.nansum(np.where(small, 0.0, (n - 1.0) * var), axis=1) / dof)
        z, gap = specificity_block(np.where(small[None, :], np.nan, mean), pooled, np)
        n_sig, n_grp = x.shape[0], len(groups)
        reason = np.where(small, f"n_samples<{min_samples}", "")
        if (~small).sum() < 2:
            reason = np.where(small, reason, f"fewer than 2 {group_col} values with >= {min_samples} samples")
        part = pd.DataFrame({
            "signature": np.repeat(sub.columns.to_numpy(dtype=object), n_grp),
            "group": np.tile(groups, n_sig), "mean": mean.ravel(), "sd": np.sqrt(var).ravel(),
            "n_samples": n.ravel().astype(np.int64), "z_specificity": z.ravel(), "gap": gap.ravel(),
            "statistic": np.repeat(kw[:, 0], n_grp), "pvalue": np.repeat(kw[:, 1], n_grp),
            "reason": np.tile(reason, n_sig)})
        part.loc[part["reason"] != "", ["z_specificity", "gap", "statistic", "pvalue"]] = np.nan
        for c, v in zip(strata, key if isinstance(key, tuple) else (key,), strict=True):
            part.insert(0, c, v)
        parts.append(part)
    out = pd.concat(parts, ignore_index=True)
    # one Kruskal-Wallis test per stratum x signature: BH over those tests, copied to their group rows
    first = ~out.duplicated([*strata, "signature"])
    q = fdr_bh(out.loc[first, "pvalue"].to_numpy(dtype=float))
    keyed = out.loc[first, [*strata, "signature"]].assign(qvalue=q)
    out = out.merge(keyed, on=[*strata, "signature"], how="left", sort=False)
    out.loc[out["pvalue"].isna(), "qvalue"] = np.nan
    out.attrs["fdr_family"] = ("Benjamini-Hochberg over every Kruskal-Wallis test (one per "
                               + " x ".join([*strata, "signature"]) + f", across {group_col})")
    return out[[*strata, *SPECIFICITY_COLUMNS]]


def specificity(activity: Any, *, organ_col: str, sample_col: str, cell_type_col: str | None = None,
                min_samples: int = 2) -> pd.DataFrame:
    """Organ specificity of each signature, invariant to adding a constant to every activity.

    Parameters
    ----------
    activity
        Activity AnnData (rows = samples or sample × cell type pseudobulks,
        var = signatures) or a ``(values, obs)`` pair of DataFrames.
    organ_col, sample_col
        obs columns of the organ and of the sample (the unit: rows of one
        sample are averaged into one value; a sample lies in one organ).
    cell_type_col
        Optional: stratify by cell type (one value per sample per cell type;
        cell types are never pooled in one test).
    min_samples
        Organs with fewer samples get NaN statistics and a ``reason``.

    Returns
    -------
    DataFrame
        ``[cell_type_col,] signature, organ, mean, sd, n_samples,
        z_specificity, gap, statistic (H), pvalue, qvalue, reason``.

    Notes
    -----
    With ``m_g`` the mean over the samples of organ ``g``:
    ``z_specificity = (m_g − mean_h m_h) / sd_h m_h``;
    ``gap = (m_g − max_{h≠g} m_h) / s_pooled`` with the pooled within-organ
    sd ``s²_pooled = Σ_g (n_g − 1) s_g² / (N − k)``; ``pvalue`` is the
    Kruskal–Wallis test across organs over samples (``scipy.stats.kruskal``),
    ``qvalue`` its BH adjustment over every signature (× cell type). A
    constant added to every activity cancels in all of them.
    """
    strata = [cell_type_col] if cell_type_col else []
    values, obs = activity_frame(activity, [organ_col, sample_col, *strata], where="organ.specificity")
    out = group_specificity(values, obs, group_col=organ_col, sample_col=sample_col, strata=strata,
                            min_samples=min_samples, where="organ.specificity")
    return out.rename(columns={"group": "organ"})
