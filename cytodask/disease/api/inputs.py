"""Shared input handling of the disease family: activity to one value per sample × cell type, labels.

Every analysis takes activity as an AnnData (obs = pseudobulk groups or samples
with their metadata, var = signatures, X = z; the ``empty`` rows of a
pseudobulk are left out) or as a samples × signatures DataFrame with its
``obs`` table. Rules of ``ANALYSES.md`` §1: the unit of a test is the sample;
rows sharing a sample and a cell type (e.g. single cells) are averaged into one
value first, never tested as replicates.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import anndata
import numpy as np
import pandas as pd

HEALTHY = ("healthy", "normal", "control")


def activity_frame(activity: Any, obs: pd.DataFrame | None = None, *,
                   layer: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Activity as ``(values samples × signatures, obs)`` with the same index (empty groups left out)."""
    if isinstance(activity, anndata.AnnData):
        if obs is not None:
            raise TypeError("an AnnData carries its own obs; pass obs= only with a DataFrame of activity")
        x = activity.X if layer in (None, "X") else activity.layers[layer]
        x = x.toarray() if hasattr(x, "toarray") else np.asarray(x)
        values = pd.DataFrame(np.asarray(x, dtype=np.float64), index=activity.obs_names.astype(str),
                              columns=activity.var_names.astype(str))
        obs = activity.obs.copy()
        obs.index = values.index
    elif isinstance(activity, pd.DataFrame):
        if obs is None:
            raise TypeError("activity is a DataFrame (samples × signatures): pass its metadata as obs= "
                            "(indexed like activity), or pass an AnnData")
        missing = activity.index.difference(obs.index)
        if len(missing):
            raise ValueError(f"{len(missing)} rows of activity are not in obs.index (e.g. {list(missing[:3])}); "
                             "index obs like activity")
        values, obs = activity.astype(np.float64), obs.loc[activity.index].copy()
    else:
        raise TypeError(f"activity must be an AnnData or a samples × signatures DataFrame, not "
                        f"{type(activity).__name__}")
    for flag in ("empty", "is_empty"):  # pseudobulk groups without counts (stage output / ActivityResult)
        if flag in obs.columns:
            keep = ~obs[flag].to_numpy(dtype=bool)
            values, obs = values[keep], obs[keep]
    return values, obs


def check_columns(obs: pd.DataFrame, columns: Sequence[str | None], what: str) -> None:
    """A ValueError naming the missing obs columns, the analysis and the available columns."""
    missing = [c for c in columns if c is not None and c not in obs.columns]
    if missing:
        raise ValueError(f"{what}: obs has no column(s) {missing}; available: {list(obs.columns)} "
                         "(carry per-sample columns through the pseudobulk stage with carry=)")


def healthy_mask(labels: pd.Series, healthy: Sequence[str] | str) -> np.ndarray:
    """True where a label is one of ``healthy``, compared case-insensitively after stripping blanks."""
    wanted = {str(h).strip().lower() for h in ([healthy] if isinstance(healthy, str) else healthy)}
    return labels.astype(str).str.strip().str.lower().isin(wanted).to_numpy() & labels.notna().to_numpy()


def per_sample(values: pd.DataFrame, obs: pd.DataFrame, keys: Sequence[str],
               carry: Sequence[str | None] = ()) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per combination of ``keys`` (e.g. sample × cell type): values averaged, ``carry`` kept.

    ``n_cells`` is summed when obs has it. A carried column that varies within a
    combination is an error (it would not describe the sample).
    """
    keys = list(keys)
    carry = [c for c in dict.fromkeys(carry) if c is not None and c not in keys]
    ok = obs[keys].notna().all(axis=1).to_numpy()
    values, obs = values[ok], obs[ok]
    grouped = obs[keys].astype(str)
    codes = pd.MultiIndex.from_frame(grouped)
    if codes.is_unique:
        out_obs = obs[keys + carry].copy()
        out_obs[keys] = grouped
        if "n_cells" in obs.columns:
            out_obs["n_cells"] = obs["n_cells"].to_numpy(dtype=np.int64)
        return values, out_obs
    group = pd.Series(np.arange(len(obs))).groupby([grouped[k].to_numpy() for k in keys], sort=False).ngroup()
    group = group.to_numpy()
    varying = [c for c in carry if (obs[c].groupby(group).nunique(dropna=False) > 1).any()]
    if varying:
        raise ValueError(f"obs column(s) {varying} vary within one {' × '.join(keys)}; they must be per-sample "
                         "(one value per sample)")
    means = values.groupby(group, sort=True).mean()
    first = np.unique(group, return_index=True)[1]
    out_obs = obs.iloc[first][keys + carry].copy()
    out_obs[keys] = grouped.iloc[first]
    cells = obs["n_cells"].to_numpy(dtype=np.int64) if "n_cells" in obs.columns else np.ones(len(obs), np.int64)
    out_obs["n_cells"] = np.bincount(group, weights=cells).astype(np.int64)
    names = pd.Index(["|".join(map(str, k)) for k in out_obs[keys].itertuples(index=False)])
    out_obs.index, means.index = names, names
    return means, out_obs
