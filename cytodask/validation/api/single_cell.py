"""Checks 3 and 4, streamed over the blocks of a single-cell activity: pseudobulk vs cells, and per-cell AUC."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import dask
import dask.array as da
import numpy as np
import pandas as pd

from cytodask.validation import graph as G
from cytodask.validation.api.cells import single_cells
from cytodask.validation.api.inputs import activity_frame, finish, producers, symbols
from cytodask.validation.kernels import (
    KEY_MAX,
    correlation_rows,
    lins_ccc_rows,
    mann_whitney_rows,
    subsample_thresholds,
)

PB_SC_COLUMNS = ["signature", "n", "pearson_mean", "spearman_mean", "ccc_mean", "pearson_median",
                 "spearman_median", "ccc_median", "pvalue", "qvalue", "reason"]
PB_SC_GROUP_COLUMNS = ["signature", "group", "sample", "cell_type", "n_cells", "pseudobulk", "sc_mean", "sc_median"]
AUC_COLUMNS = ["signature", "gene", "cell_type", "n_expressing", "n_other", "n1_used", "n2_used", "max_cells",
               "auc", "u", "activity_diff", "pvalue", "qvalue", "reason"]
Compute = Callable[..., tuple[Any, ...]]


def pseudobulk_vs_single_cell(activity: Any, single_cell: Any, *, sample_col: str, cell_type_col: str,
                              min_groups: int = 3, compute: Compute = dask.compute
                              ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Check 3: per signature, pseudobulk activity of each (sample × cell type) group vs its cells' mean and median.

    The cells' summaries are streamed over the blocks of ``single_cell.X`` (a Dask array
    stays lazy; CuPy blocks run on the GPU): the mean from per-block counts and sums, the
    exact median in two passes (a histogram, then the values of the median bins). Across
    the groups with cells: Pearson r (its p, and BH ``qvalue`` over the table), Spearman ρ
    and Lin's CCC for the mean and the median. Returns the per-signature table and the
    per-group values.
    """
    z_pb, obs_pb = activity_frame(activity)
    sc = single_cells(single_cell, [sample_col, cell_type_col])
    sigs = sc.signatures
    keys = pd.MultiIndex.from_frame(obs_pb[[sample_col, cell_type_col]].astype(str))
    (s_codes, s_labels), (t_codes, t_labels) = sc.labels(sample_col), sc.labels(cell_type_col)
    # group of (sample label i, cell-type label j): lookup[i, j] (−1: no pseudobulk group); per block, lazily
    pairs = pd.MultiIndex.from_product([s_labels.astype(str), t_labels.astype(str)])
    lookup = keys.get_indexer(pairs).astype(np.int32).reshape(len(s_labels), len(t_labels))
    codes = da.map_blocks(_pair_codes, s_codes, t_codes, lookup, dtype=np.int32)
    shared = [s for s in z_pb.columns if s in set(sigs)]
    if not shared:
        raise ValueError(f"pseudobulk and single-cell activity share no signature (e.g. {list(z_pb.columns[:3])} vs "
                         f"{list(sigs[:3])}); compute both with the same signature")
    z = sc.z[:, sigs.get_indexer(shared)]
    count, total = compute(G.group_moments(z, codes, len(keys)))[0]
    median = G.group_medians(z, codes, len(keys), compute=compute)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / count, np.nan)
    pb = z_pb[shared].to_numpy(dtype=np.float64)
    stats_mean = correlation_rows(pb.T, mean.T, np)
    stats_median = correlation_rows(pb.T, median.T, np)
    n = stats_mean["n"]
    table = pd.DataFrame({
        "signature": shared, "n": n.astype(np.int64),
        "pearson_mean": stats_mean["pearson_r"], "spearman_mean": stats_mean["spearman_rho"],
        "ccc_mean": lins_ccc_rows(pb.T, mean.T, np), "pearson_median": stats_median["pearson_r"],
        "spearman_median": stats_median["spearman_rho"], "ccc_median": lins_ccc_rows(pb.T, median.T, np),
        "pvalue": stats_mean["pvalue"],
        "reason": np.where(n < min_groups, [f"{k} groups with cells < {min_groups} needed" for k in n], ""),
    })
    n_cells = count.max(axis=1) if count.size else np.zeros(len(keys))
    groups = pd.DataFrame({
        "signature": np.repeat(shared, len(keys)), "group": np.tile(z_pb.index.to_numpy(), len(shared)),
        "sample": np.tile(keys.get_level_values(0), len(shared)),
        "cell_type": np.tile(keys.get_level_values(1), len(shared)),
        "n_cells": np.tile(n_cells.astype(np.int64), len(shared)),
        "pseudobulk": pb.T.ravel(), "sc_mean": mean.T.ravel(), "sc_median": median.T.ravel()})
    return (finish(table, PB_SC_COLUMNS, "Benjamini-Hochberg over the Pearson p (mean) of every signature"),
            groups[PB_SC_GROUP_COLUMNS])


