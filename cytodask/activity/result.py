"""The in-memory activity result (:class:`ActivityResult`) and its AnnData form."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd


@dataclass
class ActivityResult:
    """Activity statistics, each signatures x samples.

    Attributes
    ----------
    beta, se, zscore, pvalue
        DataFrames, signatures x samples (grouped signatures expanded to every member).
    coverage
        Per signature: fraction of its (non-zero weight) genes found in the data.
    empty
        Per sample: True for samples with no counts / all zeros (beta = se = z = 0, p = 1).
    genes
        The common genes, in the order used (the permutation tables depend on it).
    params
        The parameters that produced the result.
    """

    beta: pd.DataFrame
    se: pd.DataFrame
    zscore: pd.DataFrame
    pvalue: pd.DataFrame
    coverage: pd.Series
    empty: pd.Series
    genes: pd.Index
    params: dict[str, Any] = field(default_factory=dict)

    def to_anndata(self) -> Any:
        """AnnData with obs = samples, var = signatures, X = z-scores, layers beta/se/pvalue."""
        import anndata as ad

        obs = pd.DataFrame({"empty": self.empty.to_numpy()}, index=self.zscore.columns.astype(str))
        var = pd.DataFrame(
            {"coverage": self.coverage.reindex(self.zscore.index).to_numpy()}, index=self.zscore.index.astype(str)
        )
        layers = {k: getattr(self, k).T.to_numpy() for k in ("beta", "se", "pvalue")}
        uns = {
            "params": uns_safe(self.params),
            "coverage": {str(k): float(v) for k, v in self.coverage.items()},
            "genes": np.asarray(self.genes, dtype=str),
        }
        return ad.AnnData(X=self.zscore.T.to_numpy(), obs=obs, var=var, layers=layers, uns=uns)


def uns_safe(params: dict[str, Any]) -> dict[str, Any]:
    """Params with None as "none", for h5ad/zarr writers."""
    return {k: ("none" if v is None else uns_safe(v) if isinstance(v, dict) else v) for k, v in params.items()}
