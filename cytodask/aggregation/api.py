"""``pseudobulk()``: the array-level aggregation function (same kernels as the stage).

>>> pb = pseudobulk(adata, by=["cell_type_l2", "sample"], stats=("sum", "mean", "var"))  # doctest: +SKIP
>>> pb.layers["counts"], pb.layers["mean"], pb.layers["var"], pb.obs["n_cells"]          # doctest: +SKIP

Lazy in, lazy out: a Dask-backed AnnData gives Dask layers (the small group
table is computed eagerly from obs); in-memory, backed AnnData and atlas
store paths are aggregated block by block (out of core) and returned in memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import anndata
import dask
import numpy as np

from cytodask.aggregation.graph import aggregate_layers, normalized
from cytodask.aggregation.groups import group_obs, group_table, missing_columns_error
from cytodask.aggregation.hierarchy import CellTypeHierarchy, as_hierarchy
from cytodask.aggregation.inputs import as_blocks
from cytodask.aggregation.kernels import Normalize, Stat, check_stats, normalize_sums
from cytodask.core.compat import renamed_kwargs


@renamed_kwargs(block_cells="batch_size")
def pseudobulk(
    data: Any,
    by: Sequence[str] | str,
    *,
    layer: str | None = None,
    min_cells: int = 10,
    normalize: Normalize = "log2cp1e5",
    stats: Sequence[Stat] | Stat = ("sum",),
    exclude: dict[str, list[str]] | None = None,
    carry: Sequence[str] | None = None,
    hierarchy: CellTypeHierarchy | str | None = None,
    batch_size: int = 10_000,
) -> anndata.AnnData:
    """Pseudobulk of ``data`` per group of obs columns.

    Parameters
    ----------
    data
        AnnData (in memory, backed, or Dask-backed), an atlas store path (or
        ``.h5ad`` path, read backed), or an opened atlas.
    by
        obs columns defining groups; with ``hierarchy``, level names (``"L2"``) too.
    layer
        Counts layer instead of ``X``; ``"raw"`` reads ``adata.raw`` (``.raw.X`` with ``.raw.var``).
    min_cells
        Groups with fewer cells are dropped (listed in ``uns["pseudobulk"]``).
    normalize
        ``X`` = normalized sums: ``log2cp1e5`` = log2(S/T · 1e5 + 1), ``log2cp1e6``,
        ``log1p`` = ln(1 + S/T · 1e4) or ``none`` (T = group total over genes).
    stats
        Extra layers: ``mean`` = S/n, ``var`` (ddof 1 like ``scanpy.get.aggregate``:
        for integer data (n Q − S²)/(n (n − 1)) from exact ``(n, S, Q = Σx²)``,
        identical for any blocks; otherwise M2/(n − 1) from per-block ``(n, S, M2)``
        merged with Chan, Golub & LeVeque 1979) and ``count_nonzero``. ``counts``
        (= sums) is always written.
    exclude
        ``{column: [labels]}`` of cells to leave out.
    carry
        obs columns constant within each group to copy to the output.
    hierarchy
        A :class:`~cytodask.aggregation.hierarchy.CellTypeHierarchy`, an atlas
        name (``"cima"``) or a mapping table path; checked for conflicts first.
    batch_size
        Cells per block for in-memory/backed inputs.

    Returns
    -------
    AnnData: obs = group keys (+ carry) + ``n_cells``; X = normalized sums
    (float32); layers ``counts`` (float64) and the asked statistics. Dask
    arrays when ``data`` was Dask-backed, NumPy (or CuPy) arrays otherwise.
    ``uns["pseudobulk"]["counts_layer"] = "counts"`` tells
    :func:`cytodask.activity.infer` to read the counts, not the normalized X:
    ``infer(pseudobulk(adata, by=...))`` normalizes once.
    """
    stats_ = check_stats(("sum", *([stats] if isinstance(stats, str) else stats)))
    normalize_sums(np.zeros((1, 1)), np.ones(1), normalize, np)  # validate the method name first
    src = as_blocks(data, layer=layer, batch_size=batch_size)
    hier = as_hierarchy(hierarchy, src.obs) if hierarchy is not None else None
    codes, table, n_cells, kept, report = group_table(src.obs, by, min_cells=min_cells, exclude=exclude,
                                                      hierarchy=hier)
    by_cols = report.pop("by")
    carry = [c for c in (carry or []) if c not in by_cols]
    absent = [c for c in carry if c not in src.obs.columns]
    if absent:
        raise missing_columns_error(absent, list(src.obs.columns), "pseudobulk carry")
    layers = aggregate_layers(src.x, codes, kept, stats_)
    x = normalized(layers["counts"], normalize)
    obs = group_obs(src.obs, codes, table, n_cells, kept, by_cols, carry, "pseudobulk")
    if not src.lazy:
        x, layers = dask.compute(x, layers)
    uns = {"pseudobulk": {"by": by_cols, "normalize": normalize, "stats": list(stats_), "min_cells": min_cells,
                          "counts_layer": "counts", **report}}
    return anndata.AnnData(X=x, obs=obs, var=src.var.copy(), layers=dict(layers), uns=uns)
