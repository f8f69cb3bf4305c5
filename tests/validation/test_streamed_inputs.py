"""Checks 3 and 4 read a single-cell activity stage block by block: same tables as in memory, no per-cell table."""

from __future__ import annotations

from pathlib import Path

import anndata
import numpy as np
import pandas as pd
import pytest
import zarr

from cytodask.validation import pseudobulk_vs_single_cell, single_cell_auc
from cytodask.validation.api import single_cell as api
from cytodask.validation.api.cells import single_cells
from tests.validation._data import Inputs


def _with_awkward_labels(sc: anndata.AnnData) -> anndata.AnnData:
    """Copy whose obs adds a categorical cell type with missing values and an unused category, and a numeric one."""
    sc = sc.copy()
    types = sc.obs["cell_type_l2"].astype(str).to_numpy().astype(object)
    types[::97] = np.nan
    sc.obs["ct_awkward"] = pd.Categorical(types, categories=["Zz_unused", *sorted(set(types[1:]) - {np.nan})])
    sc.obs["ct_number"] = pd.factorize(sc.obs["cell_type_l2"], sort=True)[0] * 7  # stored as a plain array
    return sc


@pytest.fixture(scope="module")
def stored(demo_inputs: Inputs, tmp_path_factory: pytest.TempPathFactory) -> tuple[anndata.AnnData, Path]:
    sc = _with_awkward_labels(demo_inputs.single_cell)
    path = tmp_path_factory.mktemp("sc") / "activity.zarr"
    sc.write_zarr(path, chunks=(700, sc.n_vars))  # blocks unlike the counts' (one block of 3,000 cells)
    return sc, path


@pytest.mark.parametrize("column", ["cell_type_l2", "ct_awkward", "ct_number"])
def test_check4_from_the_store_equals_in_memory(demo_inputs: Inputs, stored: tuple, column: str) -> None:
    sc, path = stored
    stored_as = zarr.open_group(str(path), mode="r")["obs"][column].attrs.get("encoding-type")
    assert stored_as == ("array" if column == "ct_number" else "categorical")  # both ways of storing a column
    mem = single_cell_auc(sc, demo_inputs.cells, cell_type_col=column, max_cells=60)
    lazy = single_cell_auc(path, demo_inputs.cells, cell_type_col=column, max_cells=60)
    # the subsample is exact and blocking-free; the mean difference is a sum in another block order
    pd.testing.assert_frame_equal(mem.drop(columns="activity_diff"), lazy.drop(columns="activity_diff"),
                                  check_exact=True)
    np.testing.assert_allclose(mem["activity_diff"], lazy["activity_diff"], rtol=1e-12)
    if column == "ct_awkward":  # the missing label is a group of its own ("nan"); the unused category is no row
        assert "nan" in set(lazy["cell_type"]) and "Zz_unused" not in set(lazy["cell_type"])


def test_check3_from_the_store_equals_in_memory(demo_inputs: Inputs, stored: tuple) -> None:
    sc, path = stored
    mem = pseudobulk_vs_single_cell(demo_inputs.activity, sc, sample_col="sample", cell_type_col="cell_type_l2")
    lazy = pseudobulk_vs_single_cell(demo_inputs.activity, path, sample_col="sample", cell_type_col="cell_type_l2")
    for a, b in zip(mem, lazy, strict=True):
        # medians exact; means are sums in another block order (float64 rounding, O(1) z-scores)
        pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-12, atol=1e-12)
    assert lazy[1]["sc_mean"].notna().sum() > 100


