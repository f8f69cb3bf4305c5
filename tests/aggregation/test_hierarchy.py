"""Cell-type hierarchies: atlas presets, mapping tables, conflict reports, exclusions and roll-up."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from cytodask.aggregation import (
    CellTypeHierarchy,
    HierarchyConflictError,
    pseudobulk,
    rollup,
)
from cytodask.aggregation.hierarchy import ATLAS_LEVELS, as_hierarchy
from tests.aggregation.conftest import L1_OF
from tests.aggregation.test_stats import ALL


def test_presets_and_detection(levels_adata: ad.AnnData):
    h = CellTypeHierarchy.detect(levels_adata.obs)
    assert h.levels == ("L1", "L2", "L3") and h.column("L3") == "cell_type_l3"  # CIMA-style, no l4 column
    assert CellTypeHierarchy.from_atlas("inflammation").columns == {"L1": "Level1", "L2": "Level2"}
    assert CellTypeHierarchy.from_atlas("scAtlas").column("L2") == "cellType2"
    assert set(ATLAS_LEVELS) == {"cima", "inflammation", "scatlas"}
    with pytest.raises(ValueError, match="unknown atlas 'hca'; known"):
        CellTypeHierarchy.from_atlas("hca")
    with pytest.raises(ValueError, match="level columns of no known atlas"):
        CellTypeHierarchy.detect(pd.DataFrame({"x": [1]}))
    resolved = h.validate(levels_adata.obs)
    assert resolved.mapping("L3", "L1") == {f"{t}-{s}": L1_OF[t] for t in L1_OF for s in "ab"}


def test_conflicts_are_all_reported_with_cell_counts(levels_adata: ad.AnnData):
    obs = levels_adata.obs.copy()
    for col in ("cell_type_l1", "cell_type_l2", "cell_type_l3"):
        obs[col] = obs[col].astype(str)
    t_cells = np.nonzero((obs["cell_type_l2"] == "T").to_numpy())[0]
    obs.iloc[t_cells[:4], obs.columns.get_loc("cell_type_l1")] = "Myeloid"        # L2 'T' under two L1 types
    b_a = np.nonzero((obs["cell_type_l3"] == "B-a").to_numpy())[0]
    obs.iloc[b_a[:2], obs.columns.get_loc("cell_type_l2")] = "NK"               # L3 'B-a' under B and NK
    obs.iloc[b_a[2:5], obs.columns.get_loc("cell_type_l2")] = "Mono"             # ... and Mono
    h = CellTypeHierarchy.detect(obs)
    conflicts = {(c.fine_level, c.fine_type): c for c in h.check(obs)}
    n_t, n_ba = len(t_cells), len(b_a)
    assert set(conflicts) == {("L2", "T"), ("L3", "B-a"), ("L2", "Mono")}  # B→NK stays Lymphoid
    assert conflicts[("L2", "T")].coarse == {"Lymphoid": n_t - 4, "Myeloid": 4}
    assert conflicts[("L3", "B-a")].coarse == {"B": n_ba - 5, "Mono": 3, "NK": 2}
    with pytest.raises(HierarchyConflictError) as err:
        h.validate(obs)
    assert len(err.value.conflicts) == 3
    msg = str(err.value)
    assert (f"L3 (cell_type_l3) 'B-a' -> L2 (cell_type_l2): 'B' ({n_ba - 5:,} cells), 'Mono' (3 cells), "
            "'NK' (2 cells)") in msg
    # excluding the offending labels resolves it
    clean = CellTypeHierarchy.detect(obs, exclude={"L3": ["B-a"], "L2": ["T", "Mono"]})
    assert [c.fine_type for c in clean.check(obs)] == []


def test_mapping_tables_csv_and_toml(tmp_path: Path, levels_adata: ad.AnnData):
    rows = [(L1_OF[t], t, f"{t}-{s}") for t in L1_OF for s in "ab"]
    csv = tmp_path / "map.csv"
    pd.DataFrame(rows, columns=["L3", "L1", "L2"]).assign(L1=[r[0] for r in rows], L2=[r[1] for r in rows],
                                                          L3=[r[2] for r in rows]).to_csv(csv, index=False)
    h = CellTypeHierarchy.from_table(csv)  # header in any order, levels ordered by their number
    assert h.levels == ("L1", "L2", "L3") and h.mapping("L3", "L1")["Mono-b"] == "Myeloid"
    toml = tmp_path / "map.toml"
    toml.write_text('levels = ["L1", "L2", "L3"]\n'
                    'columns = {L1 = "cell_type_l1", L2 = "cell_type_l2", L3 = "cell_type_l3"}\n'
                    'exclude = {L3 = ["Doublet"]}\n'
                    + "".join(f'[[map]]\nL1 = "{a}"\nL2 = "{b}"\nL3 = "{c}"\n' for a, b, c in rows))
    ht = CellTypeHierarchy.from_table(toml)
    assert ht.exclude == {"L3": ("Doublet",)} and ht.mapping("L3", "L2") == h.mapping("L3", "L2")
    ht.validate(levels_adata.obs)  # cells agree with the table
    wrong = levels_adata.obs.copy()
    wrong["cell_type_l2"] = wrong["cell_type_l2"].astype(str).replace({"NK": "T"})
    (c,) = [c for c in ht.check(wrong) if c.fine_type.startswith("NK-a")]
    assert c.table == "NK" and c.coarse == {"T": int((wrong["cell_type_l3"] == "NK-a").sum())}
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"L1": ["Lymphoid", "Myeloid", "Lymphoid", "Myeloid"],
                  "L2": ["T", "T", "B", "B"]}).to_csv(bad, index=False)
    with pytest.raises(HierarchyConflictError,
                       match=r"(?s)'B' -> L1: 'Lymphoid' \(1 rows\), 'Myeloid' \(1 rows\).*'T' ->"):
        CellTypeHierarchy.from_table(bad)
    partial = tmp_path / "partial.csv"
    pd.DataFrame([r for r in rows if r[1] != "NK"], columns=["L1", "L2", "L3"]).to_csv(partial, index=False)
    hp = CellTypeHierarchy.from_table(partial, columns={"L3": "cell_type_l3"})
    with pytest.raises(ValueError, match=r"L3 type\(s\) \['NK-a', 'NK-b'\] are not in the mapping table"):
        hp.validate(levels_adata.obs)
    assert as_hierarchy(str(csv)).levels == h.levels


def test_rollup_equals_direct_aggregation(levels_adata: ad.AnnData):
    """L3 × sample pseudobulk rolled up to L2 and L1 = aggregating the cells directly (no re-read)."""
    h = CellTypeHierarchy.detect(levels_adata.obs).validate(levels_adata.obs)
    fine = pseudobulk(levels_adata, ["cell_type_l3", "sample"], min_cells=1, stats=ALL)
    for level, col in (("L2", "cell_type_l2"), ("L1", "cell_type_l1")):
        up = rollup(fine, h, to=level)
        direct = pseudobulk(levels_adata, [col, "sample"], min_cells=1, stats=ALL)
        assert sorted(up.obs_names) == sorted(direct.obs_names)
        up = up[direct.obs_names]
        np.testing.assert_array_equal(up.obs["n_cells"], direct.obs["n_cells"])
        for key in ("counts", "count_nonzero"):
            np.testing.assert_array_equal(up.layers[key], direct.layers[key])  # sums of integers: exact
        np.testing.assert_allclose(up.layers["mean"], direct.layers["mean"], rtol=1e-12)
        np.testing.assert_allclose(up.layers["var"], direct.layers["var"], rtol=1e-10)  # k-way Chan merge
        np.testing.assert_allclose(up.X, direct.X, rtol=1e-6)


def test_rollup_with_table_exclusions_and_min_cells(levels_adata: ad.AnnData):
    fine = pseudobulk(levels_adata, ["cell_type_l3", "sample"], min_cells=1)
    h = CellTypeHierarchy.detect(levels_adata.obs, exclude={"L3": ["Mono-a"]}).validate(levels_adata.obs)
    up = rollup(fine, h, to="cell_type_l2", min_cells=30)
    direct = pseudobulk(levels_adata, ["L2", "sample"], hierarchy=h, min_cells=30)
    assert sorted(up.obs_names) == sorted(direct.obs_names)
    np.testing.assert_array_equal(up[direct.obs_names].layers["counts"], direct.layers["counts"])
    with pytest.raises(ValueError, match="no column of a level finer than 'L3'"):
        rollup(fine, h, to="L3")


def test_rollup_of_lazy_and_stage_style_pseudobulk(tmp_path: Path, levels_adata: ad.AnnData):
    """Dask layers stay lazy through a roll-up; a stage output (no uns) needs by=; outputs write to .h5ad."""
    import dask.array as da

    h = CellTypeHierarchy.detect(levels_adata.obs).validate(levels_adata.obs)
    lazy_in = ad.AnnData(X=da.from_array(levels_adata.X, chunks=(700, -1), asarray=False,
                                         meta=levels_adata.X[:0]), obs=levels_adata.obs, var=levels_adata.var)
    fine = pseudobulk(lazy_in, ["cell_type_l3", "sample"], min_cells=1, stats=ALL)
    up = rollup(fine, h, to="L1")
    assert isinstance(up.layers["var"], da.Array) and isinstance(up.X, da.Array)
    fine_eager = pseudobulk(levels_adata, ["cell_type_l3", "sample"], min_cells=1, stats=ALL)
    eager = rollup(fine_eager, h, to="L1")
    np.testing.assert_array_equal(up.layers["counts"].compute(), eager.layers["counts"])
    np.testing.assert_allclose(up.layers["var"].compute(), eager.layers["var"], rtol=1e-12)
    stage_like = ad.AnnData(X=fine_eager.X, obs=fine_eager.obs, layers={"counts": fine_eager.layers["counts"]})
    with pytest.raises(ValueError, match=r"pass by=\[...\]"):
        rollup(stage_like, h, to="L1")
    np.testing.assert_array_equal(rollup(stage_like, h, to="L1", by=["sample"]).layers["counts"],
                                  eager.layers["counts"])
    eager.write_h5ad(tmp_path / "up.h5ad")
    pseudobulk(levels_adata, ["cell_type", "sample"], min_cells=50).write_h5ad(tmp_path / "pb.h5ad")
    back = ad.read_h5ad(tmp_path / "pb.h5ad")
    assert back.uns["pseudobulk"]["n_groups_dropped_min_cells"] > 0
