"""Summaries of a disease-vs-healthy table: driving populations and conserved programs.

Both read the table of :func:`~cytodask.disease.api.contrast.disease_vs_healthy`
(its q-values are BH over the whole table) and call a test significant when
``qvalue < alpha``; a driving population also needs ``|diff| > min_abs_diff``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import ndtri

from cytodask.core.stats.pvalues import two_sided_normal_pvalue

ALPHA = 0.05
MIN_ABS_DIFF = 0.5  # activity z units
MIN_DISEASES = 3

DRIVER_COLUMNS = ("disease", "cell_type", "rank", "n_significant", "n_tested", "mean_abs_diff", "min_qvalue",
                  "top_signature", "reason")  # fmt: skip
CONSERVED_COLUMNS = ("signature", "cell_type", "n_diseases", "n_significant", "n_up", "n_down", "conserved",
                     "direction", "diseases_significant", "pooled_g", "pooled_se", "pooled_ci_low",
                     "pooled_ci_high", "pooled_pvalue", "tau2", "i2")  # fmt: skip
POOLED_COLUMNS = CONSERVED_COLUMNS[9:]
_NEEDED = ("disease", "cell_type", "signature", "diff", "qvalue")


def _check_table(table: pd.DataFrame, what: str) -> None:
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"{what} needs the DataFrame of disease_vs_healthy, not {type(table).__name__}")
    missing = [c for c in _NEEDED if c not in table.columns]
    if missing:
        raise ValueError(f"{what}: the table lacks {missing}; pass the output of cytodask.disease.disease_vs_healthy")


def _significant(table: pd.DataFrame, alpha: float, min_abs_diff: float = 0.0) -> np.ndarray:
    q = table["qvalue"].to_numpy(dtype=np.float64)
    d = table["diff"].to_numpy(dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return (q < alpha) & (np.abs(d) > min_abs_diff)


def driving_populations(table: pd.DataFrame, *, alpha: float = ALPHA, min_abs_diff: float = MIN_ABS_DIFF
                        ) -> pd.DataFrame:
    """Per disease × cell type: the signatures that move, ranked within each disease.

    Parameters
    ----------
    table
        Output of :func:`~cytodask.disease.api.contrast.disease_vs_healthy`.
    alpha, min_abs_diff
        A signature counts when ``qvalue < alpha`` and ``|diff| > min_abs_diff``
        (defaults 0.05 and 0.5 activity z units).

    Returns
    -------
    DataFrame
        :data:`DRIVER_COLUMNS`: ``n_significant``, ``n_tested`` (non-NaN
        p-values), ``mean_abs_diff`` (mean ``|diff|`` of the significant
        signatures; NaN with reason ``"no significant signature"``),
        ``min_qvalue`` (over all tested signatures), ``top_signature`` (the
        significant one with the largest ``|diff|``) and ``rank`` within the
        disease (1 = the driving population): more significant signatures
        first, then larger ``mean_abs_diff``, then smaller ``min_qvalue``.
    """
    _check_table(table, "driving_populations")
    t = table.assign(_sig=_significant(table, alpha, min_abs_diff), _abs=table["diff"].abs(),
                     _tested=table["pvalue"].notna())
    rows = []
    for (disease, cell_type), g in t.groupby(["disease", "cell_type"], sort=True, observed=True):
        sig = g[g["_sig"]]
        top = sig.sort_values("_abs", ascending=False, kind="stable")["signature"].head(1).tolist()
        reason = "" if len(sig) else ("not tested" if not g["_tested"].any() else "no significant signature")
        rows.append({"disease": disease, "cell_type": cell_type, "n_significant": len(sig),
                     "n_tested": int(g["_tested"].sum()),
                     "mean_abs_diff": float(sig["_abs"].mean()) if len(sig) else np.nan,
                     "min_qvalue": float(g["qvalue"].min()) if g["_tested"].any() else np.nan,
                     "top_signature": top[0] if top else "", "reason": reason})
    out = pd.DataFrame(rows, columns=[c for c in DRIVER_COLUMNS if c != "rank"])
    if len(out):
        out = out.sort_values(["disease", "n_significant", "mean_abs_diff", "min_qvalue"],
                              ascending=[True, False, False, True], kind="stable", na_position="last")
        out["rank"] = out.groupby("disease", sort=False).cumcount() + 1
    else:
        out["rank"] = pd.Series(dtype=np.int64)
    out = out[list(DRIVER_COLUMNS)].reset_index(drop=True)
    out.attrs.update(alpha=alpha, min_abs_diff=min_abs_diff,
                     fdr_family=table.attrs.get("fdr_family", "q-values of the disease_vs_healthy table"))
    return out


def _g_variance(g: np.ndarray, n1: np.ndarray, n2: np.ndarray) -> np.ndarray:
    """Sampling variance of Hedges' g: ``(n₁+n₂)/(n₁n₂) + g²/(2(n₁+n₂))`` (Hedges & Olkin 1985, eq. 5.3.5)."""
    return (n1 + n2) / (n1 * n2) + g * g / (2.0 * (n1 + n2))


