"""Inputs of the validation tests: a cells AnnData → its pseudobulk, pseudobulk activity and single-cell activity."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import anndata
import numpy as np
import pandas as pd

from cytodask.activity import infer
from cytodask.aggregation import pseudobulk


@dataclass
class Inputs:
    cells: anndata.AnnData
    pseudobulk: anndata.AnnData
    activity: anndata.AnnData
    single_cell: anndata.AnnData


def activity_of(counts: Any, genes: pd.Index, obs: pd.DataFrame, signature: Any = "CytoSig") -> anndata.AnnData:
    """Analytic ridge activity of rows of ``counts`` (rows × genes) as an AnnData with ``obs``."""
    res = infer(anndata.AnnData(X=counts, var=pd.DataFrame(index=genes)), signature, method="analytic")
    z = res.zscore
    return anndata.AnnData(X=z.to_numpy(dtype=np.float64), obs=obs.copy(), var=pd.DataFrame(index=z.columns))


def build(cells: anndata.AnnData, by: list[str], *, min_cells: int = 5, signature: Any = "CytoSig") -> Inputs:
    from cytodask.activity import resolve_symbols

    genes = resolve_symbols(cells.var_names, cells.var)
    pb = pseudobulk(cells, by=by, min_cells=min_cells)
    act = activity_of(np.asarray(pb.layers["counts"]), genes, pb.obs, signature)
    sc = activity_of(cells.X, genes, cells.obs, signature)
    return Inputs(cells, pb, act, sc)