def _pair_codes(s: np.ndarray, t: np.ndarray, lookup: np.ndarray) -> np.ndarray:
    out = lookup[np.maximum(s, 0), np.maximum(t, 0)] if lookup.size else np.full(s.shape, -1, np.int32)
    return np.where((s < 0) | (t < 0), np.int32(-1), out).astype(np.int32)


def _counts(cells: Any, layer: str | None, rows: tuple[int, ...]) -> tuple[da.Array, pd.Index]:
    from cytodask.aggregation.inputs import as_blocks

    src = as_blocks(cells, layer=layer, batch_size=max(rows))
    if src.x.shape[0] != sum(rows):
        raise ValueError(f"single-cell activity has {sum(rows)} cells but the cells' counts have {src.x.shape[0]}; "
                         f"give the counts the single-cell activity was computed from")
    return src.x, symbols(src.var)


def _subsample(z: da.Array, counts: da.Array, codes: da.Array, pos: np.ndarray, sizes: np.ndarray, k: int,
               seed: int, compute: Compute) -> tuple[np.ndarray, np.ndarray]:
    """Group ids and values of the check-4 subsample, exact: the ``k`` smallest keys of every group.

    A second pass over the blocks, after the first gave the group ``sizes``: each block keeps
    the keys under its group's bound (:func:`~cytodask.validation.kernels.subsample_thresholds`),
    so no partial holds much more than ``k`` per group in all. A group left short of
    ``min(k, size)`` (chance ~1e-15 each) is taken again with no bound.
    """
    bounds = subsample_thresholds(sizes, k, np)
    for _ in range(2):
        (cand,) = compute(G.auc_candidates(z, counts, codes, pos, k=k, seed=seed, thresholds=bounds))
        gid, _, value = cand
        short = np.bincount(gid, minlength=sizes.size) < np.minimum(k, sizes)
        if not short.any():
            break
        bounds = np.where(short, KEY_MAX, bounds).astype(np.uint64)
    else:  # pragma: no cover - the unbounded pass keeps every member
        raise AssertionError("check 4: a subsample group is short after the unbounded pass")
    return gid, value


#: Bytes held per (cell type × signature) row and kept cell, an estimate: the subsample's (group, key, value) of
#: both groups (48 B) and the two dense rows the Mann–Whitney kernel ranks (16 B), doubled for its temporaries.
BYTES_PER_KEPT_CELL = 128


