"""Atlas labels → the common vocabulary: shipped crosswalks, token rules, rapidfuzz; the §6 traps."""

from __future__ import annotations

import pandas as pd
import pytest

from cytodask.core.vocabulary import ancestors, common_cell_types
from cytodask.core.vocabulary.mapping import ATLASES, crosswalk, label_tokens, map_cell_types


def _one(label: str, **kw: object) -> pd.Series:
    return map_cell_types([label], **kw).iloc[0]


@pytest.mark.parametrize(("label", "common"), [
    ("Plasmacytoid DC", "pDC"),            # not a plasma cell
    ("plasmacytoid dendritic cells", "pDC"),
    ("CD8+ T cells", "CD8 T"),             # not just T
    ("Secretory epithelial", "Secretory epithelial"),  # not endothelial
    ("Tfh", "Tfh"),
    ("T follicular helper cells", "Tfh"),
])
def test_the_traps_of_analyses_6(label: str, common: str) -> None:
    row = _one(label)
    assert row["common"] == common
    assert row["source"] in ("table", "rule")
    if common == "Tfh":
        assert ancestors(row["common"])[1] == "CD4 T"
    if common == "Secretory epithelial":
        assert "Endothelial" not in ancestors(row["common"])
        assert ancestors(row["common"])[1] == "Epithelial"


def test_a_literal_plus_is_a_literal() -> None:
    """'CD8+ T cell' in a table matches that label only, never 'CD88 T cell' as the regex CD8+ would."""
    out = map_cell_types(["CD8+ T cell", "CD88 T cell", "CD8++ T cell"], extra={"CD8+ T cell": "Memory CD8 T"})
    by = out.set_index("label")
    assert by.at["CD8+ T cell", "source"] == "table" and by.at["CD8+ T cell", "common"] == "Memory CD8 T"
    assert by.at["CD88 T cell", "source"] != "table" and by.at["CD88 T cell", "common"] == "T"
    assert by.at["CD8++ T cell", "source"] != "table"


def test_sources_scores_and_unmapped_are_reported() -> None:
    out = map_cell_types(["Tregs", "Tregs", "Classical monocytes", "Macrophge", "xyzzy", "Doublets"],
                         atlas="inflammation")
    assert list(out.columns) == ["label", "common", "source", "score"]
    assert list(out["label"]) == ["Tregs", "Classical monocytes", "Macrophge", "xyzzy", "Doublets"]
    by = out.set_index("label")
    assert (by.at["Tregs", "common"], by.at["Tregs", "source"], by.at["Tregs", "score"]) == ("Treg", "table", 1.0)
    assert (by.at["Classical monocytes", "common"], by.at["Classical monocytes", "source"]) == ("CD14 Monocyte", "rule")
    assert (by.at["Macrophge", "common"], by.at["Macrophge", "source"]) == ("Macrophage", "fuzzy")
    assert 0.7 < by.at["Macrophge", "score"] < 0.9
    for label in ("xyzzy", "Doublets"):  # nothing matches / the table says "not a cell type"
        assert by.at[label, "source"] == "unmapped" and by.at[label, "common"] is None and by.at[label, "score"] == 0


@pytest.mark.parametrize("atlas", ATLASES)
def test_shipped_crosswalks_name_only_common_types(atlas: str) -> None:
    table = crosswalk(atlas)
    assert len(table) > 20 and table["label"].is_unique
    assert set(table["common"]) - {""} <= set(common_cell_types().index)
    out = map_cell_types(table["label"], atlas=atlas)
    mapped = out[out["source"] == "table"]
    assert len(mapped) == (table["common"] != "").sum()


