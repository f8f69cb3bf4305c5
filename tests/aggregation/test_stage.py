"""Pseudobulk stage vs scanpy.get.aggregate / pandas on the same data."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scanpy as sc

from cytodask import Config
from cytodask.aggregation.stage import PseudobulkStage
from cytodask.core.runner import run_stages
from cytodask.core.store import ResultStore
from cytodask.ingest import ConvertStage, LocalH5ADSource


def _run(tmp: Path, h5ad: Path, block_cells: int, **kw) -> tuple[ad.AnnData, list]:
    stages = [ConvertStage("convert", LocalH5ADSource(h5ad), batch_size=block_cells),
              PseudobulkStage("pb", inputs=("convert",), **kw)]
    store = ResultStore(tmp)
    reports = run_stages(stages, store, Config(cluster="none"))
    return ad.read_zarr(store.stage_path("pb")), reports


@pytest.mark.parametrize("block_cells", [137, 2000])
def test_sums_match_scanpy_and_group_sizes_match_pandas(tmp_path: Path, counts_h5ad: Path,
                                                        counts_adata: ad.AnnData, block_cells: int):
    out, _ = _run(tmp_path, counts_h5ad, block_cells, by=["cell_type", "sample"], carry=["disease", "age"],
                  min_cells=1)
    ref = sc.get.aggregate(counts_adata, by=["cell_type", "sample"], func="sum")
    ref_idx = ["|".join(map(str, r)) for r in ref.obs[["cell_type", "sample"]].itertuples(index=False)]
    ref_sum = pd.DataFrame(np.asarray(ref.layers["sum"]), index=ref_idx)
    ref_sum = ref_sum.loc[out.obs_names]
    # sums of integers in float64: exact; tolerance stated as rel 1e-12
    np.testing.assert_allclose(out.layers["counts"], ref_sum.to_numpy(), rtol=1e-12)
    sizes = counts_adata.obs.groupby(["cell_type", "sample"], observed=True).size()
    sizes.index = ["|".join(map(str, i)) for i in sizes.index]
    np.testing.assert_array_equal(out.obs["n_cells"].to_numpy(), sizes.loc[out.obs_names].to_numpy())
    # carried per-sample columns agree with the cells
    first = counts_adata.obs.groupby("sample", observed=True)["disease"].first()
    expected = first.loc[out.obs["sample"].astype(str)].astype(str).to_numpy()
    assert (out.obs["disease"].astype(str).to_numpy() == expected).all()
    # X = log2(CP1e5 + 1)
    c = out.layers["counts"]
    np.testing.assert_allclose(out.X, np.log2(c / c.sum(1, keepdims=True) * 1e5 + 1), rtol=1e-6)


def test_block_size_does_not_change_results(tmp_path: Path, counts_h5ad: Path):
    a, _ = _run(tmp_path / "a", counts_h5ad, 100, by=["cell_type"], min_cells=1)
    b, _ = _run(tmp_path / "b", counts_h5ad, 1999, by=["cell_type"], min_cells=1)
    np.testing.assert_array_equal(a.layers["counts"], b.layers["counts"])
    np.testing.assert_array_equal(a.X, b.X)


def test_min_cells_drops_are_reported(tmp_path: Path, counts_h5ad: Path, counts_adata: ad.AnnData):
    sizes = counts_adata.obs.groupby(["cell_type", "sample"], observed=True).size()
    threshold = int(np.median(sizes))
    out, reports = _run(tmp_path, counts_h5ad, 500, by=["cell_type", "sample"], min_cells=threshold)
    summary = reports[-1].summary
    assert out.n_obs == int((sizes >= threshold).sum())
    assert summary["n_groups_dropped_min_cells"] == int((sizes < threshold).sum())
    assert all(d["n_cells"] < threshold for d in summary["dropped_groups"])


def test_all_groups_too_small_is_an_error(tmp_path: Path, counts_h5ad: Path):
    with pytest.raises(ValueError, match=r"all \d+ groups have fewer than min_cells=100000"):
        _run(tmp_path, counts_h5ad, 500, by=["cell_type"], min_cells=100_000)


def test_missing_column_lists_available(tmp_path: Path, counts_h5ad: Path):
    with pytest.raises(ValueError, match=r"\['celltype'\] do not exist; available columns: \['sample', 'cell_type'"):
        _run(tmp_path, counts_h5ad, 500, by=["celltype"])


def test_carry_column_varying_within_group_is_an_error(tmp_path: Path, counts_h5ad: Path):
    with pytest.raises(ValueError, match="carry column 'sample' varies within"):
        _run(tmp_path, counts_h5ad, 500, by=["cell_type"], carry=["sample"])
