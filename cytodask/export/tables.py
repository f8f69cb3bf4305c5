"""Export tables with documented schemas.

``activity_by_cell_type``: cell_type, signature, signature_type, mean_activity, n_samples, n_cells
``differential``: signature, group1, group2, activity_diff, pvalue, qvalue, neg_log10_pval, n_g1, n_g2 (+ strata)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

ACTIVITY_COLUMNS = ["cell_type", "signature", "signature_type", "mean_activity", "n_samples", "n_cells"]
DIFFERENTIAL_COLUMNS = ["signature", "group1", "group2", "activity_diff", "pvalue", "qvalue", "neg_log10_pval",
                        "n_g1", "n_g2"]


def activity_by_cell_type(obs: pd.DataFrame, signatures: pd.Index, x: Any, cell_type: str, signature_type: str,
                          *, chunk: int = 65_536) -> pd.DataFrame:
    """Mean activity z-score per cell type and signature, streamed over row chunks of ``x``.

    ``x`` is samples × signatures and sliceable by rows (a Zarr array or a NumPy
    array), so single-cell activity of any size is summarised in bounded memory.
    ``n_samples`` counts the (non-empty) samples averaged; ``n_cells`` sums their
    cells (1 per row for single-cell input without ``n_cells``).
    """
    if cell_type not in obs.columns:
        raise ValueError(f"activity samples have no column {cell_type!r}; available: {list(obs.columns)}")
    keep = ~obs["empty"].to_numpy(dtype=bool) if "empty" in obs else np.ones(len(obs), dtype=bool)
    codes, labels = pd.factorize(obs[cell_type].astype(str), sort=True)
    sums = np.zeros((len(labels), len(signatures)))
    for a in range(0, len(obs), chunk):
        b = min(len(obs), a + chunk)
        rows = keep[a:b]
        np.add.at(sums, codes[a:b][rows], np.asarray(x[a:b], dtype=np.float64)[rows])
    n_samples = np.bincount(codes[keep], minlength=len(labels))
    cells = obs["n_cells"].to_numpy() if "n_cells" in obs else np.ones(len(obs), dtype=np.int64)
    n_cells = np.bincount(codes[keep], weights=cells[keep], minlength=len(labels))
    present = n_samples > 0
    means = pd.DataFrame(sums[present] / n_samples[present, None], index=labels[present], columns=signatures)
    n_samples = pd.Series(n_samples[present], index=labels[present])
    n_cells = pd.Series(n_cells[present], index=labels[present])
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
