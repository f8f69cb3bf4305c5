"""Stratified differential tables: one batched test over every stratum × feature (the public function).

The strata are laid out as NaN-padded rows here (input handling); the block
kernels of :mod:`cytodask.differential.kernels` run over them through the
shared row-block driver (:func:`cytodask.core.stats.driver.map_row_blocks`).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from cytodask.core.backend import Backend, check_threads, resolve_backend
from cytodask.core.stats.driver import TWO_SAMPLE_REASONS, check_min_n, map_row_blocks, reason_strings
from cytodask.core.stats.fdr import fdr_bh
from cytodask.core.xp import to_device, to_numpy
from cytodask.differential.kernels import SUMMARY_OUTPUTS, effects_block, mannwhitney_summary_block, ttest_block

TableTest = Literal["wilcoxon", "welch", "student", "ttest"]
FdrFamily = Literal["stratum", "all"]

TABLE_COLUMNS = (
    "signature", "group1", "group2", "n_g1", "n_g2", "statistic", "activity_diff", "median_g1",
    "median_g2", "pvalue", "qvalue", "neg_log10_pval", "reason",
)  # fmt: skip


def _family_text(fdr_family: Any, *, strata_cols: list[str]) -> str:
    """The declared family of the table's BH q-values, in words (written in the table's attrs)."""
    if isinstance(fdr_family, str) and fdr_family == "stratum":
        within = " x ".join(strata_cols) or "the whole table"
        return f"Benjamini-Hochberg within each stratum ({within}) of the comparison"
    if isinstance(fdr_family, str) and fdr_family == "all":
        return "Benjamini-Hochberg over every row of the table"
    return f"Benjamini-Hochberg within each value of: {' x '.join(map(str, fdr_family))}"


def _check_columns(frame: pd.DataFrame, cols: Sequence[str], what: str = "obs") -> None:
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} has no column(s) {missing}; available: {list(frame.columns)}")


def _strata_codes(obs: pd.DataFrame, strata: list[str]) -> tuple[np.ndarray, pd.DataFrame]:
    """Stratum code of each sample (−1 where a stratum key is missing) and the key table."""
    if not strata:
        return np.zeros(len(obs), dtype=np.int64), pd.DataFrame(index=range(1))
    codes = obs.groupby(strata, observed=True, sort=True, dropna=True).ngroup().to_numpy()
    codes = np.where(np.isnan(codes.astype(float)), -1, codes).astype(np.int64)
    keys = obs.loc[codes >= 0, strata].assign(_code=codes[codes >= 0]).drop_duplicates("_code")
    return codes, keys.sort_values("_code").drop(columns="_code").reset_index(drop=True)


_TRANSPOSE_ROWS = 256


def _padded(values: np.ndarray, stratum: np.ndarray, n_strata: int) -> np.ndarray:
    """Samples × features of one group → (strata · features) × max-samples, NaN-padded.

    Samples keep their order within a stratum. Rows are gathered and
    transposed :data:`_TRANSPOSE_ROWS` at a time: a chunk's columns stay in
    cache while they are written out (1.3× faster than transposing a stratum
    at once on 50,000 × 1,170 float32, one thread: claim-transpose in benchmarks/RESULTS.md).
    """
    order = np.argsort(stratum, kind="stable")
    bounds = np.searchsorted(stratum[order], np.arange(n_strata + 1))
    width = int(np.diff(bounds).max()) if n_strata else 0
    grid = np.empty((n_strata, values.shape[1], width), dtype=values.dtype)
    for s in range(n_strata):  # strata and chunks of samples, not features
        rows = order[bounds[s] : bounds[s + 1]]
        for r0 in range(0, rows.size, _TRANSPOSE_ROWS):
            chunk = rows[r0 : r0 + _TRANSPOSE_ROWS]
            grid[s, :, r0 : r0 + chunk.size] = values[chunk].T
        grid[s, :, rows.size :] = np.nan  # only the padding is filled
    return grid.reshape(n_strata * values.shape[1], width)


def differential_table(
    values: pd.DataFrame,
    obs: pd.DataFrame,
    *,
    group_col: str,
    group1: Any,
    group2: Any | None = None,
    strata: Sequence[str] = (),
    features: Sequence[str] | None = None,
    test: TableTest = "wilcoxon",
    min_n: int = 3,
    fdr_family: FdrFamily | Sequence[str] = "stratum",
    backend: Backend = "numpy",
    threads: int | None = None,
) -> pd.DataFrame:
    """Differential activity of ``group1`` vs ``group2`` within every stratum, as a tidy table.

    Parameters
    ----------
    values
        Samples × features (e.g. activity z-scores of pseudobulk samples).
    obs
        Samples × metadata, indexed like ``values``.
    group_col, group1, group2
        The comparison: samples with ``obs[group_col] == group1`` vs ``== group2``;
        ``group2=None`` compares with every other sample (labelled ``"rest"``).
    strata
        obs columns whose combinations define strata (e.g. ``["cell_type",
        "tissue"]``); samples with a missing key are left out.
    features
        Subset of ``values`` columns (default all).
    test
        ``"wilcoxon"`` (Mann–Whitney U, statistic = U of group 1), ``"welch"``
        (alias ``"ttest"``) or ``"student"`` t-test (statistic = t); see
        :mod:`cytodask.differential`.
    min_n
        Groups with fewer samples give NaN statistics with a ``reason``.
    fdr_family
        Families of the BH correction: ``"stratum"`` (default: each stratum ×
        comparison), ``"all"``, or a list of output columns whose values label
        the families (e.g. ``["cell_type"]``).
    backend
        Array module for the batched kernels (``"numpy"``, ``"cupy"``, ``"auto"``).
    threads
        Threads for the NumPy kernels (default: all available cores); results
        do not depend on it.

    Returns
    -------
    DataFrame
        Strata key columns, then ``signature, group1, group2, n_g1, n_g2,
        statistic, activity_diff, median_g1, median_g2, pvalue, qvalue,
        neg_log10_pval, reason``; one row per stratum × feature (the
        ``signature`` column names the feature: the table vocabulary of every
        cytodask result table; before 0.2 it was called ``feature``).

    Notes
    -----
    All strata are tested in one batched call: each group is laid out as a
    NaN-padded strata × features × samples array and ranked along the last
    axis; NaNs are ignored by the kernels, so padding and missing values
    behave alike. ``activity_diff`` is the difference of means (z-score units).
    """
    if not isinstance(values, pd.DataFrame) or not isinstance(obs, pd.DataFrame):
        raise TypeError("values and obs must be DataFrames (samples × features, samples × metadata)")
    if test not in ("wilcoxon", "welch", "student", "ttest"):
        raise ValueError(f"test={test!r} is not one of 'wilcoxon', 'welch', 'student' ('ttest' = 'welch')")
    test = "welch" if test == "ttest" else test
    min_n = check_min_n(min_n)
    n_threads = check_threads(threads)
    strata = [strata] if isinstance(strata, str) else list(strata)
    _check_columns(obs, [group_col, *strata])
    missing = values.index.difference(obs.index)
    if len(missing):
        raise ValueError(f"{len(missing)} samples of values are not in obs.index (e.g. {list(missing[:3])})")
    obs = obs.loc[values.index]
    features = list(values.columns if features is None else features)
    absent = [f for f in features if f not in values.columns]
    if absent:
        raise ValueError(f"features not in values.columns: {absent[:5]}")
    g = obs[group_col]
    for label in (group1,) if group2 is None else (group1, group2):
        if not (g == label).any():
            raise ValueError(f"no sample has {group_col} == {label!r}; values present: {list(g.unique()[:10])}")
    if group2 is not None and group1 == group2:
        raise ValueError("group1 and group2 are the same; compare two different groups")
    in1 = (g == group1).to_numpy()
    in2 = (g == group2).to_numpy() if group2 is not None else (~in1 & g.notna().to_numpy())
    stratum, keys = _strata_codes(obs, strata)
    n_strata = len(keys)
    sub = values[features]
    # float32 stays float32: the rank kernels sort it as 32-bit keys (t-test and effects work in float64)
    dtype = np.float32 if all(t == np.float32 for t in sub.dtypes) else np.float64
    mat = sub.to_numpy(dtype=dtype)
    use1, use2 = in1 & (stratum >= 0), in2 & (stratum >= 0)
    xp = resolve_backend(backend)
    x = to_device(_padded(mat[use1], stratum[use1], n_strata), xp)
    y = to_device(_padded(mat[use2], stratum[use2], n_strata), xp)
    if test == "wilcoxon":  # one sort per group gives the rank sums and the medians
        res = to_numpy(map_row_blocks(mannwhitney_summary_block, x, y, n_out=len(SUMMARY_OUTPUTS), min_n=min_n,
                                      threads=n_threads))
        stat, p, code = res[:, 0], res[:, 1], res[:, 4]
        n_g1, n_g2, diff, med1, med2 = res[:, 2], res[:, 3], res[:, 5] - res[:, 6], res[:, 7], res[:, 8]
    else:
        res = to_numpy(map_row_blocks(ttest_block, x, y, n_out=6, min_n=min_n, kind=test, threads=n_threads))
        stat, p, code = res[:, 0], res[:, 1], res[:, 5]
        eff = to_numpy(map_row_blocks(effects_block, x, y, n_out=9, min_n=min_n, threads=n_threads))
        n_g1, n_g2, diff, med1, med2 = eff[:, 6], eff[:, 7], eff[:, 0], eff[:, 1], eff[:, 2]
    stat, p, code = (np.asarray(a) for a in (stat, p, code))
    n_feat = len(features)
    out = keys.loc[np.repeat(np.arange(n_strata), n_feat)].reset_index(drop=True)
    out["signature"] = np.tile(np.asarray(features, dtype=object), n_strata)
    out["group1"] = group1
    out["group2"] = "rest" if group2 is None else group2
    out["n_g1"] = n_g1.astype(np.int64)
    out["n_g2"] = n_g2.astype(np.int64)
    out["statistic"] = stat
    out["activity_diff"] = diff
    out["median_g1"] = med1
    out["median_g2"] = med2
    out["pvalue"] = p
    if isinstance(fdr_family, str) and fdr_family == "stratum":
        out["qvalue"] = fdr_bh(p.reshape(n_strata, n_feat), axis=1).ravel()
    elif isinstance(fdr_family, str) and fdr_family == "all":
        out["qvalue"] = fdr_bh(p)
    elif isinstance(fdr_family, str):
        raise ValueError(f"fdr_family={fdr_family!r}: use 'stratum', 'all' or a list of output columns")
    else:
        fam_cols = list(fdr_family)
        if "feature" in fam_cols and "feature" not in out.columns:
            warnings.warn("fdr_family: the 'feature' column is now called 'signature'; 'feature' is accepted "
                          "until the next release", DeprecationWarning, stacklevel=2)
            fam_cols = ["signature" if c == "feature" else c for c in fam_cols]
        _check_columns(out, fam_cols, "the output table (fdr_family)")
        labels = out.groupby(fam_cols, dropna=False, sort=False).ngroup().to_numpy()
        out["qvalue"] = fdr_bh(p, families=labels)
    out.attrs["fdr_family"] = _family_text(fdr_family, strata_cols=list(keys.columns))
    with np.errstate(divide="ignore"):
        out["neg_log10_pval"] = 0.0 - np.log10(p)
    out["reason"] = reason_strings(code, min_n, TWO_SAMPLE_REASONS)
    return out[[*strata, *TABLE_COLUMNS]]
