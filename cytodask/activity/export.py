"""The activity stage's export table: mean activity per cell type and signature.

Schema of ``activity_by_cell_type``: cell_type, signature, signature_type,
mean_activity, n_samples, n_cells.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import zarr

from cytodask.core.stage import ExportOptions

ACTIVITY_COLUMNS = ["cell_type", "signature", "signature_type", "mean_activity", "n_samples", "n_cells"]
ALL_CELLS = "all"  # the cell_type of whole-sample rows (a pseudobulk of every cell of a sample)


def activity_by_cell_type(obs: pd.DataFrame, signatures: pd.Index, x: Any, cell_type: str | None,
                          signature_type: str, *, chunk: int = 65_536) -> pd.DataFrame:
    """Mean activity z-score per cell type and signature, streamed over row chunks of ``x``.

    ``x`` is samples × signatures and sliceable by rows (a Zarr array or a NumPy
    array), so single-cell activity of any size is summarised in bounded memory.
    ``n_samples`` counts the (non-empty) samples averaged; ``n_cells`` sums their
    cells (1 per row for single-cell input without ``n_cells``). ``cell_type=None``: the rows are whole
    samples, one group whose cell_type is :data:`ALL_CELLS`.
    """
    if cell_type is None:
        obs = obs.assign(**{"cell_type": ALL_CELLS})
        cell_type = "cell_type"
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


def read_activity_by_cell_type(path: Path, options: ExportOptions, *, cell_type: str | None,
                               signature_type: str) -> pd.DataFrame:
    """``activity_by_cell_type`` of the activity stage output at ``path`` (X streamed by row chunks)."""
    import anndata

    column = cell_type if options.cell_type is None else options.cell_type
    if column is False:  # the export's cell_type = false: rows are whole samples (issue 14.10)
        column = None
    elif column is None:
        raise ValueError(f"{path}: the activity samples are not grouped by a cell-type column; "
                         f"give the export stage cell_type = '<obs column>'")
    src = zarr.open_group(str(path), mode="r")
    obs = anndata.io.read_elem(src["obs"])
    signatures = anndata.io.read_elem(src["var"]).index
    return activity_by_cell_type(obs, signatures, src["X"], column,  # type: ignore[arg-type]
                                 options.signature_type or signature_type)


def heatmap_view(table: pd.DataFrame) -> dict[str, Any]:
    """``activity_heatmap.json``: cell types × signatures matrix of mean activity (4 decimals)."""
    heat = table.pivot(index="cell_type", columns="signature", values="mean_activity")
    types = table["signature_type"].unique().tolist()
    return {"signature_type": types[0] if len(types) == 1 else types, "cell_types": heat.index.tolist(),
            "signatures": heat.columns.tolist(), "mean_activity": heat.round(4).to_numpy().tolist()}