def fitted_max_cells(max_cells: int, n_rows: int, max_memory: float) -> int:
    """``max_cells``, lowered so that ``n_rows × max_cells × BYTES_PER_KEPT_CELL`` fits ``max_memory`` bytes."""
    fit = int(max_memory // (max(n_rows, 1) * BYTES_PER_KEPT_CELL))
    if fit < 2 * 10:
        raise ValueError(f"check 4: {n_rows:,} (cell type × signature) rows leave fewer than 20 cells per group in "
                         f"max_memory={max_memory / 2**30:.2g} GiB; raise max_memory, or validate fewer signatures "
                         f"or coarser cell types")
    return min(max_cells, fit)


def single_cell_auc(single_cell: Any, cells: Any, *, cell_type_col: str, layer: str | None = None,
                    max_cells: int = 5000, seed: int = 0, min_cells: int = 10, max_memory: float = 2 * 2**30,
                    compute: Compute = dask.compute) -> pd.DataFrame:
    """Check 4: within each cell type, activity of cells expressing the producer gene (count > 0) vs the others.

    ``AUC = U₁ / (n₁ n₂)`` of the tie-corrected Mann–Whitney test (its two-sided asymptotic
    p, BH ``qvalue`` over the table), exact on up to ``max_cells`` cells per group
    (expressing / other); larger groups use a deterministic subsample, the ``max_cells``
    cells of smallest SplitMix64 key of (``seed``, atlas cell index), the same for any
    blocking; ``n1_used``/``n2_used`` say how many. ``activity_diff`` = mean expressing −
    mean other over all cells. Streamed over the blocks of ``single_cell.X`` and ``cells``
    in two passes (group sizes and moments, then the subsample under per-group key bounds),
    so memory holds a few blocks and about ``max_cells`` values per group, whatever the cells.
    ``single_cell`` is an AnnData or the path of a single-cell activity stage (read block by
    block, its cell-type codes too: :mod:`cytodask.validation.api.cells`).

    The subsample holds ≈ 128 B per kept cell and (cell type × signature) row; when
    ``max_cells`` would need more than ``max_memory`` bytes (e.g. SecAct's 1,170 signatures
    × 100 cell types), it is lowered to fit, with a warning, and the table's ``max_cells``
    states the value used.
    """
    sc = single_cells(single_cell, [cell_type_col])
    sigs = sc.signatures
    codes, labels = sc.labels(cell_type_col)
    fitted = fitted_max_cells(max_cells, len(labels) * len(sigs), max_memory)
    if fitted < max_cells:
        warnings.warn(f"check 4: {len(labels)} cell types × {len(sigs)} signatures at max_cells={max_cells} need "
                      f"~{len(labels) * len(sigs) * max_cells * BYTES_PER_KEPT_CELL / 2**30:.1f} GiB, more than "
                      f"max_memory={max_memory / 2**30:.2g} GiB: exact on up to {fitted} cells per group instead "
                      f"(the table's max_cells says so)", stacklevel=2)
        max_cells = fitted
    counts, genes = _counts(cells, layer, sc.z.chunks[0])
    z = sc.z.rechunk((counts.chunks[0], -1))
    prod = producers(sigs, genes)
    pos = genes.get_indexer(prod["gene"])
    (moments,) = compute(G.expressed_moments(z, counts, codes, pos, len(labels)))
    n_all, s_all, n1, s1 = moments
    gid, value = _subsample(z, counts, codes, pos, np.stack([n_all - n1, n1], axis=-1).ravel(), max_cells, seed,
                            compute)
    n_sig = len(sigs)
    cell = gid // 2 // n_sig * n_sig + gid // 2 % n_sig
    flag = gid % 2
    n_rows = len(labels) * n_sig
    x1, x2 = np.full((n_rows, max_cells), np.nan), np.full((n_rows, max_cells), np.nan)
    for arr, f in ((x1, 1), (x2, 0)):
        sel = flag == f
        c = cell[sel]
        pos_in = np.arange(c.size) - np.searchsorted(c, c)
        arr[c, pos_in] = value[sel]
    mw = mann_whitney_rows(x1, x2, np)
    n1, n_all = n1.ravel(), n_all.ravel()
    n2 = n_all - n1
    with np.errstate(invalid="ignore", divide="ignore"):
        diff = s1.ravel() / n1 - (s_all.ravel() - s1.ravel()) / n2
    table = pd.DataFrame({"signature": np.tile(np.asarray(sigs), len(labels)),
                          "gene": np.tile(prod["gene"].to_numpy(), len(labels)),
                          "cell_type": np.repeat(np.asarray(labels), n_sig), "n_expressing": n1.astype(np.int64),
                          "n_other": n2.astype(np.int64), "n1_used": mw["n1"].astype(np.int64),
                          "n2_used": mw["n2"].astype(np.int64), "max_cells": max_cells, "auc": mw["auc"],
                          "u": mw["u"], "activity_diff": diff, "pvalue": mw["pvalue"]})
    reason = np.tile(prod["reason"].to_numpy(), len(labels)).astype(object)
    few = (n1 < min_cells) | (n2 < min_cells)
    reason = np.where((reason == "") & few, [f"{int(a)} expressing / {int(b)} other cells; {min_cells} of each needed"
                                             for a, b in zip(n1, n2, strict=True)], reason)
    bad = reason != ""
    table.loc[bad, ["auc", "u", "activity_diff", "pvalue"]] = np.nan
    table["reason"] = reason
    return finish(table, AUC_COLUMNS, "Benjamini-Hochberg over every row of the single-cell AUC table")


def detected_fraction(cells: Any, *, layer: str | None = None, compute: Compute = dask.compute) -> pd.Series:
    """Fraction of cells with a count > 0 per gene, streamed over the cells' blocks."""
    from cytodask.aggregation.inputs import as_blocks

    src = as_blocks(cells, layer=layer)
    (nz,) = compute(G.nonzero_cells(src.x))
    return pd.Series(np.asarray(nz, dtype=np.float64) / max(src.x.shape[0], 1), index=symbols(src.var))
