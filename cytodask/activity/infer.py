"""In-memory activity inference (:func:`infer`, :func:`score`) and the block kernels it runs.

:func:`infer` = :func:`prepare_signature` (the small shared operand: common
genes and projection matrix) + :func:`gene_mean_partial` (the gene-mean pass,
only for ``counts`` / ``logexpr``) + :func:`activity_block` (one block of
samples). A Dask graph calls the same three on blocks of cells; :func:`infer` is the
one-block case.
"""

from __future__ import annotations

import hashlib
import os
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Literal

import numpy as np
import pandas as pd

from cytodask.core.backend import check_threads, is_sparse, resolve_backend, to_device, to_numpy

from .genes import GeneMatch, match_genes, resolve_symbols
from .preprocess import center_genes, gene_sum_partial, normalize_counts, normalize_sparse, zscore_columns
from .ridge import Method, RidgeStats, projection_matrix, ridge_analytic, ridge_permutation, ridge_sparse
from .rng import RNGName, permutation_table
from .signatures import SignatureLike, expand_groups, group_signatures, load_signature

InputKind = Literal["counts", "logexpr", "differential"]
_PROJECTIONS_LOCK = threading.Lock()


@dataclass(frozen=True)
class PreparedSignature:
    """What every block needs: the common genes and ``T`` (put in a graph once).

    ``names`` are the signature names reported; ``groups`` maps each row of
    ``T`` (a group name when grouped) to the signatures it stands for.
    """

    T: Any
    match: GeneMatch
    groups: dict[str, list[str]]
    names: list[str]


def prepare_signature(
    signature: SignatureLike,
    expr_genes: Sequence[str],
    *,
    lam: float = 5e5,
    group: bool | None = None,
    group_threshold: float = 0.9,
    aliases: bool = False,
    ignore_case: bool = False,
    min_genes: int = 100,
    totals: np.ndarray | Callable[[], np.ndarray] | None = None,
    signature_dir: str | os.PathLike | None = None,
    xp: ModuleType = np,
) -> PreparedSignature:
    """Load, group (default: on except for CytoSig), match genes, z-score and project the signature."""
    sig = load_signature(signature, signature_dir=signature_dir)
    if group is None:
        group = _signature_label(signature) != "CytoSig"
    if group:
        used, groups = group_signatures(sig, group_threshold)
    else:
        used, groups = sig, {n: [n] for n in sig.columns}
    match = match_genes(expr_genes, sig, aliases=aliases, ignore_case=ignore_case, totals=totals, min_genes=min_genes)
    x = zscore_columns(xp.asarray(used.to_numpy()[match.sig_idx]), xp=xp)
    T = _cached_projection(x, lam) if xp is np else projection_matrix(x, lam, xp=xp)
    return PreparedSignature(T, match, groups, list(sig.columns))


_PROJECTIONS: OrderedDict[tuple[str, tuple[int, ...], float], np.ndarray] = OrderedDict()
_PROJECTIONS_KEPT = 2  # SecAct's T is 1,170 x ~8,000 float64 (~74 MB)


def _cached_projection(x: np.ndarray, lam: float) -> np.ndarray:
    """:func:`~cytodask.activity.ridge.projection_matrix`, reused for the same z-scored signature and lam.

    The key is a hash of ``x`` itself (its bytes, shape) and ``lam``, so a changed signature or
    gene set can never meet a stale T; hashing costs a fraction of the Cholesky and the two
    k x k x genes products it saves (about 1 s for SecAct). Returned arrays are read-only.
    """
    key = (hashlib.blake2b(np.ascontiguousarray(x).tobytes(), digest_size=16).hexdigest(), x.shape, float(lam))
    with _PROJECTIONS_LOCK:
        hit = _PROJECTIONS.get(key)
        if hit is not None:
            _PROJECTIONS.move_to_end(key)
            return hit
    T = projection_matrix(x, lam, xp=np)
    T.setflags(write=False)
    with _PROJECTIONS_LOCK:
        _PROJECTIONS[key] = T
        while len(_PROJECTIONS) > _PROJECTIONS_KEPT:
            _PROJECTIONS.popitem(last=False)
    return T


