"""``pseudobulk()``: every input kind, same numbers as the stage and scanpy, lazy in → lazy out, errors."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import dask
import dask.array as da
import numpy as np
import pytest

from cytodask import Config
from cytodask.aggregation import CellTypeHierarchy, HierarchyConflictError, pseudobulk
from cytodask.aggregation.inputs import _in_memory
from cytodask.aggregation.stage import PseudobulkStage
from cytodask.core.runner import run_stages
from cytodask.core.store import ResultStore
from cytodask.ingest import ConvertStage, LocalH5ADSource, open_atlas
from tests.aggregation.test_stats import ALL, scanpy_reference

BY = ["cell_type", "sample"]


def _stage_output(tmp: Path, h5ad: Path, block_cells: int, **kw) -> ad.AnnData:
    stages = [ConvertStage("convert", LocalH5ADSource(h5ad), batch_size=block_cells),
              PseudobulkStage("pb", inputs=("convert",), **kw)]
    rs = ResultStore(tmp, fsync=False)
    run_stages(stages, rs, Config(cluster="none"))
    return ad.read_zarr(rs.stage_path("pb"))


def test_in_memory_matches_scanpy(counts_adata: ad.AnnData):
    out = pseudobulk(counts_adata, BY, min_cells=1, stats=ALL, batch_size=333)
    ref = scanpy_reference(counts_adata, BY, out.obs_names)
    assert isinstance(out.layers["counts"], np.ndarray) and out.X.dtype == np.float32
    np.testing.assert_array_equal(out.layers["counts"], ref["sum"])  # exact integer sums
    np.testing.assert_array_equal(out.layers["count_nonzero"], ref["count_nonzero"])
    np.testing.assert_allclose(out.layers["mean"], ref["mean"], rtol=1e-12)
    np.testing.assert_allclose(out.layers["var"], ref["var"], rtol=1e-6)  # ddof = 1 like scanpy
    sizes = counts_adata.obs.groupby(BY, observed=True).size()
    sizes.index = ["|".join(map(str, i)) for i in sizes.index]
    np.testing.assert_array_equal(out.obs["n_cells"], sizes.loc[out.obs_names])
    c = out.layers["counts"]
    np.testing.assert_allclose(out.X, np.log2(c / c.sum(1, keepdims=True) * 1e5 + 1), rtol=1e-6)  # float32 X


def test_same_results_as_the_stage_from_store_backed_and_dask(tmp_path: Path, atlas_store, counts_h5ad: Path,
                                                             counts_adata: ad.AnnData):
    store = atlas_store(500)
    stage = _stage_output(tmp_path, counts_h5ad, 500, by=BY, min_cells=5, stats=ALL, carry=["disease"])
    from_path = pseudobulk(store, BY, min_cells=5, stats=ALL, carry=["disease"])
    backed = pseudobulk(ad.read_h5ad(counts_h5ad, backed="r"), BY, min_cells=5, stats=ALL, batch_size=700)
    assert list(from_path.obs_names) == list(stage.obs_names) == list(backed.obs_names)
    assert (from_path.obs["disease"].astype(str) == stage.obs["disease"].astype(str)).all()
    for out in (from_path, backed):
        np.testing.assert_array_equal(out.X, stage.X)  # one implementation: same float32 X
        for key in ("counts", "count_nonzero", "mean", "var"):  # var of integer counts: exact (n, S, Σx²)
            np.testing.assert_array_equal(out.layers[key], stage.layers[key])


def test_dask_backed_input_stays_lazy(atlas_store, counts_adata: ad.AnnData):
    atlas = open_atlas(atlas_store(500))
    lazy = ad.AnnData(X=atlas.X, obs=atlas.obs, var=atlas.var)
    calls = []

    class Count(dask.callbacks.Callback):
        def _pretask(self, key, dsk, state):
            calls.append(key)

    with Count():
        out = pseudobulk(lazy, BY, min_cells=1, stats=("mean", "var"))
    assert calls == []  # nothing computed while building
    assert all(isinstance(out.layers[k], da.Array) for k in ("counts", "mean", "var"))
    assert isinstance(out.X, da.Array) and out.X.dtype == np.float32
    eager = pseudobulk(counts_adata, BY, min_cells=1, stats=("mean", "var"))
    np.testing.assert_array_equal(out.layers["counts"].compute(), eager.layers["counts"])
    np.testing.assert_array_equal(out.layers["var"].compute(), eager.layers["var"])


@pytest.mark.parametrize("kind", ["csr", "dense"])
def test_lazy_stats_identical_for_any_chunking(counts_adata: ad.AnnData, kind: str):
    """Dask input chunked by 1, 7, 100, 1999 or all cells: every layer, var included, bit-identical."""
    mat = counts_adata.X.tocsr() if kind == "csr" else counts_adata.X.toarray()
    results = []
    for rows in (1, 7, 100, 1999, counts_adata.n_obs):
        x = _in_memory(mat, rows) if kind == "csr" else da.from_array(mat, chunks=(rows, -1))
        out = pseudobulk(ad.AnnData(X=x, obs=counts_adata.obs, var=counts_adata.var), BY, min_cells=1, stats=ALL)
        assert isinstance(out.layers["var"], da.Array)
        results.append(dask.compute(dict(out.layers), out.X))
    (ref_layers, ref_x), *others = results
    for layers, x in others:
        for key in ("counts", "count_nonzero", "mean", "var"):
            np.testing.assert_array_equal(layers[key], ref_layers[key], err_msg=key)
        np.testing.assert_array_equal(x, ref_x)


def test_layer_and_dense_input(counts_adata: ad.AnnData):
    a = counts_adata.copy()
    a.layers["raw"] = a.X.copy()
    a.X = np.zeros(a.shape, dtype=np.float32)
    out = pseudobulk(a, ["cell_type"], layer="raw", min_cells=1)
    dense = ad.AnnData(X=counts_adata.X.toarray(), obs=counts_adata.obs)
    ref = pseudobulk(dense, ["cell_type"], min_cells=1, stats=("count_nonzero",))
    np.testing.assert_array_equal(out.layers["counts"], ref.layers["counts"])
    with pytest.raises(ValueError, match=r"layer 'nope' does not exist; available layers: \['raw'\]"):
        pseudobulk(a, ["cell_type"], layer="nope")


def test_errors_name_the_fix(counts_adata: ad.AnnData, levels_adata: ad.AnnData):
    with pytest.raises(ValueError, match=r"\['celltype'\] do not exist; available columns: \['sample', 'cell_type'"):
        pseudobulk(counts_adata, ["celltype"])
    with pytest.raises(ValueError, match=r"all \d+ groups have fewer than min_cells=100000"):
        pseudobulk(counts_adata, ["cell_type"], min_cells=100_000)
    with pytest.raises(ValueError, match="stats=.*'median'"):
        pseudobulk(counts_adata, ["cell_type"], stats=("median",))
    with pytest.raises(TypeError, match="data must be an AnnData"):
        pseudobulk(np.zeros((3, 3)), ["x"])
    bad = levels_adata.copy()
    bad.obs["cell_type_l1"] = bad.obs["cell_type_l1"].astype(str)
    bad.obs.iloc[:3, bad.obs.columns.get_loc("cell_type_l1")] = "Myeloid"  # a few T/B/NK cells as myeloid
    with pytest.raises(HierarchyConflictError, match="cell_type_l"):
        pseudobulk(bad, ["L2", "sample"], hierarchy=CellTypeHierarchy.detect(bad.obs))


def test_hierarchy_levels_and_exclusions_in_by(levels_adata: ad.AnnData):
    h = CellTypeHierarchy.from_atlas("cima", exclude={"L2": ["NK"]})
    out = pseudobulk(levels_adata, ["L2"], hierarchy=h, min_cells=1)
    assert list(out.obs.columns) == ["cell_type_l2", "n_cells"]
    assert set(out.obs["cell_type_l2"]) == {"T", "B", "Mono"}
    assert out.uns["pseudobulk"]["dropped_excluded"] == int((levels_adata.obs["cell_type"] == "NK").sum())
