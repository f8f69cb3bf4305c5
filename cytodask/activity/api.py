"""Public activity API: :func:`infer` (in memory or lazy, one input path) and :func:`score` (Scanpy style).

:func:`infer` = input coercion (:mod:`~cytodask.activity.inputs`) + the shared
operands (:func:`~cytodask.activity.operands.prepare_signature`, the permutation
table) + the block kernels (:mod:`~cytodask.activity.kernels`), run either in
memory on chunks of cells (:mod:`~cytodask.activity.chunked`) or as a lazy graph
for Dask input (:mod:`~cytodask.activity.graph`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from cytodask.core.backend import check_threads, resolve_backend, to_numpy

from .chunked import run_in_memory
from .genes import resolve_symbols
from .graph import LazyActivity, activity_graph, gene_mean_graph
from .inputs import as_samples_by_genes, check_values, control_rows, counts_layer, is_anndata, is_dask, resolve_method
from .kernels import InputKind
from .operands import prepare_signature, signature_label
from .result import ActivityResult, Orientation, check_orientation, uns_safe
from .ridge import Method
from .rng import RNGName, permutation_table
from .signatures import SignatureLike, expand_groups


def infer(
    expr: Any,
    signature: SignatureLike = "CytoSig",
    *,
    method: Method | None = None,
    n_rand: int | None = None,
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
    gene_axis: int | None = None,
    symbol_column: str | None = None,
    control: Any | None = None,
    aliases: bool = False,
    ignore_case: bool = False,
    signature_dir: str | os.PathLike | None = None,
    batch_size: int | None = None,
    threads: int | None = None,
    orientation: Orientation = "samples",
) -> ActivityResult:
    """Infer signalling activity by ridge regression on a signature (SecAct method).

    Parameters
    ----------
    expr
        DataFrame (genes x samples); AnnData (cells x genes; ``X`` or ``layer``,
        sparse kept sparse, a Dask ``X`` kept lazy); NumPy / SciPy matrix with ``genes=``
        (cells x genes, or genes x samples when only the first axis matches ``genes``); or a
        Dask array with ``genes=`` — then the result is lazy
        (:class:`cytodask.activity.graph.LazyActivity`, cells x signatures; ``.compute()`` gives this class).
    signature
        ``"CytoSig"``, ``"SecAct"``, a file path or a DataFrame (genes x signatures).
    method
        ``"analytic"`` (exact permutation moments in closed form: the n_rand → ∞ limit of the
        permutation test, one matrix product) or ``"permutation"`` (``n_rand`` permutations,
        R SecAct's test). Default: ``"analytic"``, or ``"permutation"`` when ``n_rand`` is given —
        the same default as :class:`~cytodask.activity.stage.ActivityStage`, specs and ``Pipeline``.
    n_rand, seed, rng
        Permutations (default 1000 for ``method="permutation"``; the closed form uses none and warns
        when given one), their seed and generator (``"srand"`` reproduces R SecAct).
    lam
        Ridge penalty.
    group, group_threshold
        Merge signatures correlated above the threshold (None: on, except for CytoSig).
    input_kind
        ``"counts"`` (scale to ``scale`` per sample, log2(x+1), centre genes; values that are visibly
        not counts are refused — log scale — or warned about — other non-integers),
        ``"logexpr"`` (centre genes) or ``"differential"`` (as is).
    control
        Control samples (boolean mask, positions or names): genes are centred on
        their mean instead of the mean over all samples.
    min_genes
        Fewest common genes accepted.
    backend
        ``"auto"``, ``"numpy"`` or ``"cupy"`` (in-memory input; Dask input runs where its blocks live).
    layer
        AnnData input: a layer instead of X, or ``"raw"`` for ``adata.raw`` (``.raw.X`` with ``.raw.var``).
        Default X, except for a :func:`~cytodask.aggregation.pseudobulk` output read as counts: its
        ``counts`` layer (its X is normalized already).
    gene_axis
        For a bare matrix whose two axes both have ``len(genes)`` entries: 1 when it is
        samples x genes, 0 when genes x samples (otherwise the shape tells, and this may be omitted).
    symbol_column, aliases, ignore_case
        Gene matching (:mod:`cytodask.activity.genes`).
    batch_size
        Permutations per matrix product (default: ~256 MB batches).
    threads
        Threads for sparse NumPy input: chunks of cells, and permutation batches
        (default: all available cores, or 1 inside a Dask task); results do not depend on it.
    orientation
        ``"samples"``: every statistic is samples x signatures (AnnData's orientation, as the lazy
        result and the stage's output). ``"signatures"`` (signatures x samples) is deprecated.

    Returns
    -------
    ActivityResult
    """
    check_orientation(orientation, warn=True)
    method, n_rand = resolve_method(method, n_rand, where="infer()")
    _check_choice("input_kind", input_kind, ("counts", "logexpr", "differential"))
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale}.")
    layer = counts_layer(expr, layer, input_kind)
    mat, gene_names, sample_names, var = as_samples_by_genes(expr, layer=layer, genes=genes, samples=samples,
                                                             gene_axis=gene_axis)
    lazy = is_dask(mat)
    xp = np if lazy else resolve_backend(backend)  # type: ignore[arg-type]
    if not lazy:
        check_values(mat, input_kind)
    if group is None:
        group = signature_label(signature) != "CytoSig"
    totals = None if lazy else (lambda: np.asarray(mat.sum(axis=0), dtype=np.float64).ravel())
    prep = prepare_signature(
        signature, resolve_symbols(gene_names, var, symbol_column=symbol_column), lam=lam, group=group,
        group_threshold=group_threshold, aliases=aliases, ignore_case=ignore_case, min_genes=min_genes,
        totals=totals, signature_dir=signature_dir, xp=xp,
    )
    ctrl = control_rows(control, sample_names)
    table = permutation_table(prep.match.n_genes, n_rand, seed, rng) if method == "permutation" else None
    params = {
        "method": method, "n_rand": n_rand if method == "permutation" else 0, "seed": seed, "rng": rng,
        "lam": lam, "group": bool(group), "group_threshold": group_threshold, "input_kind": input_kind,
        "scale": scale, "min_genes": min_genes, "backend": "numpy" if xp is np else "cupy",
        "signature": signature_label(signature), "n_genes": prep.match.n_genes, "aliases": aliases,
        "ignore_case": ignore_case, "groups": {g: m for g, m in prep.groups.items() if len(m) > 1},
        "layer": "X" if layer is None else layer,
    }
    if lazy:
        gene_mean = gene_mean_graph(mat, prep.match.expr_idx, input_kind=input_kind, scale=scale, control=ctrl)
        out = activity_graph(mat, prep, gene_mean, input_kind=input_kind, scale=scale, method=method,
                             perm_table=table)
        params.update(backend="blocks", centred=gene_mean is not None, lazy=True)
        return LazyActivity(**out, signatures=prep.names, samples=sample_names,  # type: ignore[return-value]
                            coverage=prep.match.coverage, genes=prep.match.genes, params=params,
                            orientation=orientation, obs=expr.obs if is_anndata(expr) else None)
    threads = check_threads(threads)  # one thread inside a Dask task (core.backend.in_dask_task)
    stats, empty, centred = run_in_memory(mat, prep.T, prep.match.expr_idx, control=ctrl, input_kind=input_kind,
                                          scale=scale, method=method, perm_table=table, batch_size=batch_size,
                                          threads=threads, xp=xp)
    frames = {
        key: expand_groups(pd.DataFrame(to_numpy(v), index=list(prep.groups), columns=sample_names),
                           prep.groups, prep.names)
        for key, v in stats._asdict().items()
    }
    params["centred"] = centred
    return ActivityResult(
        **frames, coverage=prep.match.coverage, empty=pd.Series(to_numpy(empty), index=sample_names, name="empty"),
        genes=prep.match.genes, params=params, orientation="signatures",
        obs=expr.obs if is_anndata(expr) else None,
    ).oriented(orientation)


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
    key = key_added or f"activity_{signature_label(signature)}"
    adata.obsm[key] = res.oriented("samples").zscore.set_axis(adata.obs_names, axis=0)
    adata.uns[key] = {
        "params": uns_safe(res.params),
        "empty": res.empty.to_numpy(),
        "coverage": {str(k): float(v) for k, v in res.coverage.items()},
    }
    return adata if copy else None


def _check_choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not one of {', '.join(map(repr, allowed))}.")
