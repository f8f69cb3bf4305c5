"""Roll a fine cell-type pseudobulk up to a coarser level, without re-reading cells.

Sums and non-zero counts add; cell counts add; means are ``S/n``; variances
merge exactly with the k-way form of Chan, Golub & LeVeque (1979)::

    M2 = Σᵢ M2ᵢ + Σᵢ nᵢ (x̄ᵢ − x̄)²,   M2ᵢ = varᵢ · (nᵢ − 1),   var = M2 / (n − 1)

over the fine groups ``i`` of each coarse group (two passes, no cancellation).
Fine groups dropped by ``min_cells`` are missing from a roll-up: aggregate the
fine level with ``min_cells=1`` and apply ``min_cells`` here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import anndata
import dask.array as da
import numpy as np
import pandas as pd

from cytodask.aggregation.graph import normalized
from cytodask.aggregation.groups import group_codes
from cytodask.aggregation.hierarchy import CellTypeHierarchy, as_hierarchy
from cytodask.aggregation.kernels import Normalize, group_sums
from cytodask.core.backend import array_module


def _sums(c: Any, codes: np.ndarray, n_groups: int, kept: np.ndarray) -> Any:
    xp = array_module(c)
    return group_sums(c, codes, n_groups, xp)[xp.asarray(kept)]


def _var(c: Any, v: Any, codes: np.ndarray, n_fine: np.ndarray, n_groups: int, kept: np.ndarray) -> Any:
    """k-way Chan merge of per-fine-group (n, mean, var) into the coarse groups ``kept``."""
    xp = array_module(c)
    valid = np.nonzero(codes >= 0)[0]
    g = codes[valid]
    n_i = xp.asarray(n_fine[valid], dtype=xp.float64)[:, None]
    c_i, v_i = xp.asarray(c)[valid], xp.asarray(v)[valid]
    n = xp.asarray(np.bincount(g, weights=n_fine[valid], minlength=n_groups))[:, None]
    mean = group_sums(c_i, g, n_groups, xp) / xp.where(n > 0, n, 1.0)
    m2_i = xp.where(n_i > 1, v_i * (n_i - 1.0), 0.0)  # var is NaN for single-cell groups: M2 = 0
    dev = c_i / n_i - mean[xp.asarray(g)]
    m2 = group_sums(m2_i + n_i * dev * dev, g, n_groups, xp)
    return (m2 / xp.where(n > 1, n - 1.0, xp.nan))[xp.asarray(kept)]


def _apply(fn: Any, arrays: list[Any], n_rows: int, *args: Any) -> Any:
    if not any(isinstance(a, da.Array) for a in arrays):
        return fn(*arrays, *args)
    arrays = [da.asarray(a).rechunk({0: -1}) for a in arrays]
    chunks = ((n_rows,), arrays[0].chunks[1])
    return da.map_blocks(fn, *arrays, *args, chunks=chunks, dtype=np.float64,
                         meta=array_module(arrays[0]).empty((0, 0), dtype=np.float64))


def _fine_level(h: CellTypeHierarchy, obs: pd.DataFrame, to: str) -> str:
    finer = h.levels[h.levels.index(to) + 1:]
    cands = [lvl for lvl in finer if h.column(lvl) in obs.columns]
    if not cands:
        raise ValueError(f"rollup: the pseudobulk has no column of a level finer than {to!r} "
                         f"({[h.column(lvl) for lvl in finer]}); its obs columns: {list(obs.columns)}")
    return cands[-1]


def rollup(pb: anndata.AnnData, hierarchy: CellTypeHierarchy | str, *, to: str, by: Sequence[str] | None = None,
           min_cells: int = 1, normalize: Normalize = "log2cp1e5") -> anndata.AnnData:
    """Roll the pseudobulk ``pb`` (obs: a fine level + other keys + ``n_cells``) up to level ``to``.

    Parameters
    ----------
    pb
        Output of :func:`~cytodask.aggregation.api.pseudobulk` or the pseudobulk stage.
    hierarchy
        Gives the fine → coarse map (from a table or :meth:`CellTypeHierarchy.validate`
        on the cells); without parents, the coarse column carried in ``pb.obs`` is used.
    to
        Target level (name or obs column).
    by
        Other group keys kept (e.g. ``["sample"]``); default ``pb.uns["pseudobulk"]["by"]``
        minus the level columns.
    min_cells
        Coarse groups with fewer cells are dropped.
    """
    h = as_hierarchy(hierarchy, pb.obs)
    to_level = h.level_of(to)
    if to_level is None:
        raise ValueError(f"rollup: {to!r} is not a level of the hierarchy {list(h.levels)} nor one of its columns")
    fine = _fine_level(h, pb.obs, to_level)
    fine_col, to_col = h.column(fine), h.column(to_level)
    try:
        mapping = h.mapping(fine, to_level)
    except ValueError:
        if to_col not in pb.obs.columns:
            raise
        mapping = CellTypeHierarchy((to_level, fine), {to_level: to_col, fine: fine_col},
                                    exclude={k: v for k, v in h.exclude.items() if k in (to_level, fine)}
                                    ).validate(pb.obs, where="rollup").mapping(fine, to_level)
    labels = pb.obs[fine_col].astype(str)
    excluded = labels.isin(h.exclude.get(fine, ())) | pb.obs[fine_col].isna()
    unmapped = sorted(set(labels[~excluded]) - set(mapping))
    if unmapped:
        raise ValueError(
            f"rollup: {fine} type(s) {unmapped} have no {to_level} parent; add them to the mapping or exclude them")
    coarse = labels.map(mapping).where(~excluded)
    coarse = coarse.where(~coarse.isin(h.exclude.get(to_level, ())))
    if by is None:
        by = pb.uns.get("pseudobulk", {}).get("by")
        if by is None:
            raise ValueError("rollup: pass by=[...] (the non-cell-type group keys, e.g. ['sample'])")
    others = [k for k in by if h.level_of(k) is None]
    frame = pb.obs[others].copy()
    frame[to_col] = coarse.to_numpy()
    keys = [to_col, *others]
    codes, table, _ = group_codes(frame, keys, where="rollup")
    n_fine = pb.obs["n_cells"].to_numpy().astype(np.int64)
    n_cells = np.bincount(codes[codes >= 0], weights=n_fine[codes >= 0], minlength=len(table)).astype(np.int64)
    kept = np.nonzero(n_cells >= min_cells)[0]
    if kept.size == 0:
        raise ValueError(f"rollup: all {len(table)} groups have fewer than min_cells={min_cells} cells")
    layers: dict[str, Any] = {}
    for key in ("counts", "count_nonzero"):
        if key in pb.layers:
            layers[key] = _apply(_sums, [pb.layers[key]], kept.size, codes, len(table), kept)
    if "count_nonzero" in layers:
        layers["count_nonzero"] = layers["count_nonzero"].astype(np.int64)
    if "mean" in pb.layers:
        n_out = np.asarray(n_cells[kept], dtype=np.float64)[:, None]
        layers["mean"] = layers["counts"] / (da.from_array(n_out) if isinstance(layers["counts"], da.Array) else
                                             array_module(layers["counts"]).asarray(n_out))
    if "var" in pb.layers:
        layers["var"] = _apply(_var, [pb.layers["counts"], pb.layers["var"]], kept.size, codes, n_fine,
                               len(table), kept)
    x = normalized(da.asarray(layers["counts"]), normalize)
    if not isinstance(layers["counts"], da.Array):
        x = x.compute()
    obs = table.iloc[kept].reset_index(drop=True)
    obs["n_cells"] = n_cells[kept]
    obs.index = ["|".join(map(str, r)) for r in obs[keys].itertuples(index=False)]
    for col in keys:
        obs[col] = pd.Categorical(obs[col])
    uns = {"pseudobulk": {"by": keys, "normalize": normalize, "rolled_up_from": fine_col}}
    return anndata.AnnData(X=x, obs=obs, var=pb.var.copy(), layers=layers, uns=uns)