def _pooled(g: pd.DataFrame) -> dict[str, float]:
    """DerSimonian–Laird random-effects pooled Hedges' g across diseases.

    ``τ² = max(0, (Q − (k − 1)) / (Σw − Σw²/Σw))`` with fixed-effect weights
    ``w = 1/v`` (DerSimonian & Laird 1986), pooled ``Σw*g / Σw*`` with
    ``w* = 1/(v + τ²)``, its SE ``1/√Σw*``, a normal 95 % CI and p, and
    ``I² = max(0, (Q − (k − 1)) / Q)``. Written out rather than taken from
    ``statsmodels.stats.meta_analysis.combine_effects(method_re="dl")``, which
    does not truncate τ² at 0 (a negative τ² inflates the weights); equal to it
    whenever its τ² ≥ 0.
    """
    ok = g[["hedges_g", "n_disease", "n_healthy"]].notna().all(axis=1).to_numpy()
    eff = g["hedges_g"].to_numpy(dtype=np.float64)[ok]
    if eff.size < 2:
        return dict.fromkeys(POOLED_COLUMNS, np.nan)
    var = _g_variance(eff, g["n_disease"].to_numpy(dtype=np.float64)[ok], g["n_healthy"].to_numpy(dtype=np.float64)[ok])
    w = 1.0 / var
    fixed = float(w @ eff / w.sum())
    q = float(w @ (eff - fixed) ** 2)
    df = eff.size - 1
    tau2 = max(0.0, (q - df) / (w.sum() - (w @ w) / w.sum()))
    ws = 1.0 / (var + tau2)
    est, se = float(ws @ eff / ws.sum()), float(np.sqrt(1.0 / ws.sum()))
    half = float(ndtri(0.975)) * se
    return {"pooled_g": est, "pooled_se": se, "pooled_ci_low": est - half, "pooled_ci_high": est + half,
            "pooled_pvalue": float(two_sided_normal_pvalue(np.float64(est / se), np)), "tau2": tau2,
            "i2": max(0.0, (q - df) / q) if q > 0 else 0.0}


def conserved_programs(table: pd.DataFrame, *, alpha: float = ALPHA, min_diseases: int = MIN_DISEASES,
                       pooled: bool = False) -> pd.DataFrame:
    """Per signature × cell type: in how many diseases it moves, and whether they agree in sign.

    Parameters
    ----------
    table
        Output of :func:`~cytodask.disease.api.contrast.disease_vs_healthy`.
    alpha
        Significant: ``qvalue < alpha`` (BH over the whole contrast table).
    min_diseases
        Conserved: significant in at least this many diseases with one sign (default 3).
    pooled
        Also pool Hedges' g across diseases: DerSimonian–Laird random effects
        (τ² truncated at 0), variance of g as Hedges & Olkin. Diseases compared with shared healthy controls are not
        independent, so the pooled p-value is optimistic; read it as a summary.

    Returns
    -------
    DataFrame
        :data:`CONSERVED_COLUMNS`, conserved rows first; ``direction`` is
        ``"up"``/``"down"`` for conserved rows, ``""`` otherwise; the ``pooled_*``,
        ``tau2`` and ``i2`` columns are NaN unless ``pooled``.
    """
    _check_table(table, "conserved_programs")
    if isinstance(min_diseases, bool) or not isinstance(min_diseases, (int, np.integer)) or min_diseases < 1:
        raise ValueError(f"min_diseases={min_diseases!r}: give a whole number of diseases >= 1 (default 3)")
    t = table.assign(_sig=_significant(table, alpha))
    rows = []
    for (signature, cell_type), g in t.groupby(["signature", "cell_type"], sort=True, observed=True):
        sig = g[g["_sig"]]
        up, down = int((sig["diff"] > 0).sum()), int((sig["diff"] < 0).sum())
        conserved = max(up, down) >= min_diseases
        row = {"signature": signature, "cell_type": cell_type, "n_diseases": int(g["pvalue"].notna().sum()),
               "n_significant": len(sig), "n_up": up, "n_down": down, "conserved": bool(conserved),
               "direction": ("up" if up > down else "down") if conserved else "",
               "diseases_significant": ";".join(sorted(map(str, sig["disease"])))}
        if pooled:
            row.update(_pooled(g))
        rows.append(row)
    out = pd.DataFrame(rows, columns=list(CONSERVED_COLUMNS))
    out = out.sort_values(["conserved", "n_significant", "signature", "cell_type"],
                          ascending=[False, False, True, True], kind="stable").reset_index(drop=True)
    for c in CONSERVED_COLUMNS[9:]:
        out[c] = out[c].astype(np.float64)
    out.attrs.update(alpha=alpha, min_diseases=int(min_diseases), pooled=bool(pooled),
                     fdr_family=table.attrs.get("fdr_family", "q-values of the disease_vs_healthy table"))
    return out
