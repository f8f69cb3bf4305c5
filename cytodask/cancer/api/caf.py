"""CAF subtypes from expression: fibroblasts scored on myCAF, iCAF and apCAF markers; activity per subtype."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import dask
import numpy as np
import pandas as pd

from cytodask.cancer.api.labels import cells_of
from cytodask.cancer.api.scoring import score_cells
from cytodask.cancer.graph import group_means_graph, row_blocks
from cytodask.core.stats.fdr import fdr_bh
from cytodask.organ.api.inputs import check_columns
from cytodask.organ.kernels import kruskal_block

CAF_MARKERS: dict[str, tuple[str, ...]] = {
    "myCAF": ("ACTA2", "TAGLN", "MYL9", "COL1A1", "COL1A2", "FN1"),
    "iCAF": ("IL6", "CXCL12", "CCL2", "PDGFRA", "CFD", "LUM"),
    "apCAF": ("HLA-DRA", "CD74", "HLA-DRB1", "SLPI"),
}
CAF_THRESHOLD = 0.2
UNASSIGNED = "unassigned"


def caf_subtypes(expression: Any, *, cell_type_col: str, target: str = "Fibroblast",
                 markers: Mapping[str, Sequence[str]] | None = None, threshold: float = CAF_THRESHOLD,
                 cell_type_map: Mapping[str, str] | None = None, atlas: str | None = None,
                 **score_options: Any) -> pd.DataFrame:
    """Score every fibroblast on each CAF marker set and call its subtype.

    ``caf_subtype`` is the set with the highest score when that score
    exceeds ``threshold`` (default 0.2 log1p units above the matched control
    genes, as for exhaustion), else ``"unassigned"``. Fibroblasts are the cells whose label maps
    to ``target`` in the common vocabulary (exact matches). ``score_options``
    as in :func:`~cytodask.cancer.api.scoring.score_cells`.

    Returns
    -------
    DataFrame
        Indexed by fibroblast: ``cell_type``, ``score_<subtype>`` per set,
        ``caf_subtype``.
    """
    where = "cancer.caf_subtypes"
    check_columns(expression.obs, [cell_type_col], where)
    markers = dict(CAF_MARKERS if markers is None else markers)
    labels = expression.obs[cell_type_col]
    mask = cells_of(labels, target, cell_type_map=cell_type_map, atlas=atlas, where=where)
    scores = score_cells(expression, {k: list(v) for k, v in markers.items()}, cells=mask, **score_options)
    values = scores.to_numpy()
    best = np.asarray(list(markers), dtype=object)[values.argmax(axis=1)]
    out = pd.DataFrame({"cell_type": labels[mask].astype(str).to_numpy()}, index=scores.index)
    for name in markers:
        out[f"score_{name}"] = scores[name].to_numpy()
    out["caf_subtype"] = np.where(values.max(axis=1) > float(threshold), best, UNASSIGNED)
    out.attrs.update(scores.attrs, threshold=float(threshold), subtypes=list(markers))
    return out


def caf_proportions(cells: pd.DataFrame, obs: pd.DataFrame, *, sample_col: str,
                    cancer_type_col: str | None = None) -> pd.DataFrame:
    """Subtype proportions among the fibroblasts of each sample (and pooled per cancer type).

    Returns ``level (sample | cancer_type), key, caf_subtype, n_cells,
    n_fibroblasts, proportion`` (count weighted).
    """
    cols = [sample_col] + ([cancer_type_col] if cancer_type_col else [])
    check_columns(obs, cols, "cancer.caf_proportions")
    meta = obs.loc[cells.index, cols].astype(str)
    parts = []
    for level, col in (("sample", sample_col), ("cancer_type", cancer_type_col)):
        if col is None:
            continue
        counts = pd.crosstab(meta[col], cells["caf_subtype"])
        long = counts.stack().rename("n_cells").reset_index()
        long.columns = ["key", "caf_subtype", "n_cells"]
        long["n_fibroblasts"] = long["key"].map(counts.sum(axis=1)).astype(np.int64)
        long["proportion"] = long["n_cells"] / long["n_fibroblasts"]
        long.insert(0, "level", level)
        parts.append(long)
    return pd.concat(parts, ignore_index=True)


def caf_activity(activity: Any, cells: pd.DataFrame, *, sample_col: str, min_cells: int = 3,
                 batch_size: int = 10_000) -> pd.DataFrame:
    """Activity per CAF subtype and Kruskal–Wallis across subtypes over samples, BH over signatures.

    Per sample and assigned subtype (``unassigned`` left out), the mean
    single-cell activity of its cells (at least ``min_cells``; streamed over
    the activity blocks) is one value; subtypes are compared across those
    sample values with the Kruskal–Wallis test (``scipy.stats.kruskal``).

    Returns
    -------
    DataFrame
        ``signature, caf_subtype, n_samples, mean, statistic (H), pvalue,
        qvalue, reason`` (the test repeated on each subtype row of its
        signature; BH over signatures).
    """
    check_columns(activity.obs, [sample_col], "cancer.caf_activity")
    names = pd.Index(activity.obs_names.astype(str))
    assigned = cells[cells["caf_subtype"] != UNASSIGNED]
    pos = names.get_indexer(assigned.index)
    if (pos < 0).any():
        raise ValueError("scored fibroblasts are missing from the activity's obs names; score and activity "
                         "must share the cells")
    sample = activity.obs[sample_col].astype(str).to_numpy()[pos]
    samples = np.array(sorted(set(sample)), dtype=object)
    subtypes = np.array(sorted(set(assigned["caf_subtype"])), dtype=object)
    codes = np.full(activity.n_obs, -1, dtype=np.int64)
    codes[pos] = np.searchsorted(samples, sample) * len(subtypes) + np.searchsorted(subtypes, assigned["caf_subtype"])
    graph = group_means_graph(row_blocks(activity.X, batch_size), codes, len(samples) * len(subtypes))
    sums, counts = dask.compute(graph)[0]
    ok = counts >= min_cells
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(ok[:, None], sums / counts[:, None], np.nan)  # (sample, subtype) × signatures
    group = np.where(ok, np.tile(np.arange(len(subtypes)), len(samples)), -1)
    kw = kruskal_block(means.T, group, len(subtypes), np)
    rows = []
    for j, sig in enumerate(activity.var_names.astype(str)):
        for s, sub in enumerate(subtypes):
            v = means[s::len(subtypes), j]
            n = int(np.isfinite(v).sum())
            rows.append((sig, sub, n, np.nanmean(v) if n else np.nan, kw[j, 0], kw[j, 1]))
    out = pd.DataFrame(rows, columns=["signature", "caf_subtype", "n_samples", "mean", "statistic", "pvalue"])
    first = ~out.duplicated("signature")
    q = pd.Series(fdr_bh(out.loc[first, "pvalue"].to_numpy(dtype=float)), index=out.loc[first, "signature"])
    out["qvalue"] = out["signature"].map(q)
    out["reason"] = np.where(out["pvalue"].isna(), "fewer than 2 subtypes with samples", "")
    out.attrs["fdr_family"] = "Benjamini-Hochberg over the signatures (one Kruskal-Wallis test each)"
    return out