def gene_mean_partial(
    block: Any, totals: Any | None, *, input_kind: InputKind = "counts", scale: float = 1e5, xp: ModuleType = np
) -> tuple[Any, int]:
    """Gene-mean pass over a cells x common-genes block: ``(sum, n)``, summed across blocks.

    ``totals`` are the cells' library sizes over all genes (``counts`` only);
    empty cells are not counted. ``gene_mean = sum / n`` feeds :func:`activity_block`.
    """
    expr = _normalised(block, totals, input_kind, scale, xp)
    return gene_sum_partial(expr, ~_empty(block, totals, input_kind, xp), axis=0, xp=xp)


def activity_block(
    T: Any,
    block: Any,
    *,
    totals: Any | None = None,
    gene_mean: Any | None = None,
    input_kind: InputKind = "counts",
    scale: float = 1e5,
    method: Method = "permutation",
    perm_table: Any | None = None,
    batch_size: int | None = None,
    threads: int = 1,
    normalised: Any | None = None,
    xp: ModuleType = np,
) -> tuple[RidgeStats, Any]:
    """Activity of one block of samples (cells x common genes, dense or CSR, on ``xp``'s device).

    Normalises (``counts``: with ``totals``, library sizes over all genes),
    subtracts ``gene_mean`` (None: no centring), z-scores each sample over the
    genes and runs the ridge test. Sparse blocks stay sparse (:func:`~cytodask.activity.ridge.ridge_sparse`).
    ``normalised``, when given, is this block already normalised (as for a
    gene-mean pass over the same block), so it is not normalised again.

    Returns
    -------
    stats
        k x cells beta, se, zscore, pvalue.
    empty
        Boolean per cell: no counts (``counts``) or all zero; their beta, se
        and z are 0 and p is 1.
    """
    if method == "permutation" and perm_table is None:
        raise ValueError("method='permutation' needs perm_table (cytodask.activity.rng.permutation_table).")
    empty = _empty(block, totals, input_kind, xp)
    expr = _normalised(block, totals, input_kind, scale, xp) if normalised is None else normalised
    if is_sparse(expr):
        stats = ridge_sparse(
            T, expr, gene_mean=gene_mean, method=method, perm_table=perm_table, batch_size=batch_size,
            threads=threads, xp=xp,
        )
    else:
        y = expr.T if gene_mean is None else center_genes(expr.T, gene_mean=gene_mean, xp=xp)
        y = zscore_columns(y, xp=xp)
        if method == "analytic":
            stats = ridge_analytic(T, y, xp=xp)
        else:
            stats = ridge_permutation(T, y, perm_table, batch_size=batch_size, xp=xp)
    if bool(empty.any()):
        keep = ~empty[None, :]
        stats = RidgeStats(*(xp.where(keep, a, 0.0) for a in stats[:3]), xp.where(keep, stats.pvalue, 1.0))
    return stats, empty


def _normalised(block: Any, totals: Any, input_kind: str, scale: float, xp: ModuleType) -> Any:
    if input_kind != "counts":
        return block.astype(xp.float64) if is_sparse(block) else xp.asarray(block, dtype=xp.float64)
    if totals is None:
        raise ValueError("input_kind='counts' needs totals (library sizes over all genes) for each cell.")
    if is_sparse(block):
        return normalize_sparse(block, totals, scale=scale, xp=xp)
    return normalize_counts(xp.asarray(block).T, totals, scale=scale, xp=xp).T


