"""The GPU check's workloads (issue 15): each a function of ``xp`` and sizes, timed with device synchronisation.

Every workload runs the public cytodask code on arrays of ``xp`` (CuPy on the device; NumPy for the
CPU dry run of the same code at toy sizes), warms up first, reports the median of its repeats, counts
its FLOPs where a floor applies, and checks a slice of its result against the NumPy path.

- :func:`gemm_rate`: float64 GEMM, ``2n³`` FLOPs: the device's measured dense rate (the floors' unit).
- :func:`activity_analytic`: single-cell ridge activity, closed form, SecAct-shaped signature
  (1,170 × 7,919) on 1M cells, through the lazy :func:`cytodask.activity.infer` (gene-mean pass +
  activity pass over CuPy CSR blocks); ``2·nnz·k`` FLOPs of the sparse product.
- :func:`activity_permutation`: the permutation test on a slice of cells; its floor is the sparse
  product repeated ``n_rand`` times, ``2·nnz·k·n_rand`` FLOPs, at the measured GEMM rate.
- :func:`pseudobulk`: per-group sums of 1M cells (:func:`cytodask.aggregation.graph.aggregate_layers`).
- :func:`wilcoxon`: rank-sum test of 1,170 features × 100k samples (two groups of 50k).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

FULL = {"cells": 1_000_000, "block": 100_000, "genes": 7919, "k": 1170, "per_cell": 800, "perm_cells": 4000,
        "n_rand": 1000, "gemm_n": 8192, "groups": 200, "features": 1170, "samples": 100_000, "check_cells": 2000}
CHECK_N_RAND = 100  # permutations of the NumPy side of the permutation check
DRY = {"cells": 3000, "block": 1000, "genes": 300, "k": 20, "per_cell": 30, "perm_cells": 200, "n_rand": 20,
       "gemm_n": 128, "groups": 10, "features": 20, "samples": 400, "check_cells": 300}


def sync(xp: ModuleType) -> None:
    if xp is not np:
        xp.cuda.Device().synchronize()


def timed(fn: Callable[[], Any], xp: ModuleType, *, repeats: int = 3, warmup: int = 1) -> tuple[float, Any]:
    """Median seconds of ``repeats`` calls after ``warmup`` calls, synchronised; and the last result."""
    out = None
    for _ in range(warmup):
        out = fn()
        sync(xp)
    times = []
    for _ in range(repeats):
        sync(xp)
        t0 = time.perf_counter()
        out = fn()
        sync(xp)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def host(a: Any) -> Any:
    return a.get() if hasattr(a, "get") and type(a).__module__.startswith(("cupy", "cupyx")) else a


def gemm_rate(xp: ModuleType, s: dict[str, int]) -> dict[str, Any]:
    n = s["gemm_n"]
    a = xp.asarray(np.random.default_rng(0).standard_normal((n, n)))
    b = xp.asarray(np.random.default_rng(1).standard_normal((n, n)))
    sec, _ = timed(lambda: a @ b, xp, repeats=5, warmup=2)
    flops = 2.0 * n**3
    return {"n": n, "dtype": "float64", "seconds": sec, "flops": flops, "tflops": flops / sec / 1e12}


def cell_block(xp: ModuleType, cells: int, genes: int, per_cell: int, seed: int) -> Any:
    """A CSR block of counts made on ``xp``'s device: ``per_cell`` distinct genes per cell, one per stratum."""
    from cytodask.core.xp import sparse_module

    width = genes // per_cell
    rs = xp.random.RandomState(seed)  # legacy API: the same calls on NumPy and CuPy
    indices = (xp.arange(per_cell) * width)[None, :] + rs.randint(0, width, size=(cells, per_cell))
    data = rs.randint(1, 11, size=(cells, per_cell)).astype(xp.float32)
    indptr = xp.arange(cells + 1, dtype=xp.int64) * per_cell
    csr = (data.ravel(), indices.ravel().astype(xp.int32), indptr)
    return sparse_module(xp).csr_matrix(csr, shape=(cells, genes))


def signature(s: dict[str, int]) -> tuple[pd.DataFrame, list[str]]:
    """A SecAct-shaped signature (genes × k, N(0,1) weights) and its gene names (the device has no SecAct file)."""
    genes = [f"G{i}" for i in range(s["genes"])]
    w = np.random.default_rng(7).standard_normal((s["genes"], s["k"]))
    return pd.DataFrame(w, index=genes, columns=[f"S{j}" for j in range(s["k"])]), genes


def lazy_cells(xp: ModuleType, blocks: list[Any], name: str) -> Any:
    """Device-resident blocks as one Dask array of cells × genes (as the atlas store's: one key per block)."""
    import dask.array as da
    from dask.highlevelgraph import HighLevelGraph

    from cytodask.core.xp import sparse_module

    dsk = {(name, i, 0): b for i, b in enumerate(blocks)}  # named keys: device data is never hashed
    chunks = (tuple(int(b.shape[0]) for b in blocks), (int(blocks[0].shape[1]),))
    meta = sparse_module(xp).csr_matrix((0, 0), dtype=np.float32)
    return da.Array(HighLevelGraph.from_collections(name, dsk, dependencies=()), name, chunks, meta=meta)


def _reduced(result: Any) -> tuple[Any, ...]:
    """Per-signature sums of every statistic: each block computed once, its cells × k results never gathered."""
    return (result.beta.sum(axis=0), result.zscore.sum(axis=0), result.pvalue.sum(axis=0), result.empty.sum())


