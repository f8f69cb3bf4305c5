"""The activity stage's part of the run report: mean activity per cell type as a heatmap."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from cytodask.core.report import ReportSection, figure_png, option

TOP_SIGNATURES = 20


def cell_type_means(adata: Any, cell_type: str, top: int) -> pd.DataFrame:
    """Mean activity z-score per cell type of the ``top`` most variable signatures.

    Empty pseudobulk samples (obs ``empty``) are left out. Signatures are
    ranked by the variance across cell types of their cell-type means.

    Parameters
    ----------
    adata
        Activity AnnData: obs = samples, var = signatures, ``X`` = z-scores.
    cell_type
        obs column of the cell types.
    top
        Number of signatures kept.

    Returns
    -------
    pandas.DataFrame
        Cell types (rows, sorted) × signatures (columns, most variable first).
    """
    if cell_type not in adata.obs.columns:
        raise ValueError(f"obs column {cell_type!r} not in the activity samples; "
                         f"pass cell_type= one of {list(adata.obs.columns)}")
    frame = pd.DataFrame(np.asarray(adata.X, dtype=float), index=adata.obs_names, columns=adata.var_names)
    labels = adata.obs[cell_type].astype(str).to_numpy()
    if "empty" in adata.obs.columns:
        keep = ~adata.obs["empty"].to_numpy(dtype=bool)
        frame, labels = frame[keep], labels[keep]
    if frame.empty:
        raise ValueError("every activity sample is empty")
    means = frame.groupby(labels).mean().sort_index()
    order = means.var(axis=0).fillna(0.0).sort_values(ascending=False, kind="stable").index[:top]
    return means[order]


def heatmap_png(means: pd.DataFrame) -> bytes:
    """Heatmap of cell-type means, diverging colormap centred at 0, as PNG bytes."""
    n_rows, n_cols = means.shape
    fig = Figure(figsize=(max(5.0, 2.5 + 0.38 * n_cols), max(2.8, 1.6 + 0.42 * n_rows)), layout="constrained")
    ax = fig.add_subplot()
    values = means.to_numpy(dtype=float)
    vmax = float(np.nanmax(np.abs(values))) or 1.0
    im = ax.imshow(values, cmap="RdBu_r", vmin=-vmax, vmax=vmax, aspect="auto", interpolation="nearest")
    ax.set_xticks(range(n_cols), [str(c) for c in means.columns], rotation=90)
    ax.set_yticks(range(n_rows), [str(r) for r in means.index])
    ax.set_xlabel("signature")
    ax.set_ylabel("cell type")
    ax.set_title(f"Mean activity z-score, top {n_cols} signatures by variance across cell types")
    fig.colorbar(im, ax=ax, label="mean activity (z)", shrink=0.9)
    return figure_png(fig)


def heatmap_section(data: Path, cell_type: str | None, options: Mapping[str, Any]) -> list[ReportSection]:
    """The report's heatmap of an activity stage's output at ``data``.

    ``options["cell_type"]`` overrides ``cell_type`` (the stage's first grouping
    column); ``options["top"]`` is the number of signatures (default 20).
    """
    import anndata

    cell_type = option(options, "cell_type", cell_type)
    if cell_type is None:
        raise ValueError("the activity samples have no cell-type column (the stage is not grouped by one); "
                         "pass cell_type= to the report")
    top = int(option(options, "top", TOP_SIGNATURES))
    means = cell_type_means(anndata.read_zarr(data), cell_type, top)
    rows, cols = [str(r) for r in means.index], [str(c) for c in means.columns]
    alt = (f"Heatmap of mean activity z-scores: {len(rows)} cell types ({', '.join(rows)}) × "
           f"top {len(cols)} signatures by variance ({', '.join(cols)})")
    caption = (f"Mean activity z-score per {cell_type} over non-empty samples; the {len(cols)} signatures "
               f"with the largest variance across cell types (most variable first: {', '.join(cols[:5])}). "
               f"Red: higher activity, blue: lower; colour scale centred at 0.")
    values = means.map(lambda v: f"{v:.2f}")
    values.insert(0, "cell type", means.index.astype(str))
    return [ReportSection(title="Cytokine activity by cell type", figure=heatmap_png(means), alt=alt,
                          caption=caption, table=values.reset_index(drop=True), ident="heatmap")]
