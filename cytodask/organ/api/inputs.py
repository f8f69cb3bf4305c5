"""Input handling shared by the organ and cancer functions: activity AnnData → samples × signatures."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import anndata
import numpy as np
import pandas as pd


def check_columns(obs: pd.DataFrame, columns: Sequence[str], where: str) -> None:
    """A ValueError naming the missing obs columns, where they were looked for and what exists."""
    missing = [c for c in columns if c not in obs.columns]
    if missing:
        raise ValueError(f"{where}: obs has no column(s) {missing}; available: {list(obs.columns)}. "
                         "Pass the column names of your atlas (or carry them through the pseudobulk stage).")


def activity_frame(activity: Any, columns: Sequence[str], *, where: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(values, obs)`` of an activity result: rows × signatures z-scores and their metadata.

    ``activity`` is an AnnData (obs = pseudobulk groups or samples, var =
    signatures, X = activity) or a ``(values, obs)`` pair of DataFrames. Rows
    flagged ``empty`` by the activity stage (no counts) are dropped; the
    ``columns`` must be in obs.
    """
    if isinstance(activity, anndata.AnnData):
        x = activity.X
        x = x.toarray() if hasattr(x, "toarray") else np.asarray(x)
        values = pd.DataFrame(np.asarray(x, dtype=np.float64), index=activity.obs_names.astype(str),
                              columns=activity.var_names.astype(str))
        obs = activity.obs.copy()
        obs.index = values.index
    elif isinstance(activity, tuple) and len(activity) == 2 and all(isinstance(a, pd.DataFrame) for a in activity):
        values, obs = activity[0].astype(np.float64), activity[1]
        if not values.index.equals(obs.index):
            raise ValueError(f"{where}: values and obs must have the same index (one row per sample or group)")
    else:
        raise TypeError(f"{where}: activity must be an AnnData (obs × signatures) or a (values, obs) pair of "
                        f"DataFrames; got {type(activity).__name__}")
    check_columns(obs, columns, where)
    if "empty" in obs.columns:
        keep = ~obs["empty"].to_numpy(dtype=bool)
        values, obs = values[keep], obs[keep]
    return values, obs


def per_sample(values: pd.DataFrame, obs: pd.DataFrame, sample_col: str, keys: Sequence[str],
               *, where: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per sample (× ``keys`` strata): the mean of the sample's rows.

    ``keys`` are columns that stratify the analysis (e.g. a cell type) or
    that must be constant within a sample (e.g. its organ); a sample with two
    values of such a column is an error. Rows with a missing key are dropped.
    """
    cols = [sample_col, *keys]
    frame = obs[cols].astype(str).where(obs[cols].notna())
    ok = frame.notna().all(axis=1).to_numpy()
    frame, vals = frame[ok], values[ok]
    grouped = vals.groupby([frame[c] for c in cols], sort=True, observed=True).mean()
    meta = grouped.index.to_frame(index=False)
    return grouped.reset_index(drop=True), meta


def constant_within(meta: pd.DataFrame, sample_col: str, column: str, *, where: str) -> None:
    """A ValueError when a sample has more than one value of ``column`` (e.g. two organs)."""
    n = meta.groupby(sample_col, observed=True)[column].nunique()
    bad = n[n > 1]
    if len(bad):
        raise ValueError(f"{where}: sample(s) {list(bad.index[:5])} have several values of {column!r}; "
                         f"one sample must belong to one {column}. Check sample_col={sample_col!r}.")
