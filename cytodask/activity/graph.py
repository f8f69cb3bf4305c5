"""Lazy activity graphs: from a Dask array of cells x genes blocks to lazy results (never computes).

Per block, a gene-mean partial (``counts``/``logexpr``), merged once
(:func:`gene_mean_graph`); then per block :func:`block_result`, the block
kernels of :mod:`~cytodask.activity.kernels` with the common-gene positions,
``T``, gene means and permutation table each one graph key shared by every
block task (or one broadcast copy on a cluster, :func:`~cytodask.core.persist.share`).
:func:`activity_graph` gives Dask arrays cells x signatures; the lazy API wraps
them in :class:`LazyActivity`, the stage persists them block by block
(:func:`~cytodask.core.persist.persist_blocks`). Results do not depend on the
chunking beyond the summation order of the gene-mean pass.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

import dask
import dask.array as da
import numpy as np
import pandas as pd
from dask.delayed import Delayed

from cytodask.core.backend import array_module, resolve_backend, to_numpy
from cytodask.core.persist import share
from cytodask.core.xp import device_copy

from .kernels import InputKind, gene_mean_partial, gene_means, prepare_block, prepared_activity
from .operands import PreparedSignature
from .result import ActivityResult, Orientation
from .ridge import Method

KEYS = ("beta", "se", "zscore", "pvalue")


def _module(rows: Any, backend: str | None) -> Any:
    return array_module(rows) if backend is None else resolve_backend(backend)  # type: ignore[arg-type]


def block_partial(rows: Any, genes: np.ndarray, keep: np.ndarray | None, input_kind: InputKind, scale: float,
                  backend: str | None = None) -> tuple[np.ndarray, int]:
    """Gene-mean partial of one block of cells x all genes (host sums)."""
    xp = _module(rows, backend)
    sums, n = gene_mean_partial(prepare_block(rows, genes, input_kind=input_kind, scale=scale, xp=xp), keep, xp=xp)
    return np.asarray(to_numpy(sums)), int(n)


def block_result(rows: Any, genes: np.ndarray, T: np.ndarray, gene_mean: Any | None, columns: np.ndarray,
                 input_kind: InputKind, scale: float, method: Method, perm_table: np.ndarray | None,
                 backend: str | None = None) -> tuple[Any, ...]:
    """Activity of one block of cells x all genes: beta, se, zscore, pvalue (cells x signatures) and empty.

    Runs on the block's array module, or on ``backend`` (the run's, chosen once from its cluster:
    :func:`~cytodask.core.backend.run_backend`); one thread (the scheduler runs blocks in parallel).
    On a GPU, ``T``, the gene means and the permutation table are uploaded once per worker
    (:func:`~cytodask.core.xp.device_copy`), not once per block.
    """
    xp = _module(rows, backend)
    dev = (lambda a: a) if xp is np else (lambda a: device_copy(a, xp))  # shared operands: once per worker
    stats, empty = prepared_activity(dev(T), prepare_block(rows, genes, input_kind=input_kind, scale=scale, xp=xp),
                                     gene_mean=dev(gene_mean), input_kind=input_kind, scale=scale, method=method,
                                     perm_table=dev(perm_table), threads=1, xp=xp)
    cols = dev(columns)
    return (*(s.T[:, cols] for s in stats), empty)


def _meta_module(x: da.Array, backend: str | None) -> Any:
    """The array module of the results' meta: the blocks' own, or CuPy for ``backend="cupy"`` where it imports."""
    if backend is None:
        return array_module(x)
    if backend == "cupy":
        try:
            return importlib.import_module("cupy")
        except ImportError:  # a client without CuPy (a SLURM login node): the workers' blocks are CuPy all the same
            return np
    return np


def _cell_blocks(x: da.Array) -> tuple[Any, ...]:
    if x.ndim != 2:
        raise ValueError(f"the activity graph takes a 2-D Dask array of cells x genes, not {x.ndim}-D")
    if x.numblocks[1] != 1:
        x = x.rechunk({1: -1})
    return tuple(x.to_delayed().ravel())


def gene_mean_graph(x: da.Array, genes: np.ndarray, *, input_kind: InputKind, scale: float,
                    control: np.ndarray | None = None, backend: str | None = None, client: Any = None) -> Any:
    """Lazy gene means (one Delayed) over all blocks of ``x``, or over ``control`` positions; None if not centred."""
    if input_kind == "differential":
        return None
    keep = None
    if control is not None:
        keep = np.zeros(x.shape[0], dtype=bool)
        keep[control] = True
    edges = np.cumsum((0, *x.chunks[0]))
    g = share(genes, client)
    task = dask.delayed(block_partial, pure=True)
    parts = [task(b, g, None if keep is None else keep[a:z], input_kind, scale, backend)
             for b, a, z in zip(_cell_blocks(x), edges[:-1], edges[1:], strict=True)]
    return dask.delayed(gene_means, pure=True)(parts, x.shape[0], control=control is not None)


def activity_graph(x: da.Array, prep: PreparedSignature, gene_mean: Any | None, *, input_kind: InputKind,
                   scale: float, method: Method, perm_table: np.ndarray | None, backend: str | None = None,
                   client: Any = None) -> dict[str, da.Array]:
    """Lazy ``beta``, ``se``, ``zscore``, ``pvalue`` (cells x signatures) and ``empty`` (cells) of ``x``.

    ``gene_mean``: an array, a Delayed (:func:`gene_mean_graph`) or None (no centring). Shared
    operands enter the graph once (with ``client``: scattered to every worker once).
    """
    if method == "permutation" and perm_table is None:
        raise ValueError("method='permutation' needs perm_table (cytodask.activity.rng.permutation_table).")
    shared = [share(v, client) for v in (prep.match.expr_idx, prep.T, prep.columns, perm_table)]
    gm = gene_mean if gene_mean is None or isinstance(gene_mean, Delayed) else share(np.asarray(gene_mean), client)
    genes, T, columns, perm = shared
    k = len(prep.names)
    xp = _meta_module(x, backend)
    meta = xp.empty((0, k), dtype=np.float64)
    task = dask.delayed(block_result, pure=True, nout=5)
    parts: dict[str, list[da.Array]] = {key: [] for key in (*KEYS, "empty")}
    for b, n in zip(_cell_blocks(x), x.chunks[0], strict=True):
        res = task(b, genes, T, gm, columns, input_kind, scale, method, perm, backend)
        for i, key in enumerate(KEYS):
            parts[key].append(da.from_delayed(res[i], shape=(n, k), dtype=np.float64, meta=meta))
        parts["empty"].append(da.from_delayed(res[4], shape=(n,), dtype=bool, meta=xp.empty((0,), dtype=bool)))
    return {key: da.concatenate(p, axis=0) for key, p in parts.items()}


@dataclass
class LazyActivity:
    """Lazy results: Dask arrays cells x signatures (``beta``, ``se``, ``zscore``, ``pvalue``) and ``empty``."""

    beta: da.Array
    se: da.Array
    zscore: da.Array
    pvalue: da.Array
    empty: da.Array
    signatures: list[str]
    samples: pd.Index
    coverage: pd.Series
    genes: pd.Index
    params: dict[str, Any]
    orientation: Orientation = "samples"
    obs: pd.DataFrame | None = None  # the input's obs (AnnData input), kept by to_anndata()

    def compute(self, **kwargs: Any) -> ActivityResult:
        """Compute everything in one pass; returns the in-memory :class:`ActivityResult` (same orientation)."""
        values = [np.asarray(to_numpy(v)) for v in
                  dask.compute(self.beta, self.se, self.zscore, self.pvalue, self.empty, **kwargs)]
        frames = {k: pd.DataFrame(v, index=self.samples, columns=self.signatures)
                  for k, v in zip(KEYS, values, strict=False)}
        return ActivityResult(**frames, coverage=self.coverage,
                              empty=pd.Series(values[4].astype(bool), index=self.samples, name="empty"),
                              genes=self.genes, params=self.params, obs=self.obs).oriented(self.orientation)
