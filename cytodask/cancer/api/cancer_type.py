"""Cancer-type specificity of activity: tumour samples only, the sample as the unit (organ §2 measures)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from cytodask.organ.api.inputs import activity_frame
from cytodask.organ.api.specificity import group_specificity


def cancer_type_specificity(activity: Any, *, cancer_type_col: str, sample_col: str, tissue_col: str | None = None,
                            tumor: str = "Tumor", cell_type_col: str | None = None,
                            min_samples: int = 2) -> pd.DataFrame:
    """Mean activity per cancer type over tumour samples, z-specificity, gap and Kruskal–Wallis q.

    Rows with ``tissue_col != tumor`` are left out; rows of one sample are
    averaged (× cell type when ``cell_type_col`` is given). A cancer type with
    fewer than ``min_samples`` samples keeps its mean but gets NaN
    statistics and ``reason = "n_samples<2"`` and is left out of the
    comparison. Measures as :func:`cytodask.organ.specificity`.

    Returns
    -------
    DataFrame
        ``[cell_type_col,] signature, cancer_type, mean, sd, n_samples,
        z_specificity, gap, statistic, pvalue, qvalue, reason``.
    """
    where = "cancer.cancer_type_specificity"
    strata = [cell_type_col] if cell_type_col else []
    cols = [cancer_type_col, sample_col, *strata] + ([tissue_col] if tissue_col else [])
    values, obs = activity_frame(activity, cols, where=where)
    if tissue_col:
        tissue = obs[tissue_col].astype(str)
        if tumor not in set(tissue):
            raise ValueError(f"{where}: tissue label {tumor!r} is not in column {tissue_col!r} "
                             f"(levels: {sorted(set(tissue))}); pass tumor= with one of them")
        keep = (tissue == tumor).to_numpy()
        values, obs = values[keep], obs[keep]
    out = group_specificity(values, obs, group_col=cancer_type_col, sample_col=sample_col, strata=strata,
                            min_samples=min_samples, where=where)
    return out.rename(columns={"group": "cancer_type"})
