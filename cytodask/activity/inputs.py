"""What :func:`~cytodask.activity.api.infer` accepts: the input, in memory or Dask, coerced and checked."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from cytodask.core.backend import is_sparse, to_numpy


def as_samples_by_genes(
    expr: Any, *, layer: str | None, genes: Sequence[str] | None, samples: Sequence[str] | None,
    gene_axis: int | None = None,
) -> tuple[Any, pd.Index, pd.Index, pd.DataFrame | None]:
    """Samples x genes matrix (NumPy float, SciPy CSR, or a Dask array kept lazy), gene names, sample names, var.

    The one input path of :func:`~cytodask.activity.api.infer`, in memory and lazy. A bare
    matrix's gene axis is the one of ``genes``' length, or ``gene_axis`` when both axes have it.
    """
    if hasattr(expr, "obs_names") and hasattr(expr, "var_names"):  # AnnData
        mat = expr.X if layer is None else expr.layers[layer]
        if mat is None:
            raise ValueError("adata.X is empty; pass layer= naming the expression layer.")
        if gene_axis not in (None, 1):
            raise ValueError(f"gene_axis={gene_axis!r}: an AnnData's genes are its columns (var); drop gene_axis.")
        return _lazy_or_matrix(mat), pd.Index(expr.var_names), pd.Index(expr.obs_names), expr.var
    if layer is not None:
        raise TypeError("layer= applies to AnnData input only.")
    if isinstance(expr, pd.DataFrame):
        if gene_axis not in (None, 0):
            raise ValueError(f"gene_axis={gene_axis!r}: a DataFrame is genes (index) x samples; drop gene_axis.")
        try:
            values = expr.to_numpy(dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError("The expression DataFrame must be numeric, genes (index) x samples (columns).") from None
        return values.T, expr.index.astype(str), expr.columns.astype(str), None
    if not (isinstance(expr, np.ndarray) or is_sparse(expr) or is_dask(expr)):
        raise TypeError(
            f"expr must be a DataFrame, AnnData, NumPy array, SciPy sparse matrix or Dask array, "
            f"not {type(expr).__name__}."
        )
    if genes is None:
        kind = "A Dask array" if is_dask(expr) else "A bare matrix"
        raise ValueError(f"{kind} needs genes= (the gene symbols of its gene axis).")
    genes = pd.Index([str(g) for g in genes])
    mat = _lazy_or_matrix(expr)
    axis = _gene_axis(mat.shape, len(genes), gene_axis)
    if axis == 0:  # genes x samples
        mat = mat.T if is_dask(mat) else as_matrix(mat.T)
    names = pd.Index([str(s) for s in samples]) if samples is not None else pd.Index(map(str, range(mat.shape[0])))
    if len(names) != mat.shape[0]:
        raise ValueError(f"samples has {len(names)} names for {mat.shape[0]} samples.")
    return mat, genes, names, None


def _gene_axis(shape: tuple[int, ...], n_genes: int, gene_axis: int | None) -> int:
    """The matrix axis holding the genes; refuses a shape that cannot tell (both axes match ``genes``)."""
    if len(shape) != 2:
        raise ValueError(f"expr must be 2-D (samples x genes), got shape {shape}.")
    if gene_axis is not None:
        if gene_axis not in (0, 1):
            raise ValueError(f"gene_axis={gene_axis!r}: use 1 (samples x genes, e.g. cells x genes) or 0 "
                             "(genes x samples).")
        if shape[gene_axis] != n_genes:
            raise ValueError(f"gene_axis={gene_axis} has {shape[gene_axis]} entries but genes has {n_genes} names.")
        return gene_axis
    fits = [axis for axis in (1, 0) if shape[axis] == n_genes]
    if not fits:
        raise ValueError(f"genes has {n_genes} names but the matrix is {shape}; one axis must match.")
    if len(fits) == 2:
        raise ValueError(
            f"The matrix is {shape[0]} x {shape[1]} and genes has {n_genes} names, so either axis could be the "
            "genes; pass gene_axis=1 for samples x genes (cells x genes) or gene_axis=0 for genes x samples, "
            "or pass a DataFrame (genes x samples) or an AnnData (cells x genes) instead."
        )
    return fits[0]


def is_dask(x: Any) -> bool:
    """True for a Dask array (kept lazy: :func:`~cytodask.activity.api.infer` then returns a lazy result)."""
    return type(x).__module__.startswith("dask") and hasattr(x, "dask")


def _lazy_or_matrix(mat: Any) -> Any:
    return mat if is_dask(mat) else as_matrix(mat)


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
