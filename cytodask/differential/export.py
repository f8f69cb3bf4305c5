"""The differential stage's export table.

Schema of ``differential``: signature, group1, group2, activity_diff, pvalue,
qvalue, neg_log10_pval, n_g1, n_g2, then the stratum columns.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from cytodask.core.stage import ExportOptions

DIFFERENTIAL_COLUMNS = ["signature", "group1", "group2", "activity_diff", "pvalue", "qvalue", "neg_log10_pval",
                        "n_g1", "n_g2"]


def differential_export(table: pd.DataFrame, strata: list[str]) -> pd.DataFrame:
    """The differential table in the export schema (strata kept; an older ``feature`` column is renamed)."""
    t = table.rename(columns={"feature": "signature"})
    missing = [c for c in DIFFERENTIAL_COLUMNS if c not in t.columns]
    if missing:
        raise ValueError(f"differential table lacks {missing}; it has {list(t.columns)}")
    return t[DIFFERENTIAL_COLUMNS + [s for s in strata if s in t.columns]]


def read_differential(path: Path, options: ExportOptions, *, strata: list[str]) -> pd.DataFrame:
    """The ``differential`` export table of the differential stage output at ``path``."""
    from cytodask.core.tables import read_table

    return differential_export(read_table(path), strata)
