"""Conserved signatures: concordance of cell-type rankings across atlases and sign-consistent effects.

Nothing here rests on an atlas-wide mean activity (≈ 0 by construction, genes being centred over all
columns): rankings compare cell types within an atlas, effects come from contrasts within an atlas.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from cytodask.core.stats.fdr import fdr_bh
from cytodask.cross_atlas import kernels
from cytodask.cross_atlas.profiles import cell_type_means, shared_matrix

W_COLUMNS = ["signature", "W", "chi2", "pvalue", "qvalue", "n_atlases", "n_types", "top_type", "reason"]


def kendall_w(matrix: np.ndarray | pd.DataFrame) -> tuple[float, float, float]:
    """Kendall's W of raters (rows) scoring items (columns), tie-corrected, with Friedman's χ² and its p.

    Each row is ranked (mid-ranks for ties); ``χ² = m (n − 1) W`` on ``n − 1`` degrees of freedom, which
    is ``scipy.stats.friedmanchisquare`` with its tie correction. Returns ``(W, chi2, pvalue)``.
    """
    x = np.asarray(matrix, dtype=float)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 2:
        raise ValueError(f"kendall_w needs ≥ 2 raters (rows) and ≥ 2 items (columns); got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("kendall_w: the matrix has missing values; keep the items every rater scored")
    ranks = np.apply_along_axis(stats.rankdata, 1, x)
    tie_sum = 0.0
    for row in x:
        _, counts = np.unique(row, return_counts=True)
        tie_sum += float((counts.astype(float) ** 3 - counts).sum())
    m, n = x.shape
    w = kernels.kendall_w(ranks, tie_sum)
    chi2 = m * (n - 1) * w
    return w, chi2, float(stats.chi2.sf(chi2, n - 1)) if np.isfinite(chi2) else float("nan")


def conserved_signatures(data: pd.DataFrame, *, min_types: int = 3, min_samples: int = 1) -> pd.DataFrame:
    """Per signature, Kendall's W of the atlases' rankings of the cell types they share.

    Parameters
    ----------
    data
        Long activities (``atlas, sample, common, signature, value``; :mod:`~cytodask.cross_atlas.profiles`).
    min_types
        Fewest shared common types for a W (fewer: NaN with a reason).
    min_samples
        Fewest samples behind a cell-type mean.

    Returns
    -------
    DataFrame
        ``signature, W, chi2, pvalue, qvalue, n_atlases, n_types, top_type, reason``: W near 1 when every
        atlas orders the shared cell types alike; ``top_type`` has the highest rank sum; BH ``qvalue``
        over all signatures with a W (``attrs["fdr_family"]``).
    """
    means = cell_type_means(data, min_samples=min_samples)
    rows = []
    for sig in sorted(means["signature"].unique()):
        mat = shared_matrix(means, sig)
        row = {"signature": sig, "W": np.nan, "chi2": np.nan, "pvalue": np.nan, "n_atlases": mat.shape[0],
               "n_types": mat.shape[1], "top_type": None, "reason": ""}
        if mat.shape[0] < 2:
            row["reason"] = f"in {mat.shape[0]} atlas only"
        elif mat.shape[1] < min_types:
            row["reason"] = f"{mat.shape[1]} shared cell types (< {min_types})"
        else:
            row["W"], row["chi2"], row["pvalue"] = kendall_w(mat.to_numpy())
            rank_sum = mat.rank(axis=1).sum(axis=0)
            row["top_type"] = str(rank_sum.idxmax())
        rows.append(row)
    out = pd.DataFrame(rows, columns=[c for c in W_COLUMNS if c != "qvalue"])
    out.insert(4, "qvalue", fdr_bh(out["pvalue"].to_numpy(float)) if len(out) else [])
    if len(out) and out["W"].isna().all():
        shared = int(out["n_types"].max())
        raise ValueError(f"no signature has {min_types} cell types shared by the atlases (at most {shared}); "
                         f"check the cell-type mapping (cytodask.cross_atlas.map_cell_types) or lower min_types")
    out.attrs["fdr_family"] = ["signature"]
    return out


def sign_consistency(effects: pd.DataFrame, *, effect_col: str, q_col: str, group_cols: Sequence[str],
                     atlas_col: str = "atlas", alpha: float = 0.05, min_atlases: int = 2) -> pd.DataFrame:
    """Whether the same contrast is significant with one sign in several atlases.

    Per group (e.g. signature × cell type × contrast): ``n_atlases`` with the contrast, ``n_sig`` with
    ``q < alpha``, ``n_up`` / ``n_down`` among those, ``consistent`` = ``n_sig ≥ min_atlases`` and all of
    one sign, ``direction`` (``up`` / ``down`` / ``mixed`` / ``""``).
    """
    group_cols = list(group_cols)
    missing = [c for c in [effect_col, q_col, atlas_col, *group_cols] if c not in effects.columns]
    if missing:
        raise ValueError(f"sign_consistency: column(s) {missing} are not in the effects; it has "
                         f"{list(effects.columns)}")
    sig = effects[q_col].to_numpy(float) < alpha
    d = effects.assign(_up=sig & (effects[effect_col] > 0), _down=sig & (effects[effect_col] < 0), _sig=sig)
    g = d.groupby(group_cols, sort=True, observed=True)
    out = pd.DataFrame({"n_atlases": g[atlas_col].nunique(), "n_sig": g["_sig"].sum(), "n_up": g["_up"].sum(),
                        "n_down": g["_down"].sum()}).reset_index()
    one_sign = (out["n_up"] == 0) | (out["n_down"] == 0)
    out["consistent"] = (out["n_sig"] >= min_atlases) & one_sign
    out["direction"] = np.select([out["n_sig"] == 0, ~one_sign, out["n_up"] > 0], ["", "mixed", "up"], "down")
    return out
