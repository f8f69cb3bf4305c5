"""The correlation stage's part of the run report: the strongest signature–variable correlations."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cytodask.core.report import QVALUE_THRESHOLD, ReportSection

N_ROWS = 10


def top_correlations_section(data: Path, method: str) -> list[ReportSection]:
    """A table of the ``N_ROWS`` correlations with the smallest q (ties: larger |rho|)."""
    from cytodask.core.tables import read_table

    table = read_table(data)
    q = "qvalue" if "qvalue" in table.columns else "q_value"
    p = "pvalue" if "pvalue" in table.columns else "p_value"
    tested = table.dropna(subset=[q, "rho"])
    if tested.empty:
        raise ValueError("no correlation could be computed (every row has a reason; see the table)")
    top = (tested.assign(_abs=-tested["rho"].abs()).sort_values([q, "_abs"], kind="stable")
           .head(N_ROWS).drop(columns="_abs"))
    strata = [c for c in table.columns if c not in {"signature", "signature_type", "variable", "rho", p, q,
                                                    "n_samples", "reason"}]
    cols = ["signature", "variable", *strata, "rho", p, q, "n_samples"]
    n_sig = int((tested[q].to_numpy(dtype=float) < QVALUE_THRESHOLD).sum())
    shown = top[cols].assign(rho=np.round(top["rho"].to_numpy(dtype=float), 3)).reset_index(drop=True)
    caption = (f"{len(tested)} {method} correlations computed, {n_sig} with q < {QVALUE_THRESHOLD:g} "
               f"(BH within each variable{' and stratum' if strata else ''}); the {len(shown)} strongest:")
    return [ReportSection(title="Correlation with sample variables", caption=caption, table=shown,
                          table_caption=caption, numeric_from=2 + len(strata), ident="correlation")]
