"""Meta-analysis of per-atlas effects (ANALYSES.md §6): fixed and DerSimonian–Laird random effects."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from cytodask.core.stats.fdr import fdr_bh
from cytodask.cross_atlas.kernels import inverse_variance

META_COLUMNS = ["fixed", "fixed_se", "random", "random_se", "tau2", "q", "i2", "ci_low", "ci_high", "pvalue",
                "qvalue", "k"]


def fisher_z(rho: np.ndarray | pd.Series, n: np.ndarray | pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Fisher's ``z = atanh(ρ)`` of a Spearman/Pearson ``ρ`` on ``n`` pairs and its SE ``1/√(n − 3)``
    (NaN for n ≤ 3; ρ = ±1 clipped to ±(1 − 1e-12))."""
    rho = np.clip(np.asarray(rho, dtype=float), -1 + 1e-12, 1 - 1e-12)
    n = np.asarray(n, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        se = np.where(n > 3, 1.0 / np.sqrt(n - 3), np.nan)
    return np.arctanh(rho), se


def meta_analysis(effects: pd.DataFrame, *, effect_col: str, se_col: str, group_cols: Sequence[str],
                  alpha: float = 0.05) -> pd.DataFrame:
    """Pool per-atlas effects within each group (e.g. signature × variable).

    Parameters
    ----------
    effects
        One row per atlas and group: the effect (Fisher z of ρ, a mean difference, ...) and its SE.
    effect_col, se_col
        Columns of the effect and its standard error (rows with a missing or non-positive SE are left out).
    group_cols
        Columns naming a group; each group is pooled on its own.
    alpha
        The confidence interval is ``1 − alpha``.

    Returns
    -------
    DataFrame
        ``group_cols`` then ``fixed, fixed_se, random, random_se, tau2, q, i2, ci_low, ci_high, pvalue,
        qvalue, k``, then ``fixed_pvalue, q_pvalue, reason``. ``i2`` is in percent; ``ci_*``, ``pvalue``
        (two-sided normal) and ``qvalue`` (BH over all groups: ``attrs["fdr_family"]``) are of the random
        effect, the estimate to read when atlases differ; ``fixed_pvalue`` is the fixed effect's and
        ``q_pvalue`` Cochran's Q test. Formulas: :func:`cytodask.cross_atlas.kernels.inverse_variance`;
        they equal ``statsmodels.stats.meta_analysis.combine_effects(method_re="dl")``.
    """
    group_cols = list(group_cols)
    missing = [c for c in [effect_col, se_col, *group_cols] if c not in effects.columns]
    if missing:
        raise ValueError(f"meta_analysis: column(s) {missing} are not in the effects table; it has "
                         f"{list(effects.columns)}")
    if not group_cols:
        raise ValueError("meta_analysis: group_cols is empty; name the columns of a group, e.g. ['signature']")
    zcrit = stats.norm.isf(alpha / 2)
    rows = []
    for key, g in effects.groupby(group_cols, sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        y = g[effect_col].to_numpy(float)
        se = g[se_col].to_numpy(float)
        ok = np.isfinite(y) & np.isfinite(se) & (se > 0)
        row: dict[str, object] = dict(zip(group_cols, key, strict=True))
        if not ok.any():
            row.update({c: np.nan for c in META_COLUMNS}, k=0, fixed_pvalue=np.nan, q_pvalue=np.nan,
                       reason="no effect with a finite, positive standard error")
            rows.append(row)
            continue
        r = inverse_variance(y[ok], se[ok] ** 2)
        k = int(ok.sum())
        row.update({c: r[c] for c in ("fixed", "fixed_se", "random", "random_se", "tau2", "q")})
        row["i2"] = 100.0 * r["i2"]
        row["ci_low"], row["ci_high"] = r["random"] - zcrit * r["random_se"], r["random"] + zcrit * r["random_se"]
        row["pvalue"] = float(2 * stats.norm.sf(abs(r["random"] / r["random_se"])))
        row["k"] = k
        row["fixed_pvalue"] = float(2 * stats.norm.sf(abs(r["fixed"] / r["fixed_se"])))
        row["q_pvalue"] = float(stats.chi2.sf(r["q"], r["df"])) if k > 1 else np.nan
        row["reason"] = "one atlas only: no heterogeneity" if k == 1 else ""
        rows.append(row)
    out = pd.DataFrame(rows, columns=[*group_cols, *META_COLUMNS, "fixed_pvalue", "q_pvalue", "reason"])
    out["qvalue"] = fdr_bh(out["pvalue"].to_numpy(float)) if len(out) else []
    out["k"] = out["k"].astype(int)
    out.attrs["fdr_family"] = ["all groups (" + ", ".join(group_cols) + ")"]
    return out
