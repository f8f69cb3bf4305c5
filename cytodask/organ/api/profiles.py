"""Organ activity profiles: mean and sd over samples, top and bottom signatures, profile correlation."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from cytodask.organ.api.inputs import activity_frame, constant_within, per_sample
from cytodask.organ.kernels import group_moments_block

PROFILE_COLUMNS = ("organ", "signature", "mean", "sd", "n_samples", "rank", "rank_from_bottom")


def organ_profiles(activity: Any, *, organ_col: str, sample_col: str) -> pd.DataFrame:
    """Per organ × signature: mean and sd of activity over samples, and its rank within the organ.

    Parameters
    ----------
    activity
        Activity AnnData or ``(values, obs)`` DataFrames; the rows of one
        sample are averaged into one value (the sample is the unit).
    organ_col, sample_col
        obs columns of the organ and the sample.

    Returns
    -------
    DataFrame
        ``organ, signature, mean, sd (ddof 1), n_samples, rank (1 = highest
        mean in the organ), rank_from_bottom (1 = lowest)``; the top and bottom
        signatures of an organ are its rows with the smallest ``rank`` and
        ``rank_from_bottom``.
    """
    values, obs = activity_frame(activity, [organ_col, sample_col], where="organ.organ_profiles")
    vals, meta = per_sample(values, obs, sample_col, [organ_col], where="organ.organ_profiles")
    constant_within(meta, sample_col, organ_col, where="organ.organ_profiles")
    organs = np.array(sorted(meta[organ_col].unique()), dtype=object)
    codes = np.searchsorted(organs, meta[organ_col].to_numpy())
    n, mean, var = group_moments_block(vals.to_numpy(dtype=np.float64).T, codes, len(organs), np)
    table = pd.DataFrame({
        "organ": np.tile(organs, vals.shape[1]), "signature": np.repeat(vals.columns.to_numpy(dtype=object),
                                                                        len(organs)),
        "mean": mean.ravel(), "sd": np.sqrt(var).ravel(), "n_samples": n.ravel().astype(np.int64)})
    by = table.groupby("organ", sort=False)["mean"]
    table["rank"] = by.rank(ascending=False, method="first").astype(np.int64)
    table["rank_from_bottom"] = by.rank(ascending=True, method="first").astype(np.int64)
    return table.sort_values(["organ", "rank"], kind="stable").reset_index(drop=True)[list(PROFILE_COLUMNS)]


def profile_correlation(profiles: pd.DataFrame) -> pd.DataFrame:
    """Spearman correlation matrix (organs × organs) of organ mean profiles over the signatures.

    ``profiles`` is the table of :func:`organ_profiles`; each entry equals
    ``scipy.stats.spearmanr`` of two organs' mean vectors.
    """
    wide = profiles.pivot(index="signature", columns="organ", values="mean")
    return wide.rank(method="average").corr(method="pearson")
