"""Statistics kernels: cytodask vs scipy.stats on the same in-memory data, like for like.

- differential: Wilcoxon rank-sum of 1,170 features (SecAct) over two groups
  of float32 columns, vs ``scipy.stats.mannwhitneyu(x, y, axis=1,
  method="asymptotic")``;
- correlation: Spearman of 1,170 features × 1,000 samples against 500 donor
  variables. The reference computes only the pairs needed, the way a SciPy
  user would: ``scipy.stats.rankdata`` of both sides, one cross product of the
  standardised ranks and ``scipy.stats.t.sf`` for the p-values
  (``scipy.stats.spearmanr(a.T, b.T)`` would compute the full 1,670 × 1,670
  matrix, 4.8× the pairs; it is used here only to check the numbers).

Threads (issue 17 item 4): the like-for-like rows run both sides on one
thread (BLAS, OpenMP and Numba limited by :func:`benchmarks.common.threads`;
SciPy's rank tests are single-threaded). Rows where cytodask uses every core
against a one-thread reference are kept, labelled ``like_for_like=False``, with
both thread counts in the row. Each timing is the best of ``repeats`` runs
after the same warm-up for both sides on a small slice; imports are done
first. Rows also report the largest deviation from the reference, and each
side's peak RSS during its calls (same process: the input data are included
in both).

Run ``python -m benchmarks.bench_stats [demo|synthetic-100k]``.
"""

from __future__ import annotations

import sys
import warnings
from typing import Any

import numpy as np

from benchmarks.common import best, cores, row, threads

SIZES: dict[str, dict[str, int]] = {
    "demo": {"features": 1170, "columns": 10_000, "samples": 1000, "variables": 500, "repeats": 3},
    "synthetic-100k": {"features": 1170, "columns": 100_000, "samples": 1000, "variables": 500, "repeats": 2},
}


