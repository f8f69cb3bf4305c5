"""Micro-benchmarks behind the speed claims made in comments, docstrings and the README (issue 17 item 7).

Each claim is measured like for like: same data, one thread on both sides
(BLAS/OpenMP/Numba limited by :func:`benchmarks.common.threads`), the same
warm-up, best of ``repeats``:

- ``spmm``: the compiled sparse × dense accumulate of :mod:`cytodask.core.spmm`
  vs SciPy's ``out += A @ W`` (a permutation-mode block: 2,000 cells × 20,000
  genes CSR at ~8 % density, W 20,000 × 256);
- ``per-value``: :func:`cytodask.aggregation.kernels.csr.per_value`'s
  ``np.repeat`` vs the ``searchsorted`` form it uses on CuPy (10,000 rows,
  ~2,000 stored values each);
- ``transpose``: the chunked gather-and-transpose of
  ``differential.api.table._padded`` vs transposing each stratum at once
  (50,000 × 1,170 float32, 30 strata);
- ``t-vs-beta``: the correlation p-value as a t tail (``t_pvalue``) vs the same
  distribution as SciPy's ``pearsonr`` evaluates it (a Beta tail) on
  1,170 × 500 correlations.

Run ``python -m benchmarks.bench_claims``; each row's ``ratio`` is the figure
the comment cites.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import numpy as np
import scipy.sparse as sp

from benchmarks.common import best, row, threads


def claim_spmm(repeats: int = 3) -> dict[str, Any]:
    from cytodask.core.spmm import compiled, csr_matmul_accumulate

    rng = np.random.default_rng(0)
    a = sp.random(2000, 20_000, density=0.08, format="csr", dtype=np.float64, random_state=rng)
    w = rng.standard_normal((20_000, 256))
    out = np.zeros((2000, 256))
    csr_matmul_accumulate(a[:50], w, out[:50])  # warm-up (compiles), both sides
    out[:50] += a[:50] @ w

    def scipy_side() -> None:
        out[:] += a @ w

    ours_s, _, _ = best(lambda: csr_matmul_accumulate(a, w, out), repeats)
    ref_s, _, _ = best(scipy_side, repeats)
    return row("claims", "sparse × dense accumulate, 2,000 × 20,000 CSR (8 %) × 256 columns", ours_s,
               "scipy.sparse: out += A @ W", ref_s, key="claim-spmm", threads=1, reference_threads=1,
               like_for_like=True, table="self", compiled=compiled())


def claim_per_value(repeats: int = 5) -> dict[str, Any]:
    from cytodask.aggregation.kernels.csr import per_value

    rng = np.random.default_rng(1)
    sizes = rng.integers(1000, 3000, 10_000)
    indptr = np.concatenate([[0], np.cumsum(sizes)])
    values = rng.standard_normal(10_000)
    a, b = 0, int(indptr[-1])
    per_value(values, indptr, 0, 100, 0, int(indptr[100]), np)

    def search() -> np.ndarray:
        return values[np.searchsorted(indptr, np.arange(a, b), side="right") - 1]

    search()
    ours_s, got, _ = best(lambda: per_value(values, indptr, 0, 10_000, a, b, np), repeats)
    ref_s, want, _ = best(search, repeats)
    assert np.array_equal(got, want)
    return row("claims", f"row value per stored value, 10,000 rows, {b:,} values: np.repeat", ours_s,
               "np.searchsorted form (the CuPy path)", ref_s, key="claim-per-value", threads=1,
               reference_threads=1, like_for_like=True, table="self")


def claim_transpose(repeats: int = 3) -> dict[str, Any]:
    from cytodask.differential.api.table import _padded

    rng = np.random.default_rng(2)
    values = rng.standard_normal((50_000, 1170), dtype=np.float32)
    stratum = np.sort(rng.integers(0, 30, 50_000))

    def whole() -> np.ndarray:
        order = np.argsort(stratum, kind="stable")
        bounds = np.searchsorted(stratum[order], np.arange(31))
        width = int(np.diff(bounds).max())
        grid = np.full((30, 1170, width), np.nan, dtype=np.float32)
        for s in range(30):
            rows = order[bounds[s]:bounds[s + 1]]
            grid[s, :, : rows.size] = values[rows].T
        return grid.reshape(30 * 1170, width)

    _padded(values[:1000], stratum[:1000], 30)
    whole()
    ours_s, got, _ = best(lambda: _padded(values, stratum, 30), repeats)
    ref_s, want, _ = best(whole, repeats)
    assert np.array_equal(got, want, equal_nan=True)
    return row("claims", "samples × features → strata × features × samples, 50,000 × 1,170 float32, "
               "chunks of 256 rows", ours_s, "one transpose per stratum", ref_s, key="claim-transpose",
               threads=1, reference_threads=1, like_for_like=True, table="self")


def claim_t_vs_beta(repeats: int = 5) -> dict[str, Any]:
    import scipy.special as sc

    from cytodask.correlation.kernels.pearson import t_pvalue

    rng = np.random.default_rng(3)
    r = np.tanh(rng.standard_normal((1170, 500)) * 0.1)
    df = np.full_like(r, 998.0)

    def beta() -> np.ndarray:  # scipy.stats.pearsonr: p = 2 * Beta(ν/2, ν/2).sf((|r| + 1) / 2)
        return 2.0 * sc.betainc(df / 2, df / 2, (1.0 - np.abs(r)) / 2)

    t_pvalue(r[:5], df[:5], np)
    beta()
    ours_s, got, _ = best(lambda: t_pvalue(r, df, np), repeats)
    ref_s, want, _ = best(beta, repeats)
    return row("claims", "correlation p-values, 1,170 × 500, ν = 998: t tail", ours_s,
               "Beta tail (scipy.stats.pearsonr's form)", ref_s, key="claim-t-vs-beta", threads=1,
               reference_threads=1, like_for_like=True, table="self",
               max_rel_dp=float(np.max(np.abs(got / want - 1))))


def run(dataset: str = "demo") -> list[dict[str, Any]]:
    with threads(1):
        return [claim_spmm(), claim_per_value(), claim_transpose(), claim_t_vs_beta()]


if __name__ == "__main__":
    for r in run():
        print(json.dumps(r, default=str))
    sys.exit(0)
