"""Gene matching: symbols, Ensembl IDs through var, aliases, case, duplicates, coverage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cytodask.activity.genes import alias_table, looks_like_ensembl, match_genes, resolve_symbols

SIG = pd.DataFrame(
    {"S1": [1.0, 2.0, 0.0, 3.0, 1.0], "S2": [0.0, 1.0, 1.0, 0.0, 0.0], "Z": 0.0},
    index=["IL6", "DDX58", "TNF", "C1orf112", "CXCL8"],
)


def test_exact_match_keeps_expression_order():
    m = match_genes(["X", "CXCL8", "IL6", "TNF", "Y"], SIG, min_genes=1)
    assert m.expr_idx.tolist() == [1, 2, 3]
    assert m.sig_idx.tolist() == [4, 0, 2]
    assert list(m.genes) == ["CXCL8", "IL6", "TNF"]
    assert m.n_genes == 3


def test_coverage_counts_nonzero_weights():
    m = match_genes(["IL6", "TNF", "C1orf112"], SIG, min_genes=1)
    # S1 has 4 non-zero genes (IL6, DDX58, C1orf112, CXCL8), 2 found; S2: DDX58, TNF -> 1 of 2
    assert m.coverage["S1"] == pytest.approx(0.5)
    assert m.coverage["S2"] == pytest.approx(0.5)
    assert np.isnan(m.coverage["Z"])


def test_alias_tier_resolves_renamed_genes():
    assert alias_table()["DDX58"] == "RIGI"
    genes = ["RIGI", "IL-6", "IL6"]  # RIGI is DDX58's current symbol; IL-6 an alias of IL6
    assert match_genes(genes, SIG, min_genes=1).n_genes == 1  # exact only (R SecAct)
    m = match_genes(genes, SIG, aliases=True, min_genes=1)
    assert dict(zip(m.genes, m.expr_idx, strict=False)) == {"DDX58": 0, "IL6": 2}  # exact IL6 beats alias IL-6


def test_case_tier_for_mouse_symbols():
    m = match_genes(["Il6", "Tnf", "C1orf112"], SIG, ignore_case=True, min_genes=1)
    assert sorted(m.genes) == ["C1orf112", "IL6", "TNF"]
    assert match_genes(["Il6", "Tnf", "C1orf112"], SIG, min_genes=1).n_genes == 1


def test_duplicates_keep_largest_total():
    m = match_genes(["IL6", "TNF", "IL6"], SIG, totals=np.array([1.0, 5.0, 3.0]), min_genes=1)
    assert dict(zip(m.genes, m.expr_idx, strict=False)) == {"IL6": 2, "TNF": 1}
    m = match_genes(["IL6", "IL6"], SIG, min_genes=1)
    assert m.expr_idx.tolist() == [0]  # ties -> first


def test_lazy_totals_are_computed_only_for_duplicates():
    calls = []

    def totals():
        calls.append(1)
        return np.array([1.0, 5.0, 3.0])

    m = match_genes(["IL6", "TNF", "IL6"], SIG, totals=totals, min_genes=1)
    assert dict(zip(m.genes, m.expr_idx, strict=False)) == {"IL6": 2, "TNF": 1} and calls == [1]
    m = match_genes(["IL6", "TNF", "IFNG"], SIG, totals=totals, min_genes=1)
    assert calls == [1]  # no competing genes: the pass over the matrix is skipped


def test_min_genes_error_explains_fix():
    with pytest.raises(ValueError, match="Only 0 genes are shared.*min_genes=100.*symbol"):
        match_genes(["A", "B"], SIG)


def test_ensembl_ids_through_var_symbol_column():
    ids = [f"ENSG{i:011d}" for i in range(5)]
    var = pd.DataFrame({"feature_name": ["IL6", "TNF", None, "CXCL8", ""]}, index=ids)
    assert looks_like_ensembl(ids) and not looks_like_ensembl(["IL6", "ENSG00000000001"])
    out = resolve_symbols(ids, var)
    assert list(out) == ["IL6", "TNF", ids[2], "CXCL8", ids[4]]
    var2 = var.rename(columns={"feature_name": "my_symbols"})
    assert list(resolve_symbols(ids, var2, symbol_column="my_symbols"))[:2] == ["IL6", "TNF"]
    assert list(resolve_symbols(["IL6"], None)) == ["IL6"]


def test_ensembl_without_symbol_column_is_an_error():
    ids = [f"ENSMUSG{i:011d}.2" for i in range(4)]
    with pytest.raises(ValueError, match="Ensembl IDs.*symbol_column="):
        resolve_symbols(ids, pd.DataFrame({"n_cells": range(4)}, index=ids))
    with pytest.raises(ValueError, match="not a column"):
        resolve_symbols(ids, pd.DataFrame(index=ids), symbol_column="gene")
