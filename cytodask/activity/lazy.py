"""Lazy activity inference on a Dask array of cells × genes (lazy in, lazy out).

The graph: per block, a gene-mean partial (``counts``/``logexpr``), merged once;
then per block :func:`~cytodask.activity.infer.activity_block` with the
projection matrix, gene means and permutation table each a single graph key
shared by every block task. Nothing is computed until the caller computes.
Results equal :func:`cytodask.activity.infer` on the same data for any chunking.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import dask
import dask.array as da
import numpy as np
import pandas as pd

from cytodask.activity.infer import (
    ActivityResult,
    InputKind,
    Method,
    activity_block,
    gene_mean_partial,
    prepare_signature,
)
from cytodask.activity.preprocess import library_size
from cytodask.activity.rng import RNGName, permutation_table
from cytodask.activity.signatures import SignatureLike

_KEYS = ("beta", "se", "zscore", "pvalue")


def _partial(block: Any, idx: np.ndarray, kind: str, scale: float) -> tuple[np.ndarray, int]:
    totals = library_size(block, axis=1) if kind == "counts" else None
    s, n = gene_mean_partial(_as_float(block)[:, idx], totals, input_kind=kind, scale=scale, xp=np)  # type: ignore[arg-type]
    return np.asarray(s), int(n)


def _merge(parts: list[tuple[np.ndarray, int]]) -> np.ndarray:
    n = sum(p[1] for p in parts)
    if n == 0:
        raise ValueError("every cell is empty; there is nothing to centre the genes on")
    return sum(p[0] for p in parts) / n


def _as_float(block: Any) -> Any:
    return block.astype(np.float64) if hasattr(block, "astype") else np.asarray(block, dtype=np.float64)


def _block(block: Any, idx: np.ndarray, T: np.ndarray, gene_mean: np.ndarray | None, colmap: np.ndarray,
           kind: str, scale: float, method: str, perm: np.ndarray | None) -> np.ndarray:
    totals = library_size(block, axis=1) if kind == "counts" else None
    stats, empty = activity_block(T, _as_float(block)[:, idx], totals=totals, gene_mean=gene_mean,  # type: ignore[arg-type]
                                  input_kind=kind, scale=scale, method=method, perm_table=perm, xp=np)  # type: ignore[arg-type]
    out = np.stack([np.asarray(s).T[:, colmap] for s in stats] + [np.repeat(np.asarray(empty, float)[:, None],
                                                                             len(colmap), axis=1)])
    return out


@dataclass
class LazyActivity:
    """Lazy results: Dask arrays cells × signatures (``beta``, ``se``, ``zscore``, ``pvalue``) and ``empty``."""

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

    def compute(self, **kwargs: Any) -> ActivityResult:
        """Compute everything in one pass; returns the in-memory :class:`ActivityResult`."""
        values = dask.compute(self.beta, self.se, self.zscore, self.pvalue, self.empty, **kwargs)
        frames = {k: pd.DataFrame(v.T, index=self.signatures, columns=self.samples)
                  for k, v in zip(_KEYS, values, strict=False)}
        return ActivityResult(**frames, coverage=self.coverage,
                              empty=pd.Series(values[4].astype(bool), index=self.samples, name="empty"),
                              genes=self.genes, params=self.params)


def infer_lazy(
    x: da.Array,
    genes: Sequence[str],
    signature: SignatureLike = "CytoSig",
    *,
    method: Method = "analytic",
    n_rand: int = 1000,
    seed: int = 0,
    rng: RNGName = "srand",
    lam: float = 5e5,
    group: bool | None = None,
    input_kind: InputKind = "counts",
    scale: float = 1e5,
    min_genes: int = 100,
    samples: Sequence[str] | None = None,
    signature_dir: str | os.PathLike | None = None,
) -> LazyActivity:
    """Build the activity graph for a Dask array of cells × genes (SciPy CSR or NumPy blocks).

    Parameters are those of :func:`cytodask.activity.infer`; ``x`` is chunked
    along cells (gene chunks are merged). The signature is prepared eagerly
    (small); every pass over ``x`` stays lazy.
    """
    if not isinstance(x, da.Array) or x.ndim != 2:
        raise TypeError(f"infer_lazy takes a 2-D Dask array of cells × genes, not {type(x).__name__}")
    if x.shape[1] != len(genes):
        raise ValueError(f"genes has {len(genes)} names but the array has {x.shape[1]} genes (columns)")
    if method not in ("analytic", "permutation"):
        raise ValueError(f"method={method!r}: use 'analytic' or 'permutation'")
    if x.numblocks[1] != 1:
        x = x.rechunk({1: -1})
    label = signature if isinstance(signature, str) else "custom"
    prep = prepare_signature(signature, list(map(str, genes)), lam=lam,
                             group=(label != "CytoSig") if group is None else group, min_genes=min_genes,
                             signature_dir=signature_dir)
    row_of = {g: i for i, g in enumerate(prep.groups)}
    colmap = np.array([next(row_of[g] for g, ms in prep.groups.items() if n in ms) for n in prep.names])
    idx = dask.delayed(prep.match.expr_idx)
    T = dask.delayed(prep.T)
    cm = dask.delayed(colmap)
    perm = dask.delayed(permutation_table(prep.match.n_genes, n_rand, seed, rng)) if method == "permutation" else None
    blocks = x.to_delayed().ravel()
    gm = None
    if input_kind != "differential":
        gm = dask.delayed(_merge)([dask.delayed(_partial)(b, idx, input_kind, scale) for b in blocks])
    k = len(prep.names)
    parts = [da.from_delayed(dask.delayed(_block)(b, idx, T, gm, cm, input_kind, scale, method, perm),
                             shape=(5, n, k), dtype=np.float64)
             for b, n in zip(blocks, x.chunks[0], strict=True)]
    stacked = da.concatenate(parts, axis=1)
    names = pd.Index([str(s) for s in samples]) if samples is not None else pd.Index(map(str, range(x.shape[0])))
    params = {"method": method, "n_rand": n_rand if method == "permutation" else 0, "seed": seed, "rng": rng,
              "lam": lam, "input_kind": input_kind, "scale": scale, "lazy": True}
    return LazyActivity(*(stacked[i] for i in range(4)), empty=stacked[4][:, 0] > 0, signatures=prep.names,
                        samples=names, coverage=prep.match.coverage, genes=prep.match.genes, params=params)
