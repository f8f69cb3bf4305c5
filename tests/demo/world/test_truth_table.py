"""truth.json is complete for every family: each row names what a test needs, in the atlas's own terms."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cytodask.core.vocabulary import common_cell_types
from cytodask.demo.spec import cytosig
from cytodask.demo.world import ATLASES, truth, world_spec
from tests.demo.world._helpers import pseudobulk, symbols

#: Fields every effect row carries (None where not applicable: an organ program has no cell type).
ROW_FIELDS = {"id", "kind", "signature", "database", "cell_type", "common", "direction", "log2_magnitude",
              "expected_auc", "note"}
#: Extra fields per kind: what the family's test reads.
KIND_FIELDS = {
    "association": {"variable", "table", "key", "rho_sign", "expected_r_amplitude"},  # validation, CIMA
    "disease_shift": {"groups", "versus"}, "driver": {"groups", "versus"},  # disease
    "response": {"groups", "versus", "standardised_difference", "realised_auc", "sample_amplitude"},
    "longitudinal": {"groups", "versus"}, "study_shift": {"groups", "versus"},
    "tumor_shift": {"groups", "versus"}, "infiltration": {"groups", "immune_fraction"},  # cancer
    "exhaustion": {"groups", "markers", "marker_log2"}, "caf_subtype": {"groups", "markers", "marker_log2"},
    "organ_program": {"groups", "versus"},  # organ
    "producer": {"gene"},  # validation
}
#: Kinds each atlas must plant (issue 16).
KINDS = {"cima": {"association", "producer"},
         "inflammation": {"disease_shift", "driver", "response", "longitudinal", "study_shift", "producer"},
         "scatlas": {"tumor_shift", "infiltration", "exhaustion", "caf_subtype", "organ_program", "producer"}}


@pytest.fixture(scope="module", params=ATLASES)
def table(request) -> dict:
    return truth(world_spec(request.param, n_cells=600))


def test_rows_carry_what_the_families_read(table: dict) -> None:
    assert json.loads(json.dumps(table, allow_nan=False)) == table  # strict JSON
    rows = table["effects"]
    assert {e["kind"] for e in rows} == KINDS[table["atlas"]]
    assert len({e["id"] for e in rows}) == len(rows)
    labels = set(table["crosswalk_by_column"][table["columns"]["cell_type"]])
    commons = set(common_cell_types().index)
    for e in rows:
        assert ROW_FIELDS | KIND_FIELDS[e["kind"]] <= set(e), (e["id"], ROW_FIELDS | KIND_FIELDS[e["kind"]] - set(e))
        assert e["direction"] in ("up", "down")
        if e["signature"] is not None:
            assert e["signature"] in cytosig().columns and e["database"] == "CytoSig"
        cells = e["cell_type"] if isinstance(e["cell_type"], list) else [e["cell_type"]]
        assert set(cells) - {None} <= labels, e["id"]  # labels of the atlas's cell-type column
        common = e["common"] if isinstance(e["common"], list) else [e["common"]]
        assert set(common) - {None} <= commons, e["id"]  # the common vocabulary
        for column in e.get("groups", {}):  # group columns are obs columns (or the per-cell truth)
            assert column in set(table["columns"].values()) | {"exhausted", "caf_subtype"}, column


def test_null_set_crosswalk_and_compositions(table: dict) -> None:
    planted = {e["signature"] for e in table["effects"] if e["kind"] != "producer"}
    null = table["null"]
    assert len(null["signatures"]) >= 5 and not planted & set(null["signatures"])
    assert null["cell_types"] and set(null["cell_types"]) <= set(table["crosswalk_by_column"][
        table["columns"]["cell_type"]])
    commons = set(common_cell_types().index)
    assert set(table["crosswalk"].values()) - {None} <= commons
    for group, mix in table["composition"].items():
        assert abs(sum(mix.values()) - 1.0) < 1e-4, group
    assert {"log2", "genes"} <= set(table["lineage_markers"])


def test_lineage_markers_are_expressed(scatlas) -> None:
    """The truth's lineage markers are up in their lineage (here: fibroblasts and endothelial cells)."""
    genes = scatlas.truth["lineage_markers"]["genes"]
    pb, g = pseudobulk(scatlas.counts, scatlas.obs, ["cellType1"], symbols(scatlas.spec))
    for lineage, label in (("Fibroblast", "Fibroblast"), ("Endothelial", "Endothelial cell")):
        own = (g["cellType1"] == label).to_numpy()
        level = pb[genes[lineage]].to_numpy()
        assert np.all(level[own].mean(axis=0) > level[~own].max(axis=0) + 2.0), lineage


@pytest.mark.parametrize("name", ATLASES)
def test_producer_genes_are_up_in_their_producer_types(name: str, request: pytest.FixtureRequest) -> None:
    atlas = request.getfixturevalue(name)
    column = atlas.truth["columns"]["cell_type"]
    pb, g = pseudobulk(atlas.counts, atlas.obs, [column], symbols(atlas.spec), min_cells=20)
    rows = atlas.truth["producers"]
    assert {"IFNG", "TNF", "IL1B", "IL6", "IL10", "IL4", "IL13"} <= {r["gene"] for r in rows}
    for r in rows:
        own = g[column].isin(r["cell_types"]).to_numpy()
        level = pb[r["gene"]].to_numpy()
        # a label mixing producer and other subtypes (CIMA's CD4_helper: Th17, Th2, Tfh) is diluted: +1 log2
        assert own.any() and level[own].mean() > level[~own].mean() + 1.0, (name, r["gene"], level[own], level[~own])
