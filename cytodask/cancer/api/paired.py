"""Paired comparisons: tumour vs adjacent tissue of the same donors (and the shared paired-test table)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from cytodask.core.stats.fdr import fdr_bh
from cytodask.organ.api.inputs import activity_frame

PAIRED_TESTS = ("wilcoxon_signed_rank", "paired_t")
PAIRED_COLUMNS = ("n_pairs", "mean_group1", "mean_group2", "diff", "test", "statistic", "pvalue", "qvalue",
                  "reason")


def paired_tests(x: np.ndarray, y: np.ndarray, keys: pd.DataFrame, *, min_pairs: int = 3) -> pd.DataFrame:
    """Wilcoxon signed-rank and paired t-test of every row of ``x`` against ``y`` (pairs NaN-padded).

    ``x`` and ``y`` are rows × pairs (pair ``j`` of a row is ``x[i, j]``,
    ``y[i, j]``; NaN pads rows with fewer pairs); ``keys`` labels the rows.
    Returns ``keys`` then :data:`PAIRED_COLUMNS`, two rows per input row (one
    per test); ``diff = mean(x − y)`` over the complete pairs; ``qvalue`` is
    left for the caller (its family). The tests are
    :func:`cytodask.differential.wilcoxon_paired` and
    :func:`cytodask.differential.ttest` (``kind="paired"``), equal to
    ``scipy.stats.wilcoxon`` (asymptotic, no continuity correction, zeros
    dropped) and ``scipy.stats.ttest_rel``.
    """
    from cytodask.differential import ttest, wilcoxon_paired

    complete = ~(np.isnan(x) | np.isnan(y))
    n = complete.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        m1 = np.where(complete, x, 0.0).sum(axis=1) / n
        m2 = np.where(complete, y, 0.0).sum(axis=1) / n
    parts = []
    for test, res in (("wilcoxon_signed_rank", wilcoxon_paired(x, y, min_n=min_pairs, threads=1)),
                      ("paired_t", ttest(x, y, "paired", min_n=min_pairs, threads=1))):
        frame = keys.reset_index(drop=True).copy()
        frame["n_pairs"] = n.astype(np.int64)
        frame["mean_group1"], frame["mean_group2"], frame["diff"] = m1, m2, m1 - m2
        frame["test"] = test
        frame["statistic"] = np.asarray(res["statistic"], dtype=float)
        frame["pvalue"] = np.asarray(res["pvalue"], dtype=float)
        frame["qvalue"] = np.nan
        frame["reason"] = np.where(n < min_pairs, f"n_pairs<{min_pairs}", np.asarray(res["reason"], dtype=object))
        parts.append(frame)
    return pd.concat(parts, ignore_index=True)


def bh_per_test(table: pd.DataFrame, family: str) -> pd.DataFrame:
    """``qvalue``: BH within each ``test`` over every row; the family is written in ``attrs``."""
    table["qvalue"] = fdr_bh(table["pvalue"].to_numpy(dtype=float), families=table["test"].to_numpy())
    table.attrs["fdr_family"] = f"Benjamini-Hochberg within each test, over every {family}"
    return table


def _tissue_counts(obs: pd.DataFrame, tissue_col: str, donor_col: str) -> dict[str, int]:
    return {str(k): int(v) for k, v in obs.groupby(tissue_col, observed=True)[donor_col].nunique().items()}


def tumor_vs_adjacent(activity: Any, *, tissue_col: str, donor_col: str, cell_type_col: str,
                      tumor: str = "Tumor", adjacent: str = "Adjacent", cancer_type_col: str | None = None,
                      min_pairs: int = 3) -> pd.DataFrame:
    """Paired tumour − adjacent activity per cell type, per cancer type and pooled.

    Parameters
    ----------
    activity
        Activity AnnData whose rows are pseudobulks of (cell type, tissue,
        donor) (or ``(values, obs)`` DataFrames). Rows of one donor, tissue and
        cell type are averaged.
    tissue_col, donor_col, cell_type_col
        obs columns of the tissue, the donor and the cell type.
    tumor, adjacent
        The tissue labels compared (exact strings).
    cancer_type_col
        obs column of the cancer type; each cancer type is tested, and all
        pairs together as ``cancer_type = "pooled"``. Without it, only pooled.
    min_pairs
        Strata with fewer complete pairs give NaN and ``reason = "n_pairs<3"``.

    Returns
    -------
    DataFrame
        ``cell_type, signature, cancer_type, n_pairs, mean_tumor,
        mean_adjacent, diff (tumour − adjacent), test (wilcoxon_signed_rank |
        paired_t), statistic, pvalue, qvalue, reason``; ``qvalue``: BH within
        each test over every cell type × cancer type (pooled included) ×
        signature. ``attrs`` count the donors paired, the unpaired donors and
        the rows of other tissues (e.g. blood) left out.

    Raises
    ------
    ValueError
        A tissue label absent from ``tissue_col``, or no donor with both
        tissues (the message gives the donors per tissue).
    """
    where = "cancer.tumor_vs_adjacent"
    cols = [tissue_col, donor_col, cell_type_col] + ([cancer_type_col] if cancer_type_col else [])
    values, obs = activity_frame(activity, cols, where=where)
    tissue = obs[tissue_col].astype(str)
    levels = sorted(tissue.unique())
    for label, key in ((tumor, "tumor"), (adjacent, "adjacent")):
        if label not in levels:
            raise ValueError(f"{where}: tissue label {label!r} is not in column {tissue_col!r} (levels: {levels}); "
                             f"pass {key}= with one of them")
    counts = _tissue_counts(obs, tissue_col, donor_col)
    keep = tissue.isin([tumor, adjacent]).to_numpy()
    other_rows = int((~keep).sum())
    values, obs = values[keep], obs[keep]
    donors = obs.groupby(donor_col, observed=True)[tissue_col].agg(lambda s: set(s.astype(str)))
    paired = donors[donors.map(lambda s: {tumor, adjacent} <= s)].index
    if len(paired) == 0:
        raise ValueError(f"{where}: no donor (column {donor_col!r}) has both {tissue_col!r} == {tumor!r} and "
                         f"== {adjacent!r}; donors per tissue: {counts}. Paired tests need donors sampled in "
                         "both tissues; check donor_col and the tissue labels.")
    inpair = obs[donor_col].isin(paired).to_numpy()
    values, obs = values[inpair], obs[inpair]
    ctype = obs[cancer_type_col].astype(str) if cancer_type_col else pd.Series("pooled", index=obs.index)
    key = pd.DataFrame({"cell_type": obs[cell_type_col].astype(str), "donor": obs[donor_col].astype(str),
                        "cancer_type": ctype, "tissue": obs[tissue_col].astype(str)})
    means = values.groupby([key[c] for c in key.columns], observed=True, sort=True).mean()
    strata = [means]
    if cancer_type_col:  # pooled: every pair once, whatever its cancer type
        pooled = means.groupby(level=["cell_type", "donor", "tissue"], observed=True).mean()
        strata.append(pd.concat({"pooled": pooled}, names=["cancer_type"]).reorder_levels(
            ["cell_type", "donor", "cancer_type", "tissue"]))
    table = _paired_strata(pd.concat(strata), tumor, adjacent, min_pairs)
    table = table.rename(columns={"mean_group1": "mean_tumor", "mean_group2": "mean_adjacent"})
    table = bh_per_test(table, "cell type x cancer type (pooled included) x signature")
    table.attrs.update(n_donors_paired=int(len(paired)), n_donors_unpaired=int(len(donors) - len(paired)),
                       n_rows_other_tissue=other_rows, diff="tumor - adjacent",
                       tumor=str(tumor), adjacent=str(adjacent))
    return table


def _paired_strata(means: pd.DataFrame, tumor: str, adjacent: str, min_pairs: int) -> pd.DataFrame:
    """Lay the (cell type, cancer type) strata out as NaN-padded signatures × donors pairs and test them."""
    signatures = means.columns.to_numpy(dtype=object)
    wide = means.unstack("tissue")
    strata = wide.groupby(level=["cell_type", "cancer_type"], observed=True, sort=True)
    width = max(len(g) for _, g in strata)
    n_sig = len(signatures)
    x = np.full((len(strata) * n_sig, width), np.nan)
    y = np.full_like(x, np.nan)
    keys = []
    for s, ((cell_type, cancer_type), g) in enumerate(strata):
        t = g.xs(tumor, axis=1, level="tissue")[signatures].to_numpy(dtype=float).T
        a = g.xs(adjacent, axis=1, level="tissue")[signatures].to_numpy(dtype=float).T
        x[s * n_sig:(s + 1) * n_sig, : t.shape[1]] = t
        y[s * n_sig:(s + 1) * n_sig, : a.shape[1]] = a
        keys.append((cell_type, cancer_type))
    k = pd.DataFrame(keys, columns=["cell_type", "cancer_type"])
    k = k.loc[np.repeat(np.arange(len(k)), n_sig)].reset_index(drop=True)
    k.insert(1, "signature", np.tile(signatures, len(strata)))
    return paired_tests(x, y, k, min_pairs=min_pairs)
