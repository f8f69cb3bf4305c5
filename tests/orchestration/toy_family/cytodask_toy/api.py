"""Public function of the toy family: a table of per-signature spread of activity."""

from __future__ import annotations

import anndata
import numpy as np
import pandas as pd

from cytodask.core.xp import array_module
from cytodask_toy.kernels import spread_block

COLUMNS = ("signature", "mean", "sd", "n_samples")


def signature_spread(adata: anndata.AnnData, *, min_samples: int = 2) -> pd.DataFrame:
    """Mean and sd of each signature's activity over the non-empty samples of ``adata``."""
    x = np.asarray(adata.X, dtype=np.float64)
    if "empty" in adata.obs:
        x = x[~adata.obs["empty"].to_numpy(dtype=bool)]
    if len(x) < min_samples:
        raise ValueError(f"signature_spread needs at least {min_samples} samples, got {len(x)}")
    mean, sd = spread_block(x, array_module(x))
    return pd.DataFrame({"signature": adata.var_names.astype(str), "mean": mean, "sd": sd,
                         "n_samples": np.full(adata.n_vars, len(x), dtype=np.int64)})
