"""Cell-type composition per organ: count-weighted proportions, Shannon entropy, enrichment over samples."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cytodask.core.stats.fdr import fdr_bh
from cytodask.organ.api.inputs import check_columns

COMPOSITION_COLUMNS = ("organ", "cell_type", "n_cells", "proportion", "overall_proportion", "log2_enrichment",
                       "entropy", "n_samples", "mean_sample_proportion", "mean_other_proportion", "statistic",
                       "pvalue", "qvalue", "reason")


def composition(obs: pd.DataFrame, *, organ_col: str, sample_col: str, cell_type_col: str,
                min_samples: int = 3) -> pd.DataFrame:
    """Per organ × cell type: proportion of cells, entropy, enrichment vs all organs, and its test over samples.

    Parameters
    ----------
    obs
        One row per cell (the atlas obs; an AnnData's ``obs`` works).
    organ_col, sample_col, cell_type_col
        obs columns of the organ, the sample and the cell-type label (labels
        are compared as exact strings).
    min_samples
        Organs (or the rest) with fewer samples give NaN and a reason.

    Returns
    -------
    DataFrame
        ``organ, cell_type, n_cells, proportion`` (cells of the type / cells
        of the organ: count weighted), ``overall_proportion`` (over all
        organs), ``log2_enrichment = log2(proportion / overall_proportion)``,
        ``entropy`` (Shannon, natural log, of the organ's proportions; same
        on every row of an organ), ``n_samples``, ``mean_sample_proportion``
        (organ's samples) and ``mean_other_proportion`` (other organs'
        samples), ``statistic, pvalue`` of the two-sided Mann–Whitney U test of
        the per-sample proportions of the organ against the other organs'
        samples (``scipy.stats.mannwhitneyu``, asymptotic, continuity
        corrected), ``qvalue`` (BH over every row), ``reason``.
    """
    from cytodask.differential import wilcoxon

    obs = obs.obs if hasattr(obs, "obs") and not isinstance(obs, pd.DataFrame) else obs
    check_columns(obs, [organ_col, sample_col, cell_type_col], "organ.composition")
    cells = obs[[organ_col, sample_col, cell_type_col]].dropna().astype(str)
    per_organ = pd.crosstab(cells[organ_col], cells[cell_type_col])
    prop = per_organ.div(per_organ.sum(axis=1), axis=0)
    overall = per_organ.sum(axis=0) / per_organ.to_numpy().sum()
    with np.errstate(divide="ignore"):
        entropy = -(prop * np.log(prop.where(prop > 0, 1.0))).sum(axis=1)
        enrich = np.log2(prop / overall)
    samples = pd.crosstab([cells[sample_col], cells[organ_col]], cells[cell_type_col])
    sample_prop = samples.div(samples.sum(axis=1), axis=0)
    organ_of = sample_prop.index.get_level_values(1).to_numpy()
    rows = []
    for organ in per_organ.index:
        inside = sample_prop[organ_of == organ]
        outside = sample_prop[organ_of != organ]
        res = wilcoxon(inside.T, outside.T, min_n=min_samples).reindex(per_organ.columns)
        for ct in per_organ.columns:
            rows.append((organ, ct, int(per_organ.at[organ, ct]), prop.at[organ, ct], overall[ct],
                         enrich.at[organ, ct], entropy[organ], len(inside), inside[ct].mean(),
                         outside[ct].mean() if len(outside) else np.nan, res.at[ct, "statistic"],
                         res.at[ct, "pvalue"], res.at[ct, "reason"]))
    out = pd.DataFrame(rows, columns=[c for c in COMPOSITION_COLUMNS if c != "qvalue"])
    out.insert(out.columns.get_loc("reason"), "qvalue", fdr_bh(out["pvalue"].to_numpy(dtype=float)))
    out.attrs["fdr_family"] = "Benjamini-Hochberg over every organ x cell type row"
    return out
