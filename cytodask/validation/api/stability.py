"""Check 7: is each signature's activity stable under resampling of cells and of signature genes?"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from itertools import combinations
from typing import Any

import dask
import numpy as np
import pandas as pd

from cytodask.validation.api.inputs import counts_frame, symbols
from cytodask.validation.kernels import correlation_rows

STABILITY_COLUMNS = ["signature", "n_groups", "n_boot", "bootstrap_rho_mean", "bootstrap_rho_min",
                     "bootstrap_cv_median", "n_folds", "fold_rho_mean", "fold_rho_min", "fold_cv_median", "reason"]


def _activity(counts: np.ndarray, genes: pd.Index, groups: pd.Index, signature: Any) -> pd.DataFrame:
    from cytodask.activity import infer

    frame = pd.DataFrame(counts.T, index=genes, columns=groups)
    return infer(frame, signature, method="analytic", input_kind="counts").zscore


def replicate_summary(z: np.ndarray) -> dict[str, np.ndarray]:
    """Per signature, from replicates ``z`` (replicates × groups × signatures).

    Spearman ρ across groups of every pair of replicate activity vectors (mean and min over
    pairs), and the median over groups of the coefficient of variation across replicates
    ``sd / |mean|`` (ddof 1; groups whose mean is 0 left out).
    """
    b, g, s = z.shape
    pairs = list(combinations(range(b), 2))
    x = np.stack([z[i].T for i, _ in pairs], axis=1).reshape(s * len(pairs), g)
    y = np.stack([z[j].T for _, j in pairs], axis=1).reshape(s * len(pairs), g)
    rho = correlation_rows(x, y, np)["spearman_rho"].reshape(s, len(pairs))
    with np.errstate(invalid="ignore", divide="ignore"):
        cv = np.std(z, axis=0, ddof=1) / np.abs(np.mean(z, axis=0))
    cv = np.where(np.isfinite(cv), cv, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN signatures stay NaN
        return {"rho_mean": np.nanmean(rho, axis=1), "rho_min": np.nanmin(rho, axis=1),
                "cv_median": np.nanmedian(cv, axis=0)}


def gene_folds(genes: Sequence[str], n_folds: int, seed: int) -> np.ndarray:
    """Fold of each gene (sorted names, permuted by ``seed``, dealt round-robin): a deterministic k-fold split."""
    order = np.random.default_rng(np.random.SeedSequence([seed, 7])).permutation(len(genes))
    folds = np.empty(len(genes), dtype=np.int64)
    folds[order] = np.arange(len(genes)) % n_folds
    return folds


def stability(*, signature: Any, cells: Any = None, expression: Any = None, by: Sequence[str] = (),
              n_boot: int = 10, n_folds: int = 5, seed: int = 0, min_cells: int = 10, batch_size: int = 10_000,
              layer: str | None = None, compute: Any = dask.compute) -> pd.DataFrame:
    """Check 7: activity recomputed on bootstrap replicates of cells and on k-fold subsets of signature genes.

    - Cells: ``n_boot`` replicates of the pseudobulk of ``cells`` per group of ``by``, cells drawn
      with replacement within each group (:func:`cytodask.aggregation.bootstrap_pseudobulk`,
      ``resample="cell"``: the same replicates for any blocking), activity recomputed
      (analytic ridge on the counts) on each.
    - Genes: the genes of ``signature`` found in ``expression`` (the pseudobulk counts) are cut in
      ``n_folds`` folds (:func:`gene_folds`); replicate ``f`` drops fold ``f`` from the signature.

    Per signature: Spearman ρ across groups between replicate activity vectors (mean, min over
    pairs) and the median per-group coefficient of variation (:func:`replicate_summary`). A
    missing input leaves its columns NaN with the reason.
    """
    from cytodask.activity import load_signature

    sig = signature if isinstance(signature, pd.DataFrame) else load_signature(signature)
    names = pd.Index(sig.columns.astype(str))
    out = pd.DataFrame({"signature": names, "n_boot": n_boot, "n_folds": n_folds})
    reasons: list[str] = []
    if cells is not None:
        from cytodask.aggregation import bootstrap_pseudobulk

        reps = bootstrap_pseudobulk(cells, list(by), n_boot=n_boot, seed=seed, resample="cell", min_cells=min_cells,
                                    layer=layer, batch_size=batch_size)
        (counts,) = compute(reps.counts)
        genes = symbols(reps.var)
        z = np.stack([_activity(np.asarray(counts[b]), genes, reps.obs.index, sig).reindex(columns=names).to_numpy()
                      for b in range(n_boot)])
        summary = replicate_summary(z)
        out["n_groups"] = z.shape[1]
        out["bootstrap_rho_mean"], out["bootstrap_rho_min"] = summary["rho_mean"], summary["rho_min"]
        out["bootstrap_cv_median"] = summary["cv_median"]
    else:
        reasons.append("no single-cell counts given: bootstrap of cells not computed")
    if expression is not None:
        counts_pb = counts_frame(expression)
        found = sorted(set(sig.index.astype(str)) & set(counts_pb.columns))
        folds = gene_folds(found, n_folds, seed)
        z = np.stack([_activity(counts_pb.to_numpy(), counts_pb.columns, counts_pb.index,
                                sig.drop(index=[g for g, f in zip(found, folds, strict=True) if f == k]))
                      .reindex(columns=names).to_numpy() for k in range(n_folds)])
        summary = replicate_summary(z)
        out["n_groups"] = out.get("n_groups", z.shape[1])
        out["fold_rho_mean"], out["fold_rho_min"], out["fold_cv_median"] = (
            summary["rho_mean"], summary["rho_min"], summary["cv_median"])
    else:
        reasons.append("no pseudobulk expression given: gene folds not computed")
    out["reason"] = "; ".join(reasons)
    return out.reindex(columns=STABILITY_COLUMNS)