def _empty(block: Any, totals: Any, input_kind: str, xp: ModuleType) -> Any:
    if input_kind == "counts" and totals is not None:
        return xp.asarray(totals) == 0
    sq = block.power(2) if is_sparse(block) else xp.asarray(block) ** 2
    return xp.asarray(sq.sum(axis=1)).ravel() == 0


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
            "params": _uns_safe(self.params),
            "coverage": {str(k): float(v) for k, v in self.coverage.items()},
            "genes": np.asarray(self.genes, dtype=str),
        }
        return ad.AnnData(X=self.zscore.T.to_numpy(), obs=obs, var=var, layers=layers, uns=uns)


def infer(
    expr: Any,
    signature: SignatureLike = "CytoSig",
    *,
    method: Method = "permutation",
    n_rand: int = 1000,
    seed: int = 0,
    rng: RNGName = "srand",
    lam: float = 5e5,
    group: bool | None = None,
    group_threshold: float = 0.9,
    input_kind: InputKind = "counts",
    scale: float = 1e5,
    min_genes: int = 100,
    backend: str = "auto",
    layer: str | None = None,
    genes: Sequence[str] | None = None,
    samples: Sequence[str] | None = None,
    symbol_column: str | None = None,
    control: Any | None = None,
    aliases: bool = False,
    ignore_case: bool = False,
    signature_dir: str | os.PathLike | None = None,
    batch_size: int | None = None,
    threads: int | None = None,
) -> ActivityResult:
    """Infer signalling activity by ridge regression on a signature (SecAct method).

    Parameters
    ----------
    expr
        DataFrame (genes x samples); AnnData (cells x genes; ``X`` or ``layer``,
        sparse kept sparse); NumPy / SciPy matrix with ``genes=`` (cells x
        genes, or genes x samples when only the first axis matches ``genes``); or a
        Dask array of cells x genes with ``genes=`` — then the result is lazy
        (:class:`cytodask.activity.lazy.LazyActivity`; ``.compute()`` gives this class).
    signature
        ``"CytoSig"``, ``"SecAct"``, a file path or a DataFrame (genes x signatures).
    method
        ``"permutation"`` (``n_rand`` permutations, R SecAct's test) or
        ``"analytic"`` (exact permutation moments in closed form).
    n_rand, seed, rng
        Permutations, their seed and generator (``"srand"`` reproduces R SecAct).
    lam
        Ridge penalty.
    group, group_threshold
        Merge signatures correlated above the threshold (None: on, except for CytoSig).
    input_kind
        ``"counts"`` (scale to ``scale`` per sample, log2(x+1), centre genes),
        ``"logexpr"`` (centre genes) or ``"differential"`` (as is).
    control
        Control samples (boolean mask, positions or names): genes are centred on
        their mean instead of the mean over all samples.
    min_genes
        Fewest common genes accepted.
    backend
        ``"auto"``, ``"numpy"`` or ``"cupy"``.
    symbol_column, aliases, ignore_case
        Gene matching (:mod:`cytodask.activity.genes`).
    batch_size
        Permutations per matrix product (default: ~256 MB batches).
    threads
        Threads for sparse NumPy input in permutation mode (default: all
        available cores); results do not depend on it.

    Returns
    -------
    ActivityResult
    """
    _check_choice("method", method, ("permutation", "analytic"))
    _check_choice("input_kind", input_kind, ("counts", "logexpr", "differential"))
    if method == "permutation" and (not isinstance(n_rand, (int, np.integer)) or n_rand < 1):
        raise ValueError(f"n_rand must be a positive integer for method='permutation', got {n_rand!r}.")
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale}.")
    if type(expr).__module__.startswith("dask"):  # lazy in, lazy out
        from cytodask.activity.lazy import infer_lazy

        if genes is None:
            raise ValueError("A Dask array needs genes= (the gene symbols of its columns).")
        return infer_lazy(expr, genes, signature, method=method, n_rand=n_rand, seed=seed, rng=rng, lam=lam,  # type: ignore[return-value]
                          group=group, input_kind=input_kind, scale=scale, min_genes=min_genes, samples=samples,
                          signature_dir=signature_dir)
    xp = resolve_backend(backend)  # type: ignore[arg-type]
    mat, gene_names, sample_names, var = _as_samples_by_genes(expr, layer=layer, genes=genes, samples=samples)
    _check_values(mat, input_kind)
    if group is None:
        group = _signature_label(signature) != "CytoSig"
    prep = prepare_signature(
        signature, resolve_symbols(gene_names, var, symbol_column=symbol_column), lam=lam, group=group,
        group_threshold=group_threshold, aliases=aliases, ignore_case=ignore_case, min_genes=min_genes,
        totals=lambda: np.asarray(mat.sum(axis=0), dtype=np.float64).ravel(), signature_dir=signature_dir, xp=xp,
    )
    block = to_device(mat[:, prep.match.expr_idx], xp)
    totals = xp.asarray(np.asarray(mat.sum(axis=1), dtype=np.float64).ravel()) if input_kind == "counts" else None
    norm = _normalised(block, totals, input_kind, scale, xp)  # once, for the gene means and the ridge
    gene_mean = None
    if input_kind != "differential":
        gene_mean = _gene_means(norm, ~_empty(block, totals, input_kind, xp), _control_rows(control, sample_names), xp)
    table = None
    if method == "permutation":
        table = xp.asarray(permutation_table(prep.match.n_genes, n_rand, seed, rng))
    stats, empty = activity_block(
        prep.T, block, totals=totals, gene_mean=gene_mean, input_kind=input_kind, scale=scale,
        method=method, perm_table=table, batch_size=batch_size, threads=check_threads(threads), normalised=norm,
        xp=xp,
    )
    frames = {
        key: expand_groups(pd.DataFrame(to_numpy(v), index=list(prep.groups), columns=sample_names),
                           prep.groups, prep.names)
        for key, v in stats._asdict().items()
    }
    params = {
        "method": method, "n_rand": n_rand if method == "permutation" else 0, "seed": seed, "rng": rng,
        "lam": lam, "group": bool(group), "group_threshold": group_threshold, "input_kind": input_kind,
        "scale": scale, "min_genes": min_genes, "backend": "numpy" if xp is np else "cupy",
        "signature": _signature_label(signature), "n_genes": prep.match.n_genes, "aliases": aliases,
        "ignore_case": ignore_case, "centred": gene_mean is not None,
        "groups": {g: m for g, m in prep.groups.items() if len(m) > 1},
    }
    return ActivityResult(
        **frames, coverage=prep.match.coverage, empty=pd.Series(to_numpy(empty), index=sample_names, name="empty"),
        genes=prep.match.genes, params=params,
    )


