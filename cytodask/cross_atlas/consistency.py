"""Consistency of cell-type profiles between atlases (ANALYSES.md §6).

For each signature and each pair of atlases, the cell-type mean profiles over their shared common
types (≥ ``min_types``) are correlated (Pearson r and Spearman ρ, with p-values as scipy gives them).
Per signature the summary is the mean r over pairs, Kendall's W over the types all atlases share, and

    score = (max(mean r, 0) + W) / 2  ∈ [0, 1]

(W when no pair has enough types is NaN, and so is the score): 1 when every atlas orders and spaces the
cell types alike, near 0 when they disagree; a negative mean r counts as no agreement.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats

from cytodask.cross_atlas.conserved import conserved_signatures
from cytodask.cross_atlas.profiles import cell_type_means

PAIR_COLUMNS = ["signature", "atlas_a", "atlas_b", "n_types", "r", "r_pvalue", "rho", "rho_pvalue"]
CONSISTENCY_COLUMNS = ["signature", "n_pairs", "mean_r", "W", "score", "reason"]


def pairwise_correlations(data: pd.DataFrame, *, min_types: int = 3, min_samples: int = 1) -> pd.DataFrame:
    """Per signature and atlas pair: Pearson and Spearman correlation of the shared cell-type means."""
    means = cell_type_means(data, min_samples=min_samples)
    rows = []
    for sig, g in means.groupby("signature", sort=True):
        wide = g.pivot(index="common", columns="atlas", values="mean")
        for a, b in combinations(sorted(wide.columns), 2):
            pair = wide[[a, b]].dropna()
            row = {"signature": sig, "atlas_a": a, "atlas_b": b, "n_types": len(pair)}
            x, y = pair[a].to_numpy(), pair[b].to_numpy()
            if len(pair) >= min_types and np.ptp(x) > 0 and np.ptp(y) > 0:
                row["r"], row["r_pvalue"] = (float(v) for v in stats.pearsonr(x, y))
                row["rho"], row["rho_pvalue"] = (float(v) for v in stats.spearmanr(x, y))
            rows.append(row)
    return pd.DataFrame(rows, columns=PAIR_COLUMNS)


def consistency(data: pd.DataFrame, *, min_types: int = 3, min_samples: int = 1) -> pd.DataFrame:
    """Per signature: pairs with ≥ ``min_types`` shared types, mean Pearson r, Kendall's W and the score."""
    pairs = pairwise_correlations(data, min_types=min_types, min_samples=min_samples)
    w = conserved_signatures(data, min_types=min_types, min_samples=min_samples).set_index("signature")
    rows = []
    for sig in w.index:
        p = pairs[(pairs["signature"] == sig) & pairs["r"].notna()]
        mean_r = float(p["r"].mean()) if len(p) else np.nan
        score = (max(mean_r, 0.0) + w.at[sig, "W"]) / 2 if len(p) else np.nan
        reason = "" if len(p) else f"no atlas pair shares {min_types} cell types with varying means"
        rows.append({"signature": sig, "n_pairs": len(p), "mean_r": mean_r, "W": w.at[sig, "W"],
                     "score": score, "reason": reason or w.at[sig, "reason"]})
    return pd.DataFrame(rows, columns=CONSISTENCY_COLUMNS)
