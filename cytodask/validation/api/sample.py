"""Checks 1 and 2: activity vs producer-gene expression across samples, and across cell types."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from cytodask.validation.api.inputs import WHOLE_SAMPLE, align, finish, log_cpm, producers
from cytodask.validation.kernels import correlation_rows

STAT_COLUMNS = ["n", "pearson_r", "spearman_rho", "slope", "r_squared", "pvalue", "spearman_pvalue"]
SAMPLE_COLUMNS = ["signature", "gene", "cell_type", *STAT_COLUMNS, "qvalue", "reason"]
CELL_TYPE_COLUMNS = ["signature", "gene", *STAT_COLUMNS, "qvalue", "reason"]


def _tests(pairs: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, np.ndarray]:
    """:func:`correlation_rows` of ragged pairs (padded with NaN into one batched call)."""
    width = max([len(x) for x, _ in pairs] + [1])
    xs, ys = np.full((len(pairs), width), np.nan), np.full((len(pairs), width), np.nan)
    for i, (x, y) in enumerate(pairs):
        xs[i, : len(x)], ys[i, : len(y)] = x, y
    return correlation_rows(xs, ys, np)


def _reason(n: int, min_n: int, x: np.ndarray, y: np.ndarray, what: str) -> str:
    if n < min_n:
        return f"{n} {what} < {min_n} needed"
    if np.nanstd(x) == 0:
        return "producer expression is constant"
    if np.nanstd(y) == 0:
        return "activity is constant"
    return ""


def whole_sample_activity(counts: pd.DataFrame, samples: pd.Series, signature: Any) -> pd.DataFrame:
    """Activity of whole-sample pseudobulks (counts summed over a sample's groups), analytic ridge z."""
    from cytodask.activity import infer

    summed = counts.groupby(samples.astype(str).to_numpy(), sort=True).sum()
    return infer(summed.T, signature, method="analytic", input_kind="counts").zscore


def sample_level(activity: Any, expression: Any, *, sample_col: str, cell_type_col: str | None = None,
                 signature: Any = None, min_samples: int = 3) -> pd.DataFrame:
    """Check 1: per signature and cell type, activity vs producer-gene log-CPM across samples.

    Within each cell type (one pseudobulk per sample; never pooled across types) the
    activity z of a signature is compared with ``log2(CPM + 1)`` of its producer gene
    (:func:`cytodask.core.vocabulary.signature_gene`) in the same pseudobulk: Pearson r,
    Spearman ρ, slope and R² of the line of activity on expression, the Pearson p.
    With ``signature`` given (the signature the activity was computed with), whole-sample
    rows (``cell_type = "(whole sample)"``) compare the activity recomputed on each
    sample's summed counts with the producer's log-CPM in that sum. ``qvalue``: BH over
    every ``pvalue`` of the table.
    """
    columns = [sample_col, *([cell_type_col] if cell_type_col else [])]
    z, obs, counts = align(activity, expression, columns)
    prod = producers(z.columns, counts.columns)
    genes = prod.loc[prod["present"], "gene"].unique()
    expr = log_cpm(counts, genes)
    strata: list[tuple[str, pd.DataFrame, pd.DataFrame]] = []
    if cell_type_col:
        for label, idx in obs.groupby(cell_type_col, observed=True).groups.items():
            dup = obs.loc[idx, sample_col].duplicated()
            if dup.any():
                raise ValueError(f"cell type {label!r} has several rows per {sample_col!r} (e.g. "
                                 f"{obs.loc[idx][dup][sample_col].iloc[0]!r}); give one pseudobulk per sample "
                                 f"and cell type")
            strata.append((str(label), z.loc[idx], expr.loc[idx]))
    if signature is not None or not cell_type_col:
        if cell_type_col:
            wz = whole_sample_activity(counts, obs[sample_col], signature)
            summed = counts.groupby(obs[sample_col].astype(str).to_numpy(), sort=True).sum()
            strata.append((WHOLE_SAMPLE, wz.reindex(columns=z.columns), log_cpm(summed, genes)))
        else:
            strata.append((WHOLE_SAMPLE, z, expr))
    rows, pairs = [], []
    for _, p in prod.iterrows():
        for label, zs, es in strata:
            x = es[p["gene"]].to_numpy() if p["present"] else np.full(len(zs), np.nan)
            y = zs[p["signature"]].to_numpy(dtype=np.float64)
            n = int((~(np.isnan(x) | np.isnan(y))).sum())
            reason = p["reason"] or _reason(n, min_samples, x, y, "samples")
            rows.append({"signature": p["signature"], "gene": p["gene"], "cell_type": label, "reason": reason,
                         "n_pairs": n})
            pairs.append((x, y) if not reason else (np.full(1, np.nan), np.full(1, np.nan)))
    table = pd.DataFrame(rows, columns=["signature", "gene", "cell_type", "reason", "n_pairs"])
    stats = _tests(pairs) if pairs else {c: np.float64([]) for c in STAT_COLUMNS}
    for c in STAT_COLUMNS:
        table[c] = stats[c]
    table["n"] = table.pop("n_pairs").astype(np.int64)
    return finish(table, SAMPLE_COLUMNS, "Benjamini-Hochberg over every row of the sample-level table")


def type_means(activity: Any, expression: Any, *, sample_col: str, cell_type_col: str,
               min_samples: int = 3) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series, pd.DataFrame]:
    """Per cell type: mean activity and mean producer log-CPM over its samples, samples per type, producers.

    Types with fewer than ``min_samples`` samples are left out of the means (their count is kept).
    """
    z, obs, counts = align(activity, expression, [sample_col, cell_type_col])
    prod = producers(z.columns, counts.columns)
    expr = log_cpm(counts, prod.loc[prod["present"], "gene"].unique())
    types = obs[cell_type_col].astype(str)
    n = obs.groupby(types, observed=True)[sample_col].nunique()
    keep = n.index[n >= min_samples]
    mean_z = z.groupby(types, observed=True).mean().loc[keep]
    mean_e = expr.groupby(types, observed=True).mean().loc[keep]
    return mean_z, mean_e, n, prod