def _zscores(xp: ModuleType, block: Any, sig: pd.DataFrame, genes: list[str], **kw: Any) -> np.ndarray:
    from cytodask.activity import infer

    x = lazy_cells(xp, [block], f"check-{id(block)}-{xp.__name__}")
    res = infer(x, sig, genes=genes, gene_axis=1, group=False, min_genes=10, **kw)
    return np.asarray(host(res.zscore.compute(scheduler="sync")))


def _cpu_diff(xp: ModuleType, block: Any, sig: pd.DataFrame, genes: list[str], **kw: Any) -> float:
    """Max |z| difference of ``xp`` and NumPy on one block (the same cells, so the same gene means)."""
    import scipy.sparse as sp

    mine = _zscores(xp, block, sig, genes, **kw)
    ref = _zscores(np, sp.csr_matrix(host(block)), sig, genes, **kw)
    return float(np.max(np.abs(mine - ref)))


def activity_analytic(xp: ModuleType, s: dict[str, int], blocks: list[Any]) -> dict[str, Any]:
    import dask

    from cytodask.activity import infer

    sig, genes = signature(s)
    x = lazy_cells(xp, blocks, f"cells-{xp.__name__}")
    res = infer(x, sig, genes=genes, gene_axis=1, method="analytic", group=False, min_genes=10)
    sec, _ = timed(lambda: dask.compute(*_reduced(res), scheduler="sync"), xp, repeats=1, warmup=1)
    nnz = sum(int(b.nnz) for b in blocks)
    flops = 2.0 * nnz * s["k"]
    check = blocks[0][: s["check_cells"]]
    return {"cells": x.shape[0], "genes": s["genes"], "signatures": s["k"], "nnz": nnz, "blocks": len(blocks),
            "seconds": sec, "cells_per_second": x.shape[0] / sec, "flops_sparse_product": flops,
            "max_abs_z_diff_vs_numpy": _cpu_diff(xp, check, sig, genes, method="analytic")}


def activity_permutation(xp: ModuleType, s: dict[str, int], blocks: list[Any], gemm: dict[str, Any]) -> dict[str, Any]:
    import dask

    from cytodask.activity import infer

    sig, genes = signature(s)
    cells = blocks[0][: s["perm_cells"]]
    x = lazy_cells(xp, [cells], f"perm-{xp.__name__}")
    res = infer(x, sig, genes=genes, gene_axis=1, method="permutation", n_rand=s["n_rand"], group=False,
                min_genes=10)
    sec, _ = timed(lambda: dask.compute(*_reduced(res), scheduler="sync"), xp, repeats=1, warmup=1)
    flops = 2.0 * int(cells.nnz) * s["k"] * s["n_rand"]
    dense = 2.0 * s["k"] * s["genes"] * s["perm_cells"] * s["n_rand"]
    floor = flops / (gemm["tflops"] * 1e12)
    # The check: the same 50 cells and permutation table on both sides; the NumPy side runs on one core
    # (SecAct-shaped: ~0.1 s a permutation), so it takes at most CHECK_N_RAND of them.
    small = cells[: min(s["check_cells"], 50)]
    n_check = min(s["n_rand"], CHECK_N_RAND)
    return {"cells": s["perm_cells"], "n_rand": s["n_rand"], "nnz": int(cells.nnz), "seconds": sec,
            "flops_sparse": flops, "flops_dense_equivalent": dense, "floor_seconds_at_gemm_rate": floor,
            "time_over_floor": sec / floor, "gemm_tflops": gemm["tflops"], "check_n_rand": n_check,
            "max_abs_z_diff_vs_numpy": _cpu_diff(xp, small, sig, genes, method="permutation", n_rand=n_check)}


def pseudobulk(xp: ModuleType, s: dict[str, int], blocks: list[Any]) -> dict[str, Any]:
    import dask
    import scipy.sparse as sp

    from cytodask.aggregation.graph import aggregate_layers
    from cytodask.aggregation.kernels import group_sums

    x = lazy_cells(xp, blocks, f"pb-{xp.__name__}")
    codes = np.random.default_rng(3).integers(-1, s["groups"], x.shape[0])
    kept = np.unique(codes[codes >= 0])
    layers = aggregate_layers(x, codes, kept, ("sum",))
    sec, out = timed(lambda: dask.compute(layers["counts"], scheduler="sync")[0], xp, repeats=3, warmup=1)
    first = blocks[0].shape[0]
    ref = group_sums(sp.csr_matrix(host(blocks[0])), codes[:first], s["groups"], np)
    mine = group_sums(blocks[0], xp.asarray(codes[:first]), s["groups"], xp)
    return {"cells": x.shape[0], "groups": int(kept.size), "genes": s["genes"], "seconds": sec,
            "cells_per_second": x.shape[0] / sec, "result_shape": list(out.shape),
            "max_abs_diff_block0_vs_numpy": float(np.max(np.abs(np.asarray(host(mine)) - ref)))}


def wilcoxon(xp: ModuleType, s: dict[str, int]) -> dict[str, Any]:
    from cytodask.differential import wilcoxon as rank_sum

    rng = np.random.default_rng(5)
    half = s["samples"] // 2
    xh = rng.standard_normal((s["features"], half))
    yh = rng.standard_normal((s["features"], half)) + 0.01 * np.arange(s["features"])[:, None]
    x, y = xp.asarray(xh), xp.asarray(yh)
    sec, out = timed(lambda: rank_sum(x, y), xp, repeats=3, warmup=1)
    rows = slice(0, 8)
    ref = rank_sum(xh[rows], yh[rows]).pvalue
    mine = np.asarray(host(out.pvalue))[rows]
    return {"features": s["features"], "samples": s["samples"], "seconds": sec,
            "max_rel_p_diff_vs_numpy_8_rows": float(np.max(np.abs(mine - ref) / np.maximum(ref, 1e-300)))}