def bench_wilcoxon(features: int, columns: int, repeats: int) -> list[dict[str, Any]]:
    import dask
    import dask.array as da
    import scipy.stats as ss

    from cytodask.differential import wilcoxon

    rng = np.random.default_rng(0)
    data = rng.standard_normal((features, columns), dtype=np.float32)
    data[:, : columns // 2] += 0.01  # a small shift: p-values spread over (0, 1]
    x, y = data[:, : columns // 2], data[:, columns // 2 :]
    wilcoxon(x[:8], y[:8])  # warm-up, both sides
    ss.mannwhitneyu(x[:8], y[:8], axis=1, method="asymptotic")
    with threads(1):
        ours_s, ours, ours_s_peak = best(lambda: wilcoxon(x, y, threads=1), repeats)
        ref_s, ref, ref_s_peak = best(lambda: ss.mannwhitneyu(x, y, axis=1, method="asymptotic"), repeats)
    pool_s, _, pool_s_peak = best(lambda: wilcoxon(x, y), repeats)
    chunk = max(1, features // (4 * cores()))
    xd, yd = da.from_array(x, chunks=(chunk, -1)), da.from_array(y, chunks=(chunk, -1))
    with dask.config.set(scheduler="threads"):
        dask_s, _, dask_s_peak = best(lambda: wilcoxon(xd, yd).pvalue.compute(), repeats)
    # scipy ranks float32 input in float32; check exactness against its float64 result on a slice
    ref64 = ss.mannwhitneyu(x[:50].astype(np.float64), y[:50].astype(np.float64), axis=1, method="asymptotic")
    dev = {
        "max_abs_dU_vs_scipy_f64": float(np.abs(ours.statistic[:50] - ref64.statistic).max()),
        "max_rel_dp_vs_scipy_f64": float(np.abs(ours.pvalue[:50] / ref64.pvalue - 1).max()),
        "max_rel_dp_vs_scipy_f32": float(np.nanmax(np.abs(ours.pvalue / ref.pvalue - 1))),
    }
    task = f"wilcoxon rank-sum {features} features x {columns:,} columns (2 groups), float32"
    ref_name = "scipy.stats.mannwhitneyu(axis=1, asymptotic)"
    n = cores()
    return [
        row("differential", task + ", 1 thread vs 1 thread", ours_s, ref_name, ref_s, key="wilcoxon-2g-1t", peak_gib=ours_s_peak, reference_peak_gib=ref_s_peak,
            threads=1, reference_threads=1, like_for_like=True, **dev),
        row("differential", task + f", thread pool ({n} threads) vs 1 thread", pool_s, ref_name, ref_s,
            key="wilcoxon-2g-pool", peak_gib=pool_s_peak, reference_peak_gib=ref_s_peak, threads=n, reference_threads=1, like_for_like=False),
        row("differential", task + f", Dask threads ({n}) vs 1 thread", dask_s, ref_name, ref_s,
            key="wilcoxon-2g-dask", peak_gib=dask_s_peak, reference_peak_gib=ref_s_peak, threads=n, reference_threads=1, like_for_like=False),
    ]


def scipy_spearman_pairs(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Spearman ρ and two-sided p of every (row of a, row of b) pair with SciPy: ranks, one product, t.sf."""
    import scipy.stats as ss

    ra, rb = ss.rankdata(a, axis=1), ss.rankdata(b, axis=1)
    ra -= ra.mean(axis=1, keepdims=True)
    rb -= rb.mean(axis=1, keepdims=True)
    ra /= np.linalg.norm(ra, axis=1, keepdims=True)
    rb /= np.linalg.norm(rb, axis=1, keepdims=True)
    rho = np.clip(ra @ rb.T, -1.0, 1.0)
    df = a.shape[1] - 2
    with np.errstate(divide="ignore"):
        t = rho * np.sqrt(df / ((1.0 + rho) * (1.0 - rho)))
    return rho, 2.0 * ss.t.sf(np.abs(t), df)


def bench_spearman(features: int, samples: int, variables: int, repeats: int) -> list[dict[str, Any]]:
    import dask
    import dask.array as da
    import scipy.stats as ss

    from cytodask.correlation import spearman

    rng = np.random.default_rng(1)
    a = rng.standard_normal((features, samples))
    b = rng.standard_normal((variables, samples)) + 0.1 * a[:variables]
    spearman(a[:20], b[:10])  # warm-up, both sides
    scipy_spearman_pairs(a[:20], b[:10])
    with threads(1):
        ours_s, ours, ours_s_peak = best(lambda: spearman(a, b, threads=1), repeats)
        ref_s, (rho, p), ref_s_peak = best(lambda: scipy_spearman_pairs(a, b), repeats)
    all_s, _, all_s_peak = best(lambda: spearman(a, b), repeats)
    chunk = max(1, -(-features // cores()))
    ad, bd = da.from_array(a, chunks=(chunk, -1)), da.from_array(b, chunks=(-1, -1))
    with dask.config.set(scheduler="threads"):
        dask_s, _, dask_s_peak = best(lambda: spearman(ad, bd).pvalue.compute(), repeats)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full = ss.spearmanr(a[:40].T, b[:30].T)  # the numbers, on a slice
    big = p > 1e-250
    dev = {
        "max_abs_drho": float(np.abs(ours.rho - rho).max()),
        "max_rel_dp": float(np.abs(ours.pvalue[big] / p[big] - 1).max()),
        "max_abs_drho_vs_spearmanr": float(np.abs(ours.rho[:40, :30] - full.statistic[:40, 40:]).max()),
    }
    task = f"spearman {features} x {samples} samples vs {variables} variables"
    ref_name = "scipy.stats.rankdata + one cross product + scipy.stats.t.sf (the pairs needed)"
    n = cores()
    return [
        row("correlation", task + ", 1 thread vs 1 thread", ours_s, ref_name, ref_s, key="spearman-1t", peak_gib=ours_s_peak, reference_peak_gib=ref_s_peak,
            threads=1, reference_threads=1, like_for_like=True, **dev),
        row("correlation", task + f", thread pool ({n} threads) vs 1 thread", all_s, ref_name, ref_s,
            key="spearman-pool", peak_gib=all_s_peak, reference_peak_gib=ref_s_peak, threads=n, reference_threads=1, like_for_like=False),
        row("correlation", task + f", Dask threads ({n}) vs 1 thread", dask_s, ref_name, ref_s,
            key="spearman-dask", peak_gib=dask_s_peak, reference_peak_gib=ref_s_peak, threads=n, reference_threads=1, like_for_like=False),
    ]


def bench_wilcoxon_strata(features: int, columns: int, n_strata: int = 30) -> list[dict[str, Any]]:
    """See :func:`_bench_wilcoxon_strata`; scanpy's per-call warnings (log2 of empty groups, views) are silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _bench_wilcoxon_strata(features, columns, n_strata)


def _bench_wilcoxon_strata(features: int, columns: int, n_strata: int = 30) -> list[dict[str, Any]]:
    """Wilcoxon within strata (one batched call) vs a loop of scipy, and vs scanpy's rank_genes_groups.

    scanpy is given the same two groups: once over all columns (2 groups) and
    once per stratum (its API has no strata), with ``tie_correct=True``.
    """
    import anndata as ad
    import pandas as pd
    import scanpy as sc
    import scipy.stats as ss

    from cytodask.differential import differential_table, wilcoxon

    rng = np.random.default_rng(2)
    data = rng.standard_normal((columns, features), dtype=np.float32)
    group = np.where(rng.random(columns) < 0.5, "a", "b")
    data[group == "a"] += 0.01
    stratum = rng.integers(0, n_strata, columns).astype(str)
    names = [f"f{i}" for i in range(features)]
    values = pd.DataFrame(data, columns=names)
    obs = pd.DataFrame({"g": group, "s": stratum}, index=values.index)
    adata = ad.AnnData(data, obs=obs.astype("category"))
    adata.var_names = names

    def ours_strata() -> pd.DataFrame:
        return differential_table(values, obs, group_col="g", group1="a", group2="b", strata=["s"], threads=1)

    def scipy_strata() -> dict[str, Any]:
        out = {}
        for s_ in np.unique(stratum):
            m = stratum == s_
            out[s_] = ss.mannwhitneyu(data[m & (group == "a")], data[m & (group == "b")], axis=0,
                                      method="asymptotic")
        return out

    def scanpy_strata() -> None:
        for s_ in np.unique(stratum):
            sub = adata[stratum == s_]
            sc.tl.rank_genes_groups(sub, "g", groups=["a"], reference="b", method="wilcoxon", tie_correct=True)

    def scanpy_two() -> None:
        sc.tl.rank_genes_groups(adata, "g", groups=["a"], reference="b", method="wilcoxon", tie_correct=True)

    ours_strata()  # warm-ups, every tool (scanpy compiles numba kernels on its first call)
    scipy_strata()
    small = adata[:2000].copy()
    sc.tl.rank_genes_groups(small, "g", groups=["a"], reference="b", method="wilcoxon", tie_correct=True)
    reps = 2  # best of two for every tool: the shared 2-core machine has bursts of steal time
    with threads(1):  # every side on one thread: the like-for-like rows
        ours_s, table, ours_s_peak = best(ours_strata, reps)
        scipy_s, ref, scipy_s_peak = best(scipy_strata, reps)
        scanpy_s, _, scanpy_s_peak = best(scanpy_strata, reps)
        two_s, _, two_s_peak = best(lambda: wilcoxon(data[group == "a"].T, data[group == "b"].T, threads=1), reps)
        scanpy_two_s, _, scanpy_two_s_peak = best(scanpy_two, reps)
    got = table.set_index(["s", "signature"])["pvalue"]
    dev = 0.0  # parity with scipy on float64 input (scipy computes float32 input in float32)
    for s_ in list(ref)[:3]:
        m = stratum == s_
        r64 = ss.mannwhitneyu(data[m & (group == "a")].astype(np.float64), data[m & (group == "b")].astype(np.float64),
                              axis=0, method="asymptotic")
        dev = max(dev, float(np.max(np.abs(got.loc[s_].loc[names].to_numpy() / r64.pvalue - 1))))
    task = f"wilcoxon rank-sum {features} features x {columns:,} columns"
    common = {"threads": 1, "reference_threads": 1, "like_for_like": True}
    return [
        row("differential", task + f" within {n_strata} strata, differential_table, 1 thread vs 1 thread", ours_s,
            f"scipy.stats.mannwhitneyu(axis=0) per stratum ({n_strata} calls)", scipy_s,
            key="wilcoxon-strata-scipy-1t", peak_gib=ours_s_peak, reference_peak_gib=scipy_s_peak, max_rel_dp_vs_scipy_f64=dev, **common),
        row("differential", task + f" within {n_strata} strata, differential_table, 1 thread vs 1 thread", ours_s,
            f"scanpy.tl.rank_genes_groups(wilcoxon, tie_correct) per stratum ({n_strata} calls)", scanpy_s,
            key="wilcoxon-strata-scanpy-1t", peak_gib=ours_s_peak, reference_peak_gib=scanpy_s_peak, **common),
        row("differential", task + " (2 groups), wilcoxon, 1 thread vs 1 thread", two_s,
            "scanpy.tl.rank_genes_groups(wilcoxon, tie_correct)", scanpy_two_s, key="wilcoxon-2g-scanpy-1t", peak_gib=two_s_peak,
            reference_peak_gib=scanpy_two_s_peak,
            **common),
    ]


def run(dataset_size: str) -> list[dict[str, Any]]:
    """Benchmark rows (``pipeline, task, cytodask_s, reference, reference_s, ratio`` + details)."""
    if dataset_size not in SIZES:
        raise ValueError(f"unknown dataset size {dataset_size!r}; choose from {sorted(SIZES)}")
    s = SIZES[dataset_size]
    return (bench_wilcoxon(s["features"], s["columns"], s["repeats"])
            + bench_wilcoxon_strata(s["features"], s["columns"])
            + bench_spearman(s["features"], s["samples"], s["variables"], s["repeats"]))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    rows = run(args[0] if args else "synthetic-100k")
    cols = ["pipeline", "task", "cytodask_s", "reference", "reference_s", "ratio"]
    for r in rows:
        extra = {k: v for k, v in r.items() if k not in cols}
        print(f"{r['pipeline']:12s} {r['task']}\n    cytodask {r['cytodask_s']:.3f} s | {r['reference']} "
              f"{r['reference_s']:.3f} s | ratio {r['ratio']:.2f} {extra or ''}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