@pytest.mark.parametrize(("atlas", "label", "common"), [
    ("cima", "CD4_Tfh-like_CXCR5", "Tfh"), ("cima", "CD8_Tem_CCR7neg", "Memory CD8 T"), ("cima", "pDC_IRF4", "pDC"),
    ("cima", "CD4_regulatory", "Treg"), ("inflammation", "Mono_nonClassical", "CD16 Monocyte"),
    ("inflammation", "T_CD8_EM_CX3CR1high", "Memory CD8 T"), ("scatlas", "M04_pDC_LILRA4", "pDC"),
    ("scatlas", "B11_Plasma_IGHG2", "Plasma"), ("census", "CD8-positive, alpha-beta T cell", "CD8 T"),
    ("census", "plasmacytoid dendritic cell", "pDC"),
])
def test_real_atlas_labels(atlas: str, label: str, common: str) -> None:
    assert _one(label, atlas=atlas)["common"] == common


@pytest.mark.parametrize(("label", "common"), [
    ("CD8_Tem_GZMK", "Memory CD8 T"), ("Mono_CD14", "CD14 Monocyte"), ("NK_bright", "NK"),
    ("CD16-negative NK cells", "NK"), ("CD14- CD16+ monocytes", "CD16 Monocyte"), ("Non-classical monocytes", "CD16 Monocyte"),
    ("gamma-delta T cells", "gdT"), ("CD8T07_Tex_PDCD1", "CD8 T"), ("S22_CAF_ACTA2", "Fibroblast"),
    ("Goblet cells", "Secretory epithelial"), ("Endothelial cells", "Endothelial"), ("tumour cells", "Malignant"),
    ("Naive CD4+ T cells", "Naive CD4 T"), ("Th17 cells", "Th17"), ("HSC/MPP", "HSPC"), ("Alveolar macrophages", "Macrophage"),
])
def test_token_rules(label: str, common: str) -> None:
    row = _one(label)
    assert (row["common"], row["source"]) == (common, "rule")


def test_tokens() -> None:
    assert label_tokens("CD8+ T cells") == ["cd8", "t"]
    assert label_tokens("Tregs") == ["treg"]
    assert label_tokens("CD16-negative, CD56-bright natural killer cell, human") == ["cd56", "bright", "nk"]
    assert "endothelial" not in label_tokens("Secretory epithelial")


def test_extra_from_csv_overrides_shipped(tmp_path) -> None:
    path = tmp_path / "mine.csv"
    pd.DataFrame({"label": ["Mono", "Weird_cluster_7"], "common": ["CD14 Monocyte", "Mast"]}).to_csv(path, index=False)
    by = map_cell_types(["Mono", "Weird_cluster_7"], atlas="cima", extra=path).set_index("label")
    assert by.at["Mono", "common"] == "CD14 Monocyte" and by.at["Weird_cluster_7", "common"] == "Mast"


def test_bad_input_names_the_fix() -> None:
    with pytest.raises(ValueError, match="no shipped crosswalk.*cima"):
        map_cell_types(["B"], atlas="CIMA_v9")
    with pytest.raises(ValueError, match="not in the common vocabulary"):
        map_cell_types(["B"], extra={"B": "B lymphocyte"})
    with pytest.raises(ValueError, match="'label' and 'common'"):
        map_cell_types(["B"], extra=pd.DataFrame({"name": ["B"]}))
    with pytest.raises(TypeError, match="wrap it"):
        map_cell_types("CD8 T")
    assert map_cell_types([]).empty


@pytest.mark.parametrize("atlas", ["cima", "inflammation", "scatlas"])
@pytest.mark.parametrize("use_crosswalk", [True, False])
def test_synthetic_world_crosswalk_is_recovered(atlas: str, use_crosswalk: bool) -> None:
    """Every label of the three synthetic atlases (issue 16's truth.json ``crosswalk``) maps to its planted
    common type, with or without naming the atlas; labels the truth calls no cell type stay unmapped."""
    from cytodask.demo.world import truth, world_spec

    planted = truth(world_spec(atlas, size="unit"))["crosswalk"]
    out = map_cell_types(list(planted), atlas=atlas if use_crosswalk else None).set_index("label")
    for label, common in planted.items():
        assert out.at[label, "common"] == common, (label, out.loc[label].to_dict())
        assert (out.at[label, "source"] == "unmapped") == (common is None)