def _gene_means(norm: Any, valid: Any, ctrl: np.ndarray | None, xp: ModuleType) -> Any:
    """Gene means of normalised expression over the non-empty (control) samples; None for a lone sample."""
    if ctrl is None and norm.shape[0] == 1:
        warnings.warn(
            "A single sample and no control: genes are not centred (as secactpy). Pass control= or "
            "input_kind='differential'.", UserWarning, stacklevel=3,
        )
        return None
    rows = slice(None) if ctrl is None else xp.asarray(ctrl)
    sums, n = gene_sum_partial(norm[rows], valid[rows], axis=0, xp=xp)
    if n == 0:
        raise ValueError("Every (control) sample is empty; there is nothing to centre the genes on.")
    return sums / n


def score(
    adata: Any,
    signature: SignatureLike = "CytoSig",
    *,
    key_added: str | None = None,
    layer: str | None = None,
    copy: bool = False,
    **kwargs: Any,
) -> Any:
    """Scanpy-style :func:`infer` on an AnnData: ``adata.obsm[key_added]`` = z-scores (cells x signatures).

    ``adata.uns[key_added]`` holds ``params``, ``coverage`` and ``empty`` cells;
    ``key_added`` defaults to ``"activity_<signature>"``. Returns the AnnData when ``copy``.
    """
    if not hasattr(adata, "obsm") or not hasattr(adata, "var_names"):
        raise TypeError(f"score() takes an AnnData, not {type(adata).__name__}; use infer() for other inputs.")
    adata = adata.copy() if copy else adata
    res = infer(adata, signature, layer=layer, **kwargs)
    key = key_added or f"activity_{_signature_label(signature)}"
    adata.obsm[key] = res.zscore.T.set_axis(adata.obs_names, axis=0)
    adata.uns[key] = {
        "params": _uns_safe(res.params),
        "empty": res.empty.to_numpy(),
        "coverage": {str(k): float(v) for k, v in res.coverage.items()},
    }
    return adata if copy else None