def cell_type_level(activity: Any, expression: Any, *, sample_col: str, cell_type_col: str,
                    min_samples: int = 3, min_types: int = 3) -> pd.DataFrame:
    """Check 2: across cell types (each with ≥ ``min_samples`` samples), mean producer log-CPM vs mean activity.

    Pearson r, Spearman ρ, slope, R², p over the types; ``qvalue`` BH over the table.
    """
    mean_z, mean_e, n_types, prod = type_means(activity, expression, sample_col=sample_col,
                                               cell_type_col=cell_type_col, min_samples=min_samples)
    rows, pairs = [], []
    few = n_types[n_types < min_samples]
    for _, p in prod.iterrows():
        x = mean_e[p["gene"]].to_numpy() if p["present"] else np.full(len(mean_z), np.nan)
        y = mean_z[p["signature"]].to_numpy(dtype=np.float64)
        reason = p["reason"] or _reason(len(mean_z), min_types, x, y, "cell types")
        if reason and len(mean_z) < min_types and len(few):
            reason += f" ({len(few)} type(s) with < {min_samples} samples left out, e.g. {few.index[0]!r})"
        rows.append({"signature": p["signature"], "gene": p["gene"], "reason": reason})
        pairs.append((x, y) if not reason else (np.full(1, np.nan), np.full(1, np.nan)))
    table = pd.DataFrame(rows, columns=["signature", "gene", "reason"])
    stats = _tests(pairs) if pairs else {c: np.float64([]) for c in STAT_COLUMNS}
    for c in STAT_COLUMNS:
        table[c] = stats[c]
    table["n"] = len(mean_z)
    return finish(table, CELL_TYPE_COLUMNS, "Benjamini-Hochberg over every row of the cell-type-level table")
