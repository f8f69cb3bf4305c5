"""What :func:`~cytodask.activity.infer.infer` accepts: coercion of the expression input and its checks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from cytodask.core.backend import is_sparse, to_numpy


def as_samples_by_genes(
    expr: Any, *, layer: str | None, genes: Sequence[str] | None, samples: Sequence[str] | None
) -> tuple[Any, pd.Index, pd.Index, pd.DataFrame | None]:
    """Samples x genes matrix (NumPy float or SciPy CSR), gene names, sample names, var."""
    if hasattr(expr, "dask") or type(expr).__module__.startswith("dask"):
        raise TypeError("infer() is in-memory; for Dask arrays use the cytodask activity graph (or .compute()).")
    if hasattr(expr, "obs_names") and hasattr(expr, "var_names"):  # AnnData
        mat = expr.X if layer is None else expr.layers[layer]
        if mat is None:
            raise ValueError("adata.X is empty; pass layer= naming the expression layer.")
        return as_matrix(mat), pd.Index(expr.var_names), pd.Index(expr.obs_names), expr.var
    if layer is not None:
        raise TypeError("layer= applies to AnnData input only.")
    if isinstance(expr, pd.DataFrame):
        try:
            values = expr.to_numpy(dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError("The expression DataFrame must be numeric, genes (index) x samples (columns).") from None
        return values.T, expr.index.astype(str), expr.columns.astype(str), None
    if not (isinstance(expr, np.ndarray) or is_sparse(expr)):
        raise TypeError(
            f"expr must be a DataFrame, AnnData, NumPy array or SciPy sparse matrix, not {type(expr).__name__}."
        )
    if genes is None:
        raise ValueError("A bare matrix needs genes= (the gene symbols of its gene axis).")
    genes = pd.Index([str(g) for g in genes])
    mat = as_matrix(expr)
    if mat.ndim != 2 or len(genes) not in mat.shape:
        raise ValueError(f"genes has {len(genes)} names but the matrix is {mat.shape}; one axis must match.")
    if mat.shape[1] != len(genes):  # genes x samples
        mat = as_matrix(mat.T)
    names = pd.Index([str(s) for s in samples]) if samples is not None else pd.Index(map(str, range(mat.shape[0])))
    if len(names) != mat.shape[0]:
        raise ValueError(f"samples has {len(names)} names for {mat.shape[0]} samples.")
    return mat, genes, names, None


def as_matrix(mat: Any) -> Any:
    if is_sparse(mat):
        import scipy.sparse as sp

        if not type(mat).__module__.startswith("scipy"):
            raise TypeError("infer() takes host (SciPy) sparse input; it moves data to the GPU itself.")
        mat = sp.csr_matrix(mat)  # shares a CSR input's arrays; the common genes are copied later
        return mat if mat.dtype.kind in "iuf" else mat.astype(np.float64)
    mat = np.asarray(to_numpy(mat))
    if mat.dtype.kind not in "biuf":
        raise TypeError(f"Expression values must be numeric, got dtype {mat.dtype}.")
    return mat.astype(np.float64, copy=False)


def check_values(mat: Any, input_kind: str) -> None:
    values = mat.data if is_sparse(mat) else mat
    if values.size == 0:
        return
    # one reduction each: a finite float64 sum proves there is no NaN/inf; count them only when it is not
    with np.errstate(over="ignore"):
        finite_sum = values.dtype.kind != "f" or bool(np.isfinite(values.sum(dtype=np.float64)))
    if not finite_sum:
        bad = int((~np.isfinite(values)).sum())
        if bad:
            raise ValueError(
                f"The expression holds {bad} NaN/inf values; impute or drop them "
                "(e.g. np.nan_to_num) before inference."
            )
    if input_kind == "counts" and values.dtype.kind in "if" and values.min() < 0:
        raise ValueError(
            "input_kind='counts' but the expression has negative values; pass raw counts, "
            "or input_kind='logexpr' / 'differential' for transformed data."
        )


def control_rows(control: Any, sample_names: pd.Index) -> np.ndarray | None:
    if control is None:
        return None
    ctrl = np.asarray(control)
    if ctrl.dtype == bool:
        if ctrl.shape != (len(sample_names),):
            raise ValueError(f"control mask has {ctrl.size} entries for {len(sample_names)} samples.")
        rows = np.flatnonzero(ctrl)
    elif ctrl.dtype.kind in "iu":
        rows = ctrl.ravel()
    else:
        pos = sample_names.get_indexer(ctrl.astype(str).ravel())
        if (pos < 0).any():
            raise ValueError(f"control names not among the samples: {ctrl.ravel()[pos < 0][:5].tolist()}.")
        rows = pos
    if rows.size == 0:
        raise ValueError("control selects no samples; pass at least one control sample.")
    return rows
