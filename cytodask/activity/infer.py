"""In-memory activity inference (:func:`infer`, :func:`score`) and the block kernels it runs.

:func:`infer` = :func:`prepare_signature` (the small shared operand: common
genes and projection matrix) + :func:`gene_mean_partial` (the gene-mean pass,
only for ``counts`` / ``logexpr``) + :func:`activity_block` (one block of
samples). A Dask graph calls the same three on blocks of cells; :func:`infer` runs
them on chunks of cells on a thread pool for sparse input (:mod:`~cytodask.activity.chunked`)
and on one block otherwise. Input coercion and checks live in :mod:`~cytodask.activity.inputs`,
the result type in :mod:`~cytodask.activity.result`.
"""

from __future__ import annotations

import hashlib
import os
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Literal

import numpy as np
import pandas as pd

from cytodask.core import spmm
from cytodask.core.backend import check_threads, is_sparse, resolve_backend, to_device, to_numpy

from .chunked import Chunk, gene_sums, map_chunks, normalised_chunks, stacked
from .genes import GeneMatch, match_genes, resolve_symbols
from .inputs import as_samples_by_genes, check_values, control_rows
from .preprocess import center_genes, empty_samples, gene_sum_partial, library_size, normalise, zscore_columns
from .result import ActivityResult, uns_safe
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
    sig = load_signature(signature, signature_dir=signature_dir, copy=False)  # only read below
    if group is None:
        group = _signature_label(signature) != "CytoSig"
    if group:
        used, groups = group_signatures(sig, group_threshold)
    else:
        used, groups = sig, {n: [n] for n in sig.columns}
    match = match_genes(expr_genes, sig, aliases=aliases, ignore_case=ignore_case, totals=totals, min_genes=min_genes)
    # pandas holds the weights signatures x genes: gather along that layout (genes x k, F-ordered)
    x = zscore_columns(xp.asarray(np.take(used.to_numpy().T, match.sig_idx, axis=1).T), xp=xp)
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
    key = (hashlib.sha256(np.ascontiguousarray(x).data).hexdigest(), x.shape, float(lam))  # SHA-NI: ~1 GB/s
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
    expr = normalise(block, totals, input_kind, scale, xp=xp)
    return gene_sum_partial(expr, ~empty_samples(block, totals, input_kind, xp=xp), axis=0, xp=xp)


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
    compiled: bool | None = None,
    xp: ModuleType = np,
) -> tuple[RidgeStats, Any]:
    """Activity of one block of samples (cells x common genes, dense or CSR, on ``xp``'s device).

    Normalises (``counts``: with ``totals``, library sizes over all genes),
    subtracts ``gene_mean`` (None: no centring), z-scores each sample over the
    genes and runs the ridge test. Sparse blocks stay sparse (:func:`~cytodask.activity.ridge.ridge_sparse`).
    ``normalised``, when given, is this block already normalised (as for a
    gene-mean pass over the same block), so it is not normalised again.
    ``compiled`` picks the sparse product (:func:`~cytodask.activity.ridge.ridge_sparse`).

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
    empty = empty_samples(block, totals, input_kind, xp=xp)
    expr = normalise(block, totals, input_kind, scale, xp=xp) if normalised is None else normalised
    if is_sparse(expr):
        stats = ridge_sparse(
            T, expr, gene_mean=gene_mean, method=method, perm_table=perm_table, batch_size=batch_size,
            threads=threads, compiled=compiled, xp=xp,
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
        Threads for sparse NumPy input: chunks of cells, and permutation batches
        (default: all available cores); results do not depend on it.

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
    mat, gene_names, sample_names, var = as_samples_by_genes(expr, layer=layer, genes=genes, samples=samples)
    check_values(mat, input_kind)
    if group is None:
        group = _signature_label(signature) != "CytoSig"
    prep = prepare_signature(
        signature, resolve_symbols(gene_names, var, symbol_column=symbol_column), lam=lam, group=group,
        group_threshold=group_threshold, aliases=aliases, ignore_case=ignore_case, min_genes=min_genes,
        totals=lambda: np.asarray(mat.sum(axis=0), dtype=np.float64).ravel(), signature_dir=signature_dir, xp=xp,
    )
    threads = check_threads(threads)
    ctrl = control_rows(control, sample_names)
    if xp is np and is_sparse(mat):  # chunks of cells on the thread pool
        stats, empty, centred = _infer_chunked(mat, prep, ctrl, input_kind=input_kind, scale=scale, method=method,
                                               n_rand=n_rand, seed=seed, rng=rng, batch_size=batch_size,
                                               threads=threads)
    else:
        block = mat[:, prep.match.expr_idx]
        block = to_device(block.astype(np.float64) if is_sparse(block) else block, xp)
        totals = None
        if input_kind == "counts":
            totals = xp.asarray(library_size(mat, axis=1))
        norm = normalise(block, totals, input_kind, scale, copy=False, xp=xp)  # once: gene means and ridge
        gene_mean = None
        if input_kind != "differential":
            rows = slice(None) if ctrl is None else xp.asarray(ctrl)
            valid = ~empty_samples(block, totals, input_kind, xp=xp)
            gene_mean = _gene_means(*gene_sum_partial(norm[rows], valid[rows], axis=0, xp=xp), mat.shape[0], ctrl)
        table = None
        if method == "permutation":
            table = xp.asarray(permutation_table(prep.match.n_genes, n_rand, seed, rng))
        stats, empty = activity_block(
            prep.T, block, totals=totals, gene_mean=gene_mean, input_kind=input_kind, scale=scale,
            method=method, perm_table=table, batch_size=batch_size, threads=threads, normalised=norm,
            xp=xp,
        )
        centred = gene_mean is not None
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
        "ignore_case": ignore_case, "centred": centred,
        "groups": {g: m for g, m in prep.groups.items() if len(m) > 1},
    }
    return ActivityResult(
        **frames, coverage=prep.match.coverage, empty=pd.Series(to_numpy(empty), index=sample_names, name="empty"),
        genes=prep.match.genes, params=params,
    )


def _gene_means(sums: Any, n: int, n_samples: int, ctrl: np.ndarray | None) -> Any:
    """Gene means from (sums, non-empty samples) over the (control) samples; None for a lone sample."""
    if ctrl is None and n_samples == 1:
        warnings.warn(
            "A single sample and no control: genes are not centred (as secactpy). Pass control= or "
            "input_kind='differential'.", UserWarning, stacklevel=3,
        )
        return None
    if n == 0:
        raise ValueError("Every (control) sample is empty; there is nothing to centre the genes on.")
    return sums / n


def _infer_chunked(mat: Any, prep: PreparedSignature, ctrl: np.ndarray | None, *, input_kind: str, scale: float,
                   method: str, n_rand: int, seed: int, rng: RNGName, batch_size: int | None,
                   threads: int) -> tuple[RidgeStats, np.ndarray, bool]:
    """Sparse NumPy input: normalise chunks of cells, gene means from their sums, then the ridge."""
    chunks = normalised_chunks(mat, prep.match.expr_idx, input_kind=input_kind, scale=scale, threads=threads,
                               control=ctrl)
    gene_mean = None
    if input_kind != "differential":
        gene_mean = _gene_means(*gene_sums(chunks), mat.shape[0], ctrl)
    common = {"gene_mean": gene_mean, "input_kind": input_kind, "scale": scale}
    if method == "analytic":
        common["compiled"] = spmm.worth_compiling(float(sum(ch.norm.nnz for ch in chunks)) * prep.T.shape[0])

        def one(ch: Chunk) -> tuple[Any, ...]:
            stats, empty = activity_block(prep.T, ch.norm, totals=ch.totals, method="analytic",
                                          normalised=ch.norm, **common)  # type: ignore[arg-type]
            return (*stats, empty)

        *parts, empty = map_chunks(one, chunks, threads)
        return RidgeStats(*parts), empty, gene_mean is not None
    whole = stacked(chunks)  # one block: the threads run over permutation batches
    del chunks  # the chunks' copies go; only the stacked block stays
    table = permutation_table(prep.match.n_genes, n_rand, seed, rng)
    stats, empty = activity_block(prep.T, whole.norm, totals=whole.totals, method="permutation", perm_table=table,
                                  batch_size=batch_size, threads=threads, normalised=whole.norm,
                                  **common)  # type: ignore[arg-type]
    return stats, empty, gene_mean is not None


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
        "params": uns_safe(res.params),
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
