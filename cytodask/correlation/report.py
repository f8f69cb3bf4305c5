"""The correlation stage's part of the run report: a heatmap of the strongest correlations and their table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from cytodask.core.report import QVALUE_THRESHOLD, ReportSection, figure_png

N_ROWS = 10
N_SIGNATURES = 20
_NOT_STRATA = {"signature", "signature_type", "variable", "rho", "pvalue", "qvalue", "p_value", "q_value",
               "n_samples", "reason"}


def rho_matrix(table: pd.DataFrame, n: int = N_SIGNATURES) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Signatures (the ``n`` with the largest |rho| anywhere) × tests (variable, stratum): rho and q."""
    q = "qvalue" if "qvalue" in table.columns else "q_value"
    strata = [c for c in table.columns if c not in _NOT_STRATA]
    tested = table.dropna(subset=["rho"]).copy()
    label = tested["variable"].astype(str)
    for col in strata:
        label = label + " | " + tested[col].astype(str)
    tested["test"] = label
    strength = tested.assign(_abs=tested["rho"].abs()).groupby("signature")["_abs"].max()
    top = strength.sort_values(ascending=False, kind="stable").index[:n]
    sub = tested[tested["signature"].isin(top)]
    rho = sub.pivot(index="signature", columns="test", values="rho").reindex(top)
    qv = sub.pivot(index="signature", columns="test", values=q).reindex(top)
    return rho, qv


def rho_heatmap_png(rho: pd.DataFrame, qv: pd.DataFrame, method: str) -> bytes:
    """Heatmap of rho (diverging, −1…1), a dot where q < 0.05."""
    n_rows, n_cols = rho.shape
    fig = Figure(figsize=(max(5.0, 2.8 + 0.32 * n_cols), max(3.0, 1.6 + 0.3 * n_rows)), layout="constrained")
    ax = fig.add_subplot()
    im = ax.imshow(rho.to_numpy(dtype=float), cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto",
                   interpolation="nearest")
    ys, xs = np.nonzero(qv.to_numpy(dtype=float) < QVALUE_THRESHOLD)
    ax.scatter(xs, ys, s=8, c="#111", marker="o", label=f"q < {QVALUE_THRESHOLD:g}")
    ax.set_xticks(range(n_cols), [str(c) for c in rho.columns], rotation=90, fontsize=7)
    ax.set_yticks(range(n_rows), [str(r) for r in rho.index], fontsize=7)
    ax.set_xlabel("variable | stratum")
    ax.set_ylabel("signature")
    ax.set_title(f"{method.capitalize()} correlation of activity with sample variables")
    if len(xs):
        ax.legend(loc="upper right", bbox_to_anchor=(1.0, 1.12), frameon=False, fontsize=7)
    fig.colorbar(im, ax=ax, label=f"{method} rho", shrink=0.9)
    return figure_png(fig)


def top_correlations_section(data: Path, method: str) -> list[ReportSection]:
    """The heatmap of the strongest signatures and a table of the ``N_ROWS`` smallest q (ties: larger |rho|)."""
    from cytodask.core.tables import read_table

    table = read_table(data)
    q = "qvalue" if "qvalue" in table.columns else "q_value"
    p = "pvalue" if "pvalue" in table.columns else "p_value"
    tested = table.dropna(subset=[q, "rho"])
    if tested.empty:
        reasons = table["reason"].value_counts().head(3) if "reason" in table.columns else pd.Series(dtype=int)
        why = "; ".join(f"{r!r} ({n} rows)" for r, n in reasons.items()) or "no rows"
        raise ValueError(f"no correlation could be computed: {why}")
    top = (tested.assign(_abs=-tested["rho"].abs()).sort_values([q, "_abs"], kind="stable")
           .head(N_ROWS).drop(columns="_abs"))
    strata = [c for c in table.columns if c not in _NOT_STRATA]
    cols = ["signature", "variable", *strata, "rho", p, q, "n_samples"]
    n_sig = int((tested[q].to_numpy(dtype=float) < QVALUE_THRESHOLD).sum())
    shown = top[cols].assign(rho=np.round(top["rho"].to_numpy(dtype=float), 3)).reset_index(drop=True)
    family = table.attrs.get("fdr_family", f"BH within each variable{' and stratum' if strata else ''}")
    rho, qv = rho_matrix(table)
    best = top.iloc[0]
    caption = (f"{len(tested)} {method} correlations computed, {n_sig} with q < {QVALUE_THRESHOLD:g} ({family}). "
               f"Heatmap: the {len(rho)} signatures with the largest |rho| in any test, one column per variable "
               f"and stratum; dots mark q < {QVALUE_THRESHOLD:g}. Strongest: {best['signature']} with "
               f"{best['variable']} (rho = {best['rho']:.2f}, q = {best[q]:.3g}).")
    alt = (f"Heatmap of {method} rho for signatures {', '.join(map(str, rho.index))} against "
           f"{', '.join(map(str, rho.columns))}")
    return [ReportSection(title="Correlation with sample variables", figure=rho_heatmap_png(rho, qv, method),
                          alt=alt, caption=caption, table=shown,
                          table_caption=f"The {len(shown)} strongest correlations",
                          numeric_from=2 + len(strata), ident="correlation")]
