"""Per-cell gene-set scores against expression-matched control genes (Satija et al. 2015; scanpy ``score_genes``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import dask
import numpy as np
import pandas as pd

from cytodask.aggregation.kernels.normalize import NORMALIZE, Normalize
from cytodask.cancer.graph import gene_means_graph, row_blocks, scores_graph


def control_genes(gene_means: pd.Series, gene_list: Sequence[str], *, ctrl_size: int = 50, n_bins: int = 25,
                  random_state: int = 0) -> pd.Index:
    """The control genes of ``gene_list``: scanpy's ``score_genes`` draw, reproduced exactly.

    Genes are binned by their mean expression over the scored cells
    (``gene_means``, indexed by gene): ``bin = rank_min(mean) // round(G / (n_bins − 1))``
    over the ``G`` genes with a finite mean; from every bin holding a gene of
    the set, ``ctrl_size`` genes are drawn without replacement (all of them
    if the bin is smaller) with ``numpy.random.RandomState(random_state)``,
    and the set's own genes are removed. Equal to the control set of
    ``scanpy.tl.score_genes(..., ctrl_size, n_bins, random_state,
    ctrl_as_ref=True)`` on the same cells (scanpy ≥ 1.10).
    """
    rs = np.random.RandomState(random_state)
    avg = gene_means[np.isfinite(gene_means.to_numpy(dtype=float))]
    n_items = int(np.round(len(avg) / (n_bins - 1)))
    cut = avg.rank(method="min") // n_items
    genes = pd.Index(gene_list)
    control = pd.Index([], dtype="string")
    for c in np.unique(cut.loc[genes]):
        pool = cut[cut == c].index
        if ctrl_size < len(pool):
            pool = pool.to_series().sample(ctrl_size, random_state=rs).index
        control = control.union(pool.difference(genes))
    return control


def gene_names(expression: Any, gene_symbols: str | None) -> pd.Index:
    """Gene symbols of an AnnData: ``var_names``, or ``var[gene_symbols]``, or (Ensembl IDs) a symbol column."""
    from cytodask.activity.genes import resolve_symbols

    return pd.Index(resolve_symbols(expression.var.index, expression.var, symbol_column=gene_symbols).astype(str))


def score_cells(expression: Any, gene_sets: Mapping[str, Sequence[str]], *, cells: np.ndarray | None = None,
                normalize: Normalize = "log1p", ctrl_size: int = 50, n_bins: int = 25, random_state: int = 0,
                gene_symbols: str | None = None, batch_size: int = 10_000, backend: str | None = None,
                ) -> pd.DataFrame:
    """Score the selected cells on each gene set against expression-matched control genes.

    Parameters
    ----------
    expression
        AnnData of counts (cells × genes); ``X`` in memory (dense or CSR) or a
        Dask array of row blocks (streamed: never loaded whole).
    gene_sets
        ``{name: genes}``; genes absent from the data are left out (listed in
        ``attrs["missing"]``); a set with no gene present is an error.
    cells
        Boolean mask of the cells to score (default all); gene means for the
        control bins are taken over these cells.
    normalize
        Per-cell normalisation of counts (``log1p``: scanpy's
        ``normalize_total(target_sum=1e4)`` then ``log1p``; ``none`` for
        already-normalised data).
    ctrl_size, n_bins, random_state
        As in :func:`control_genes`.
    batch_size
        Cells per block for in-memory ``X`` (Dask input keeps its chunks).
    backend
        ``None`` (each block's own array module) or ``"cupy"`` (GPU kernels).

    Returns
    -------
    DataFrame
        Selected cells (obs names) × gene sets: the score
        ``mean(y[genes]) − mean(y[controls])`` per cell, equal to scanpy's
        ``tl.score_genes`` on the same normalised cells. ``attrs`` hold the
        genes and control genes used per set.
    """
    if normalize not in NORMALIZE:
        raise ValueError(f"normalize={normalize!r} is not one of {NORMALIZE}")
    names = gene_names(expression, gene_symbols)
    mask = np.ones(expression.n_obs, dtype=bool) if cells is None else np.asarray(cells, dtype=bool)
    if mask.shape != (expression.n_obs,):
        raise ValueError(f"cells must be a boolean mask of the {expression.n_obs} cells; got shape {mask.shape}")
    if not mask.any():
        raise ValueError("no cell selected to score; check the cell-type labels and cell_type_map")
    blocks = row_blocks(expression.X, batch_size)
    sums, n = dask.compute(gene_means_graph(blocks, mask, normalize=normalize, backend=backend))[0]
    means = pd.Series(sums / n, index=names)
    means = means[~means.index.duplicated()]
    sets, used, missing, controls = [], {}, {}, {}
    position = pd.Series(np.arange(len(names)), index=names)
    position = position[~position.index.duplicated()]
    for name, genes in gene_sets.items():
        present = pd.Index(list(genes)).intersection(means.index)
        missing[name] = [g for g in genes if g not in means.index]
        if len(present) == 0:
            raise ValueError(f"gene set {name!r}: none of {list(genes)} is among the genes of the data "
                             f"({'var[' + repr(gene_symbols) + ']' if gene_symbols else 'var_names'}); "
                             "pass gene_symbols= naming the var column of gene symbols")
        ctrl = control_genes(means, present, ctrl_size=ctrl_size, n_bins=n_bins, random_state=random_state)
        if len(ctrl) == 0:
            raise ValueError(f"gene set {name!r}: no control gene in its expression bins; use more genes or "
                             "fewer n_bins")
        sets.append((position[present].to_numpy(), position[ctrl].to_numpy()))
        used[name], controls[name] = list(present), list(ctrl)
    scores = scores_graph(blocks, mask, sets, normalize=normalize, backend=backend).compute()
    out = pd.DataFrame(scores, index=expression.obs_names[mask].astype(str), columns=list(gene_sets))
    out.attrs.update(genes=used, missing=missing, control_genes=controls, n_cells=int(mask.sum()))
    return out
