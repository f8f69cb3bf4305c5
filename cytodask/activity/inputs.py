"""What :func:`~cytodask.activity.api.infer` accepts: the input, in memory or Dask, coerced and checked."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from cytodask.core.backend import is_sparse, to_numpy
from cytodask.ingest.base import anndata_matrix

# input_kind="counts" values that are not integers and stay below this are log expression (log2 CP1e5 + 1
# peaks at 16.6, ln CP1e4 + 1 at 9.2, log2 CPM + 1 at 19.9); raw counts of a real sample reach far higher
LOG_SCALE_MAX = 25.0
_PEEK_VALUES = 1 << 17  # stored values looked at to tell counts from transformed data (a cheap, fixed sample)


DEFAULT_N_RAND = 1000


def resolve_method(method: str | None, n_rand: Any, *, where: str) -> tuple[str, int | None]:
    """The one default of every activity entry point: ``(method, n_rand)``.

    ``method=None`` is the closed form (``"analytic"``, the n_rand → ∞ limit of the permutation
    test) unless ``n_rand`` is given, which asks for permutations. ``"permutation"`` without
    ``n_rand`` runs :data:`DEFAULT_N_RAND`. ``"analytic"`` with ``n_rand`` warns that no
    permutations run (``n_rand`` is then ``None``: nothing to record).
    """
    if method is None:
        method = "analytic" if n_rand is None else "permutation"
    if method not in ("permutation", "analytic"):
        raise ValueError(f"method={method!r} is not one of 'permutation', 'analytic'.")
    if method == "analytic":
        if n_rand is not None:
            warnings.warn(f"{where}: n_rand={n_rand!r} is not used by method='analytic' (the closed form is the "
                          "n_rand → ∞ limit of the permutation test); drop n_rand, or pass method='permutation' to "
                          "run n_rand permutations", UserWarning, stacklevel=3)
        return method, None
    n_rand = DEFAULT_N_RAND if n_rand is None else n_rand
    if isinstance(n_rand, bool) or not isinstance(n_rand, (int, np.integer)) or n_rand < 1:
        raise ValueError(f"n_rand must be a positive integer for method='permutation', got {n_rand!r}.")
    return method, int(n_rand)


def is_anndata(x: Any) -> bool:
    return hasattr(x, "obs_names") and hasattr(x, "var_names")


def counts_layer(expr: Any, layer: str | None, input_kind: str) -> str | None:
    """The layer to read: ``layer`` as given, or the counts layer of a normalized pseudobulk read as counts.

    :func:`cytodask.aggregation.pseudobulk` writes normalized sums to X and the summed counts to
    ``layers["counts"]``, and says so in ``uns["pseudobulk"]["counts_layer"]`` (older outputs: a
    ``normalize`` other than ``"none"``); ``infer(pseudobulk(adata, ...))`` then reads the counts,
    so chaining the two public functions does not normalize twice.
    """
    if layer is not None or input_kind != "counts" or not is_anndata(expr):
        return layer
    meta = expr.uns.get("pseudobulk") if hasattr(expr, "uns") else None
    if not isinstance(meta, dict):
        return None
    name = meta.get("counts_layer", "counts" if meta.get("normalize", "none") != "none" else None)
    return str(name) if name is not None and name in expr.layers else None


def as_samples_by_genes(
    expr: Any, *, layer: str | None, genes: Sequence[str] | None, samples: Sequence[str] | None,
    gene_axis: int | None = None,
) -> tuple[Any, pd.Index, pd.Index, pd.DataFrame | None]:
    """Samples x genes matrix (NumPy float, SciPy CSR, or a Dask array kept lazy), gene names, sample names, var.

    The one input path of :func:`~cytodask.activity.api.infer`, in memory and lazy. A bare
    matrix's gene axis is the one of ``genes``' length, or ``gene_axis`` when both axes have it.
    """
    if is_anndata(expr):
        mat, var = anndata_matrix(expr, layer)  # X, a layer, or layer="raw": .raw.X with .raw.var
        if gene_axis not in (None, 1):
            raise ValueError(f"gene_axis={gene_axis!r}: an AnnData's genes are its columns (var); drop gene_axis.")
        return _lazy_or_matrix(mat), pd.Index(var.index), pd.Index(expr.obs_names), var
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
    if input_kind == "counts":
        check_counts_kind(mat)


def check_counts_kind(mat: Any) -> None:
    """Refuse log-scale and warn about other non-integer values read as counts (a fixed sample of the values).

    ``input_kind="counts"`` scales every sample to ``scale`` and takes log2: data that are
    normalized already (e.g. a pseudobulk's X, scanpy's ``log1p`` X) would be normalized twice.
    Non-integer values below :data:`LOG_SCALE_MAX` are log expression: refused. Larger
    non-integer values (ambient-corrected or scaled counts) get a warning.
    """
    if is_sparse(mat):
        peek = mat.data[:_PEEK_VALUES]
    else:
        peek = np.asarray(mat[: max(1, _PEEK_VALUES // max(mat.shape[1], 1))]).ravel()
    if peek.size == 0 or peek.dtype.kind != "f":
        return
    fractional = peek != np.floor(peek)
    if not fractional.any():
        return
    top, example = float(peek.max()), float(peek[fractional][0])
    fix = ("pass the raw counts (layer='counts' for an AnnData that holds them, as a pseudobulk does; "
           "layer='raw' for adata.raw), or input_kind='logexpr' for log-normalized expression")
    if top < LOG_SCALE_MAX:
        raise ValueError(
            f"input_kind='counts' but the values look log-normalized (non-integer, e.g. {example:.4g}, at most "
            f"{top:.4g}): normalizing them again would double-normalize; {fix}."
        )
    warnings.warn(f"input_kind='counts' but the values are not integers (e.g. {example:.4g}); they are scaled "
                  f"and log-transformed as counts. If they are normalized already, {fix}.", UserWarning, stacklevel=4)


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
