"""Disease profiles: per disease × cell type × signature, mean, sd and median activity over samples."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from cytodask.core.backend import Backend, resolve_backend
from cytodask.core.xp import to_device, to_numpy
from cytodask.disease.api.inputs import HEALTHY, activity_frame, check_columns, healthy_mask, per_sample
from cytodask.disease.kernels import profile_block

PROFILE_COLUMNS = ("disease", "cell_type", "signature", "mean", "sd", "median", "n_samples", "n_cells")


def disease_profiles(activity: Any, *, disease_col: str, sample_col: str, cell_type_col: str,
                     healthy: Sequence[str] | str = HEALTHY, healthy_label: str = "healthy",
                     obs: pd.DataFrame | None = None, layer: str | None = None,
                     backend: Backend = "numpy") -> pd.DataFrame:
    """Mean, sd (ddof 1), median activity per disease × cell type × signature, samples as the unit.

    Parameters
    ----------
    activity, disease_col, sample_col, cell_type_col, obs, layer
        As :func:`~cytodask.disease.api.contrast.disease_vs_healthy`; rows
        sharing a sample and a cell type are averaged into one value first.
    healthy, healthy_label
        Healthy labels (case-insensitive) are reported under ``healthy_label``.

    Returns
    -------
    DataFrame
        :data:`PROFILE_COLUMNS`; ``n_samples`` counts the samples, ``n_cells``
        their cells (the obs column ``n_cells`` of a pseudobulk; the number of
        rows averaged otherwise). A group of one sample has sd NaN.
    """
    values, meta = activity_frame(activity, obs, layer=layer)
    check_columns(meta, [disease_col, sample_col, cell_type_col], "disease_profiles")
    values, meta = per_sample(values, meta, [sample_col, cell_type_col], [disease_col])
    meta = meta[meta[disease_col].notna()]
    values = values.loc[meta.index]
    label = meta[disease_col].astype(str).to_numpy().copy()
    label[healthy_mask(meta[disease_col], healthy)] = healthy_label
    cell_type = meta[cell_type_col].astype(str).to_numpy()
    cells = meta["n_cells"].to_numpy(dtype=np.int64) if "n_cells" in meta else np.ones(len(meta), np.int64)
    xp = resolve_backend(backend)
    mat = values.to_numpy(dtype=np.float64)
    frames = []
    for disease, ct in sorted(set(zip(label, cell_type, strict=True))):
        rows = (label == disease) & (cell_type == ct)
        out = np.asarray(to_numpy(profile_block(to_device(np.ascontiguousarray(mat[rows].T), xp), xp=xp)))
        frames.append(pd.DataFrame({"disease": disease, "cell_type": ct, "signature": values.columns.astype(str),
                                    "mean": out[:, 0], "sd": out[:, 1], "median": out[:, 2],
                                    "n_samples": out[:, 3].astype(np.int64),
                                    "n_cells": np.int64(cells[rows].sum())}))
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(PROFILE_COLUMNS))
    return table[list(PROFILE_COLUMNS)]
