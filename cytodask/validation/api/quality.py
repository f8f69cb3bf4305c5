"""The quality score: a weighted mean of the checks' components, each in [0, 1], over the present ones."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

#: Component → (check table, how the table's rows of one signature give a value in [0, 1]).
COMPONENTS: dict[str, tuple[str, str]] = {
    "sample_level": ("sample_level", "median over cell types (and whole sample) of Spearman rho, clipped to [0, 1]"),
    "cell_type_level": ("cell_type_level", "Spearman rho across cell types, clipped to [0, 1]"),
    "pseudobulk_single_cell": ("pseudobulk_vs_single_cell", "Lin's CCC of pseudobulk vs single-cell mean, "
                                                            "clipped to [0, 1]"),
    "single_cell": ("single_cell", "2 (median AUC over cell types - 0.5), clipped to [0, 1]"),
    "biological": ("biological", "percentile of the best expected type by activity (1 = first)"),
    "coverage": ("coverage", "detected signature genes / signature genes"),
    "stability": ("stability", "mean of the bootstrap and gene-fold mean Spearman rho, clipped to [0, 1]"),
}
DEFAULT_WEIGHT = 0.2
#: Confidence bands: (label, lowest score, fewest present components); the first that holds.
CONFIDENCE = (("high", 0.7, 5), ("medium", 0.4, 3), ("low", 0.0, 1))
OVERALL = "(overall)"
QUALITY_COLUMNS = ["signature", "quality_score", *COMPONENTS, "n_components", "missing_components", "confidence"]


def _clip(v: float) -> float:
    return float(np.clip(v, 0.0, 1.0)) if np.isfinite(v) else np.nan


def _median(values: pd.Series) -> float:
    v = values.to_numpy(dtype=np.float64)
    v = v[np.isfinite(v)]
    return float(np.median(v)) if v.size else np.nan


_VALUE: dict[str, Callable[[pd.DataFrame], float]] = {
    "sample_level": lambda t: _clip(_median(t["spearman_rho"])),
    "cell_type_level": lambda t: _clip(_median(t["spearman_rho"])),
    "pseudobulk_single_cell": lambda t: _clip(_median(t["ccc_mean"])),
    "single_cell": lambda t: _clip(2.0 * (_median(t["auc"]) - 0.5)),
    "biological": lambda t: _clip(_median(t["percentile_activity"])),
    "coverage": lambda t: _clip(_median(t["coverage"])),
    "stability": lambda t: _clip(np.nanmean([_median(t["bootstrap_rho_mean"]), _median(t["fold_rho_mean"])])
                                 if t[["bootstrap_rho_mean", "fold_rho_mean"]].notna().any(axis=None) else np.nan),
}


def confidence(score: float, n_present: int) -> str:
    """``high`` (score ≥ 0.7 from ≥ 5 components), ``medium`` (≥ 0.4 from ≥ 3), ``low``, or ``none`` (no score)."""
    if not np.isfinite(score):
        return "none"
    return next((label for label, low, k in CONFIDENCE if score >= low and n_present >= k), "low")


def _reasons(rows: pd.DataFrame) -> str:
    r = sorted({x for x in rows["reason"].astype(str) if x}) if "reason" in rows else []
    return r[0] if r else "no value for this signature"


def _absent(check: str) -> str:
    if check == "biological":
        return "no expectation for this signature in the expectations table"
    return f"signature not in the {check} table"


def quality_score(tables: Mapping[str, pd.DataFrame], signatures: list[str], *,
                  weights: Mapping[str, float] | None = None, skipped: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Quality per signature, and an ``(overall)`` row of the means over signatures.

    ``quality_score = Σ wᵢ cᵢ / Σ wᵢ`` over the present components ``cᵢ`` (:data:`COMPONENTS`,
    default weight 0.2 each); a missing component is NaN and named with its reason in
    ``missing_components``; ``confidence`` from :data:`CONFIDENCE`. ``skipped`` gives the
    reason of each check that was not run.
    """
    w = {c: DEFAULT_WEIGHT for c in COMPONENTS} | dict(weights or {})
    bad = [c for c in w if c not in COMPONENTS]
    if bad or any(v < 0 for v in w.values()):
        raise ValueError(f"weights: unknown component(s) {bad} or a negative weight; components: {list(COMPONENTS)}")
    rows = []
    for sig in signatures:
        row: dict[str, object] = {"signature": sig}
        missing = []
        for comp, (check, _) in COMPONENTS.items():
            table = tables.get(check)
            if table is None:
                row[comp] = np.nan
                missing.append(f"{comp}: {(skipped or {}).get(check, 'check not run')}")
                continue
            part = table[table["signature"] == sig]
            row[comp] = _VALUE[comp](part) if len(part) else np.nan
            if not np.isfinite(row[comp]):
                missing.append(f"{comp}: {_reasons(part) if len(part) else _absent(check)}")
        present = [c for c in COMPONENTS if np.isfinite(row[c]) and w[c] > 0]
        total = sum(w[c] for c in present)
        row["quality_score"] = sum(w[c] * row[c] for c in present) / total if total > 0 else np.nan
        row["n_components"] = len(present)
        row["missing_components"] = "; ".join(missing)
        row["confidence"] = confidence(row["quality_score"], len(present))
        rows.append(row)
    out = pd.DataFrame(rows, columns=QUALITY_COLUMNS)
    means = out[["quality_score", *COMPONENTS]].mean(numeric_only=True)
    most = int(out["n_components"].max()) if len(out) else 0
    overall = {"signature": OVERALL, **means.to_dict(), "n_components": most, "missing_components": "",
               "confidence": confidence(float(means["quality_score"]), most)}
    out = pd.concat([out, pd.DataFrame([overall])], ignore_index=True)
    out["n_components"] = out["n_components"].astype(np.int64)
    out.attrs["weights"] = {c: float(w[c]) for c in COMPONENTS}
    return out