def _check_choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not one of {', '.join(map(repr, allowed))}.")


def _signature_label(signature: SignatureLike) -> str:
    if isinstance(signature, str) and signature.lower() in ("cytosig", "secact"):
        return "CytoSig" if signature.lower() == "cytosig" else "SecAct"
    if isinstance(signature, (str, os.PathLike)):
        return os.path.basename(os.fspath(signature)).split(".")[0]
    return "custom"


def _as_samples_by_genes(
    expr: Any, *, layer: str | None, genes: Sequence[str] | None, samples: Sequence[str] | None
) -> tuple[Any, pd.Index, pd.Index, pd.DataFrame | None]:
    """Samples x genes matrix (NumPy float or SciPy CSR), gene names, sample names, var."""
    if hasattr(expr, "dask") or type(expr).__module__.startswith("dask"):
        raise TypeError("infer() is in-memory; for Dask arrays use the cytodask activity graph (or .compute()).")
    if hasattr(expr, "obs_names") and hasattr(expr, "var_names"):  # AnnData
        mat = expr.X if layer is None else expr.layers[layer]
        if mat is None:
            raise ValueError("adata.X is empty; pass layer= naming the expression layer.")
        return _matrix(mat), pd.Index(expr.var_names), pd.Index(expr.obs_names), expr.var
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
    mat = _matrix(expr)
    if mat.ndim != 2 or len(genes) not in mat.shape:
        raise ValueError(f"genes has {len(genes)} names but the matrix is {mat.shape}; one axis must match.")
    if mat.shape[1] != len(genes):  # genes x samples
        mat = _matrix(mat.T)
    names = pd.Index([str(s) for s in samples]) if samples is not None else pd.Index(map(str, range(mat.shape[0])))
    if len(names) != mat.shape[0]:
        raise ValueError(f"samples has {len(names)} names for {mat.shape[0]} samples.")
    return mat, genes, names, None


def _matrix(mat: Any) -> Any:
    if is_sparse(mat):
        import scipy.sparse as sp

        if not type(mat).__module__.startswith("scipy"):
            raise TypeError("infer() takes host (SciPy) sparse input; it moves data to the GPU itself.")
        return sp.csr_matrix(mat, dtype=np.float64)
    mat = np.asarray(to_numpy(mat))
    if mat.dtype.kind not in "biuf":
        raise TypeError(f"Expression values must be numeric, got dtype {mat.dtype}.")
    return mat.astype(np.float64, copy=False)


def _check_values(mat: Any, input_kind: str) -> None:
    values = mat.data if is_sparse(mat) else mat
    bad = ~np.isfinite(values)
    if bad.any():
        raise ValueError(
            f"The expression holds {int(bad.sum())} NaN/inf values; impute or drop them "
            "(e.g. np.nan_to_num) before inference."
        )
    if input_kind == "counts" and (values < 0).any():
        raise ValueError(
            "input_kind='counts' but the expression has negative values; pass raw counts, "
            "or input_kind='logexpr' / 'differential' for transformed data."
        )


def _control_rows(control: Any, sample_names: pd.Index) -> np.ndarray | None:
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


def _uns_safe(params: dict[str, Any]) -> dict[str, Any]:
    """Params with None as "none", for h5ad/zarr writers."""
    return {k: ("none" if v is None else _uns_safe(v) if isinstance(v, dict) else v) for k, v in params.items()}
