"""Export tables with documented schemas.

``activity_by_cell_type``: cell_type, signature, signature_type, mean_activity, n_samples, n_cells
``differential``: signature, group1, group2, activity_diff, pvalue, qvalue, neg_log10_pval, n_g1, n_g2 (+ strata)
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd

ACTIVITY_COLUMNS = ["cell_type", "signature", "signature_type", "mean_activity", "n_samples", "n_cells"]
DIFFERENTIAL_COLUMNS = ["signature", "group1", "group2", "activity_diff", "pvalue", "qvalue", "neg_log10_pval",
                        "n_g1", "n_g2"]


def activity_by_cell_type(activity: ad.AnnData, cell_type: str, signature_type: str) -> pd.DataFrame:
    """Mean activity z-score per cell type and signature, over the pseudobulk samples.

    ``n_samples`` counts the (non-empty) samples averaged; ``n_cells`` sums their cells.
    """
    if cell_type not in activity.obs.columns:
        raise ValueError(f"activity samples have no column {cell_type!r}; available: {list(activity.obs.columns)}")
    obs = activity.obs
    keep = ~obs["empty"].to_numpy(dtype=bool) if "empty" in obs else np.ones(len(obs), dtype=bool)
    z = pd.DataFrame(np.asarray(activity.X)[keep], columns=activity.var_names)
    ct = obs[cell_type].astype(str).to_numpy()[keep]
    means = z.groupby(ct, sort=True).mean()
    n_samples = pd.Series(ct).value_counts()
    n_cells = (pd.Series(obs["n_cells"].to_numpy()[keep], index=range(keep.sum())).groupby(ct).sum()
               if "n_cells" in obs else pd.Series(0, index=means.index))
    long = means.stack().rename("mean_activity").reset_index()
    long.columns = ["cell_type", "signature", "mean_activity"]
    long["signature_type"] = signature_type
    long["n_samples"] = long["cell_type"].map(n_samples).astype(np.int64)
    long["n_cells"] = long["cell_type"].map(n_cells).astype(np.int64)
    return long[ACTIVITY_COLUMNS]


def differential_export(table: pd.DataFrame, strata: list[str]) -> pd.DataFrame:
    """The differential table in the export schema (``feature`` → ``signature``; strata kept)."""
    t = table.rename(columns={"feature": "signature"})
    missing = [c for c in DIFFERENTIAL_COLUMNS if c not in t.columns]
    if missing:
        raise ValueError(f"differential table lacks {missing}; it has {list(t.columns)}")
    return t[DIFFERENTIAL_COLUMNS + [s for s in strata if s in t.columns]]
