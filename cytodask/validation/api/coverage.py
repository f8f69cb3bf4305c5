"""Check 6: how much of each signature the data can see."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

COVERAGE_COLUMNS = ["signature", "n_genes", "n_found", "found_fraction", "n_detected", "detected_fraction",
                    "coverage", "grade", "min_cell_fraction", "reason"]
GRADES = ((0.9, "excellent"), (0.7, "good"), (0.5, "moderate"))


def grade(coverage: float) -> str:
    """``excellent`` ≥ 0.9, ``good`` ≥ 0.7, ``moderate`` ≥ 0.5, else ``poor`` (NaN → empty)."""
    if not np.isfinite(coverage):
        return ""
    return next((name for low, name in GRADES if coverage >= low), "poor")


def gene_coverage(signature: Any, genes: Sequence[str], *, detected: pd.Series | None = None,
                  min_cell_fraction: float = 0.01) -> pd.DataFrame:
    """Check 6: per signature, its genes found in the data and, of those, the detected ones.

    Parameters
    ----------
    signature
        ``"CytoSig"``, ``"SecAct"``, a path or a DataFrame (genes × signatures); a signature's
        genes are its rows with a non-zero weight.
    genes
        Gene symbols of the data.
    detected
        Fraction of cells with a count > 0, per gene (index = symbols), e.g. from
        :func:`cytodask.validation.graph.detected_fraction`; ``None``: detection is NaN with a reason.
    min_cell_fraction
        A found gene is detected when expressed in ≥ this fraction of cells (default 1 %).

    ``found_fraction = n_found / n_genes``; ``detected_fraction = n_detected / n_found``;
    ``coverage = n_detected / n_genes`` (``found_fraction`` without detection), graded
    excellent ≥ 0.9, good ≥ 0.7, moderate ≥ 0.5, else poor.
    """
    from cytodask.activity import load_signature

    sig = signature if isinstance(signature, pd.DataFrame) else load_signature(signature)
    have = pd.Index(map(str, genes))
    rows = []
    for name in sig.columns:
        sgenes = pd.Index(sig.index[sig[name].to_numpy() != 0].astype(str))
        found = sgenes.intersection(have)
        row = {"signature": str(name), "n_genes": len(sgenes), "n_found": len(found),
               "found_fraction": len(found) / len(sgenes) if len(sgenes) else np.nan,
               "min_cell_fraction": float(min_cell_fraction), "reason": ""}
        if detected is None:
            row.update(n_detected=np.nan, detected_fraction=np.nan, coverage=row["found_fraction"],
                       reason="no single-cell expression given: detection not measured (coverage = found fraction)")
        else:
            n_det = int((detected.reindex(found).fillna(0.0).to_numpy() >= min_cell_fraction).sum())
            row.update(n_detected=n_det, detected_fraction=n_det / len(found) if len(found) else np.nan,
                       coverage=n_det / len(sgenes) if len(sgenes) else np.nan)
            if not len(found):
                row["reason"] = "no gene of the signature is in the data"
        row["grade"] = grade(row["coverage"])
        rows.append(row)
    out = pd.DataFrame(rows, columns=COVERAGE_COLUMNS)
    out["n_detected"] = out["n_detected"].astype(np.float64)
    return out
