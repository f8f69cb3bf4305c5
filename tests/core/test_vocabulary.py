"""The shipped vocabulary and name table are consistent and say what ANALYSES.md §1 rules 7-8 say."""

from __future__ import annotations

import re

import pytest

from cytodask.core.vocabulary import ancestors, common_cell_types, cytosig_names, signature_gene
from cytodask.demo.spec import cytosig


def test_name_table_maps_every_non_symbol_cytosig_name() -> None:
    table = cytosig_names()
    assert set(table["cytosig"]) <= set(cytosig().columns)
    assert signature_gene("TNFA") == "TNF"
    assert signature_gene("GMCSF") == "CSF2"
    assert signature_gene("NO") == "NOS2"
    assert signature_gene("IFNG") == "IFNG"  # already a symbol
    assert "inducible" in table.set_index("cytosig").at["NO", "note"]


def test_vocabulary_is_a_tree_with_the_trap_types_apart() -> None:
    types = common_cell_types()
    assert types.index.is_unique
    assert ancestors("Treg") == ["Treg", "CD4 T", "T"]
    assert ancestors("pDC") == ["pDC"]  # not under Plasma, not under DC's conventional subsets
    assert ancestors("Secretory epithelial") == ["Secretory epithelial", "Epithelial"]
    assert types.at["Endothelial", "compartment"] == "stromal"
    assert set(types["compartment"]) == {"immune", "stromal", "epithelial", "malignant", "other"}


def test_unknown_type_is_named() -> None:
    with pytest.raises(ValueError, match=re.escape("'CD8+ T cell' is not in the common")):
        ancestors("CD8+ T cell")