def test_the_store_is_read_without_its_per_cell_table(demo_inputs: Inputs, stored: tuple,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Only var and the categories are decoded whole; the cell-type column arrives as codes, block by block."""
    _, path = stored
    read = []
    original = anndata.io.read_elem

    def spy(elem: object) -> object:
        read.append(elem.name)  # type: ignore[attr-defined]
        return original(elem)

    monkeypatch.setattr(anndata.io, "read_elem", spy)
    sc = single_cells(path, ["cell_type_l2"])
    codes, labels = sc.labels("cell_type_l2")
    assert read == ["/var", "/obs/cell_type_l2/categories"]
    assert codes.dtype == np.int32 and codes.chunks[0] == sc.z.chunks[0] and len(codes.chunks[0]) == 5
    np.testing.assert_array_equal(labels, sorted(set(stored[0].obs["cell_type_l2"].astype(str))))


def test_check4_does_not_read_the_atlas_obs(demo_inputs: Inputs, stored: tuple, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Counts from an atlas store: its obs (every cell's labels) is never read for check 4."""
    from cytodask.ingest import LocalH5ADSource
    from cytodask.ingest.conversion import convert

    sc, path = stored
    h5ad = tmp_path / "cells.h5ad"
    demo_inputs.cells.write_h5ad(h5ad)
    store = tmp_path / "cells.zarr"
    convert(LocalH5ADSource(h5ad), store, batch_size=1000, fsync=False)
    mem = single_cell_auc(sc, demo_inputs.cells, cell_type_col="cell_type_l2", max_cells=60)

    def refuse(*_: object) -> None:
        raise AssertionError("the atlas obs was read")

    monkeypatch.setattr("cytodask.aggregation.inputs.read_obs", refuse)
    lazy = single_cell_auc(path, store, cell_type_col="cell_type_l2", max_cells=60)
    pd.testing.assert_frame_equal(mem.drop(columns="activity_diff"), lazy.drop(columns="activity_diff"),
                                  check_exact=True)


def test_short_subsample_groups_are_taken_again_exactly(demo_inputs: Inputs, monkeypatch: pytest.MonkeyPatch) -> None:
    """Bounds far too low (−6 sd instead of +8) leave groups short: the unbounded pass restores the exact subsample."""
    sc, cells = demo_inputs.single_cell, demo_inputs.cells
    exact = single_cell_auc(sc, cells, cell_type_col="cell_type_l2", max_cells=40)
    passes = []
    bounds, candidates = api.subsample_thresholds, api.G.auc_candidates
    monkeypatch.setattr(api, "subsample_thresholds", lambda sizes, k, xp: bounds(sizes, k, xp, sds=-6.0))
    monkeypatch.setattr(api.G, "auc_candidates", lambda *a, **kw: passes.append(1) or candidates(*a, **kw))
    again = single_cell_auc(sc, cells, cell_type_col="cell_type_l2", max_cells=40)
    assert len(passes) == 2  # the bounded pass fell short, the second took those groups whole
    pd.testing.assert_frame_equal(exact, again, check_exact=True)


def test_subsample_thresholds() -> None:
    from cytodask.validation.kernels import KEY_MAX, subsample_thresholds

    b = subsample_thresholds(np.array([0, 10, 50, 51, 10_000, 10**9]), 50, np)
    assert b.dtype == np.uint64 and (b[:4] == KEY_MAX).all()  # ≤ k members, or p ≥ 1: keep all
    p = (50 + 8 * np.sqrt(50) + 64) / np.array([10_000, 10**9])
    np.testing.assert_allclose(b[4:].astype(float) / 2.0**64, p, rtol=1e-12)
    # the count under the bound is Binomial(n, p): k is ≥ 8 sd below its mean
    n = 10_000
    assert (n * p[0] - 50) / np.sqrt(n * p[0] * (1 - p[0])) > 7.5


def test_bad_single_cell_inputs_name_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a single-cell activity stage output"):
        single_cells(tmp_path / "absent.zarr", ["cell_type_l2"])
    with pytest.raises(TypeError, match="path of a single-cell activity stage"):
        single_cells(np.zeros((3, 2)), ["x"])
    with pytest.raises(ValueError, match="pass single_cell="):
        single_cells(None, ["x"])


def test_max_cells_is_lowered_to_fit_max_memory_and_stated(demo_inputs: Inputs) -> None:
    sc, cells = demo_inputs.single_cell, demo_inputs.cells
    n_rows = sc.obs["cell_type_l2"].nunique() * sc.n_vars
    budget = n_rows * 40 * api.BYTES_PER_KEPT_CELL  # room for 40 cells per group
    with pytest.warns(UserWarning, match=r"exact on up to 40 cells per group instead"):
        fitted = single_cell_auc(sc, cells, cell_type_col="cell_type_l2", max_cells=5000, max_memory=budget)
    assert (fitted["max_cells"] == 40).all() and fitted["n1_used"].max() == 40
    pd.testing.assert_frame_equal(fitted, single_cell_auc(sc, cells, cell_type_col="cell_type_l2", max_cells=40))
    with pytest.raises(ValueError, match="fewer than 20 cells per group"):
        single_cell_auc(sc, cells, cell_type_col="cell_type_l2", max_memory=n_rows * 10 * api.BYTES_PER_KEPT_CELL)
