"""Validation of SyntheticAtlasSpec (cytodask.demo.spec)."""

from __future__ import annotations

import pytest

from cytodask.demo import SyntheticAtlasSpec


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_genes": 4880}, r"n_genes=4880.*>= 4881"),
        ({"n_cells": 0}, r"n_cells=0.*positive"),
        ({"n_cells": -5}, r"n_cells=-5"),
        ({"n_donors": 0}, r"n_donors=0"),
        ({"seed": -1}, r"seed=-1"),
        ({"tile_cells": 0}, r"tile_cells=0"),
        ({"disease_fraction": 1.5}, r"disease_fraction=1.5.*\[0, 1\]"),
        ({"planted": (("IFNX", "Monocyte", 1.0),)}, r"cytokine 'IFNX'.*allowed.*'IFNG'"),
        ({"planted": (("IFNG", "Neutrophil", 1.0),)}, r"cell_type_l2 'Neutrophil'.*allowed.*'Monocyte'"),
        ({"planted": (("IFNG", "Monocyte", float("nan")),)}, r"strength"),
        ({"planted": (("IFNG", "Monocyte"),)}, r"\(cytokine, cell_type_l2, strength\)"),
    ],
)
def test_invalid_spec_raises(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SyntheticAtlasSpec(**kwargs)
