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


def mean_difference_effects(data: pd.DataFrame, *, group_col: str = "sex", group1: str = "M",
                            group2: str = "F", min_samples: int = 3) -> pd.DataFrame:
    """Per atlas × common type × signature: ``mean(group1) − mean(group2)`` over samples and its Welch SE.

    ``SE = √(s₁²/n₁ + s₂²/n₂)`` (sample variances, ddof 1); ``pvalue`` is Welch's t test (as
    ``scipy.stats.ttest_ind(equal_var=False)``), ``qvalue`` BH over the table. Returns ``atlas,
    signature, variable, common, n, n1, n2, effect, se, pvalue, qvalue`` (``variable`` = ``group_col``),
    the input of :func:`meta_analysis` and :func:`~cytodask.cross_atlas.conserved.sign_consistency`.
    Groups with fewer than ``min_samples`` samples on a side are left out.
    """
    if group_col not in data.columns:
        raise ValueError(f"mean_difference_effects: no column {group_col!r}; carry it on the samples "
                         f"(the atlas's {group_col!r} obs column: key '{group_col}' of its atlases entry)")
    d = data.dropna(subset=["common", "value", group_col])
    d = d.assign(_g=d[group_col].astype(str))
    d = d[d["_g"].isin([group1, group2])]
    g = d.groupby(["atlas", "signature", "common", "_g"], observed=True)["value"]
    s = pd.DataFrame({"m": g.mean(), "v": g.var(ddof=1), "n": g.size()}).unstack("_g")
    s = s.dropna()
    s = s[(s[("n", group1)] >= min_samples) & (s[("n", group2)] >= min_samples)]
    v1, v2 = s[("v", group1)] / s[("n", group1)], s[("v", group2)] / s[("n", group2)]
    se = np.sqrt(v1 + v2)
    diff = s[("m", group1)] - s[("m", group2)]
    with np.errstate(divide="ignore", invalid="ignore"):
        df = (v1 + v2) ** 2 / (v1**2 / (s[("n", group1)] - 1) + v2**2 / (s[("n", group2)] - 1))
        p = 2 * stats.t.sf(np.abs(diff / se), df)
    out = pd.DataFrame({"n1": s[("n", group1)].astype(int), "n2": s[("n", group2)].astype(int), "effect": diff,
                        "se": se, "pvalue": p}).reset_index()
    out.insert(2, "variable", group_col)
    out["n"] = out["n1"] + out["n2"]
    out["qvalue"] = fdr_bh(out["pvalue"].to_numpy(float)) if len(out) else []
    return out[["atlas", "signature", "variable", "common", "n", "n1", "n2", "effect", "se", "pvalue", "qvalue"]]
