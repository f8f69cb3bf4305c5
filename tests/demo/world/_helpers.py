"""Independent checks on generated counts: pseudobulk log-CPM and response scores from the CytoSig columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from cytodask.demo.spec import cytosig


def pseudobulk(counts: sp.csr_matrix, obs: pd.DataFrame, by: list[str], symbols: list[str],
               min_cells: int = 5) -> tuple[pd.DataFrame, pd.DataFrame]:
    """log2(CPM + 1) per group (rows) x gene (columns), and the group keys with n_cells."""
    keys = obs[by].astype(str).agg("|".join, axis=1)
    codes, uniques = pd.factorize(keys)
    onehot = sp.csr_matrix((np.ones(len(codes)), (codes, np.arange(len(codes)))), shape=(len(uniques), len(codes)))
    sums = np.asarray((onehot @ counts).todense(), dtype=np.float64)
    n = np.bincount(codes, minlength=len(uniques))
    keep = n >= min_cells
    cpm = sums[keep] / sums[keep].sum(axis=1, keepdims=True) * 1e6
    groups = obs.assign(_k=keys).drop_duplicates("_k").set_index("_k").loc[uniques[keep], by].reset_index(drop=True)
    for column in by:
        if isinstance(groups[column].dtype, pd.CategoricalDtype):
            groups[column] = groups[column].astype(str)
    groups["n_cells"] = n[keep]
    return pd.DataFrame(np.log2(cpm + 1.0), columns=symbols), groups


def response_score(logcpm: pd.DataFrame, signature: str, n_genes: int = 40) -> np.ndarray:
    """Mean log-CPM of the ``n_genes`` genes with the largest positive CytoSig weight, minus the most negative."""
    column = cytosig()[signature]
    up = column.nlargest(n_genes).index
    down = column.nsmallest(n_genes).index
    return logcpm[up].mean(axis=1).to_numpy() - logcpm[down].mean(axis=1).to_numpy()


def symbols(spec) -> list[str]:
    from cytodask.demo.world.genes import gene_symbols

    return list(gene_symbols(spec.n_genes))
