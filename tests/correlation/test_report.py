"""The correlation stage's report section: a rho heatmap of the strongest signatures and a top table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cytodask.core.report import QVALUE_THRESHOLD
from cytodask.core.tables import write_table
from cytodask.correlation.report import rho_matrix, top_correlations_section

PNG = b"\x89PNG\r\n\x1a\n"


def _table() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    rows = []
    for sig in [f"S{i}" for i in range(30)]:
        for var in ("Age", "BMI"):
            for ct in ("B", "T"):
                rho = 0.9 if (sig, var, ct) == ("S7", "Age", "T") else float(rng.uniform(-0.4, 0.4))
                p = 1e-6 if rho == 0.9 else float(rng.uniform(0.01, 1))
                rows.append({"signature": sig, "signature_type": "toy", "variable": var, "rho": rho, "pvalue": p,
                             "qvalue": min(1.0, p * 60), "n_samples": 20, "cell_type": ct, "reason": ""})
    t = pd.DataFrame(rows)
    t.attrs["fdr_family"] = "Benjamini-Hochberg within each of: variable x cell_type"
    return t


def test_heatmap_holds_the_strongest_signatures_and_their_rho(tmp_path: Path):
    table = _table()
    rho, q = rho_matrix(table, n=5)
    assert rho.index[0] == "S7" and list(rho.columns) == ["Age | B", "Age | T", "BMI | B", "BMI | T"]
    for sig in rho.index:
        for test in rho.columns:
            var, ct = test.split(" | ")
            row = table[(table.signature == sig) & (table.variable == var) & (table.cell_type == ct)].iloc[0]
            assert rho.loc[sig, test] == row["rho"] and q.loc[sig, test] == row["qvalue"]
    write_table(tmp_path / "c.zarr", table)
    (sec,) = top_correlations_section(tmp_path / "c.zarr", "spearman")
    assert sec.figure.startswith(PNG) and sec.ident == "correlation"
    assert "Strongest: S7 with Age (rho = 0.90" in sec.caption and "variable x cell_type" in sec.caption
    assert sec.table["signature"].iloc[0] == "S7" and len(sec.table) == 10
    assert sec.table["qvalue"].is_monotonic_increasing
    assert (sec.table["qvalue"] < QVALUE_THRESHOLD).sum() == 1


def test_nothing_computable_says_why(tmp_path: Path):
    table = _table().assign(rho=np.nan, pvalue=np.nan, qvalue=np.nan, reason="n<10")
    write_table(tmp_path / "c.zarr", table)
    with pytest.raises(ValueError, match=r"no correlation could be computed: 'n<10' \(120 rows\)"):
        top_correlations_section(tmp_path / "c.zarr", "spearman")
