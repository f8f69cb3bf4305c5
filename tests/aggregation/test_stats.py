"""Mean / variance / non-zero counts per group: kernels, Chan merge and the stage vs scanpy.get.aggregate.

scanpy's ``aggregate(func="var")`` uses ddof = 1 (``dof=1`` default) and NaN for
single-cell groups; we match both. Tolerances: sums, non-zero counts and means
of integer counts are exact; variances agree to rel 1e-6 with scanpy (in
practice ~1e-15: scanpy computes E[x²] − E[x]² in float64 on these small counts)
and to rel 1e-12 across block sizes (Chan merges over different partitions).
"""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scanpy as sc
import scipy.sparse as sp

from cytodask import Config
from cytodask.aggregation.kernels import (
    chan_merge,
    check_stats,
    finish_moments,
    group_moments,
)
from cytodask.aggregation.pseudobulk import PseudobulkStage
from cytodask.core.runner import run_stages
from cytodask.core.store import ResultStore
from cytodask.ingest import ConvertStage, LocalH5ADSource

ALL = ("sum", "mean", "var", "count_nonzero")
LAYER = {"sum": "counts", "mean": "mean", "var": "var", "count_nonzero": "count_nonzero"}


def _stage(tmp: Path, h5ad: Path, block_cells: int, **kw) -> ad.AnnData:
    stages = [ConvertStage("convert", LocalH5ADSource(h5ad), block_cells=block_cells),
              PseudobulkStage("pb", inputs=("convert",), **kw)]
    store = ResultStore(tmp, fsync=False)
    run_stages(stages, store, Config(cluster="none"))
    return ad.read_zarr(store.stage_path("pb"))


def scanpy_reference(adata: ad.AnnData, by: list[str], index: pd.Index) -> dict[str, np.ndarray]:
    """scanpy.get.aggregate on the same cells, rows ordered like ``index`` ("key|key")."""
    ref = sc.get.aggregate(adata, by=by, func=list(ALL))
    names = ["|".join(map(str, r)) for r in ref.obs[by].itertuples(index=False)]
    return {k: pd.DataFrame(np.asarray(ref.layers[k]), index=names).loc[index].to_numpy() for k in ALL}


def _dense_moments(x: np.ndarray, codes: np.ndarray, n_groups: int) -> dict[str, np.ndarray]:
    rows = [x[codes == g] for g in range(n_groups)]
    mean = np.stack([r.mean(0) for r in rows])
    return {"n": np.array([len(r) for r in rows]), "sum": np.stack([r.sum(0) for r in rows]),
            "m2": np.stack([((r - r.mean(0)) ** 2).sum(0) for r in rows]),
            "nnz": np.stack([(r != 0).sum(0) for r in rows]), "mean": mean}


@pytest.mark.parametrize("kind", ["csr", "dense", "csr_explicit_zeros"])
def test_group_moments_equal_two_pass_numpy(kind: str):
    rng = np.random.default_rng(0)
    x = sp.random(300, 40, density=0.2, format="csr", random_state=2, dtype=np.float64)
    x.data = np.round(x.data * 50)  # integer counts, some stored zeros after rounding
    if kind == "csr_explicit_zeros":
        x.data[::7] = 0.0
    block = x.toarray() if kind == "dense" else x
    codes = rng.integers(-1, 5, 300)
    got = group_moments(block, codes, 5, np)
    ref = _dense_moments(x.toarray(), codes, 5)
    np.testing.assert_array_equal(got["n"], ref["n"])
    np.testing.assert_array_equal(got["sum"], ref["sum"])  # integer sums: exact
    np.testing.assert_array_equal(got["nnz"], ref["nnz"])
    np.testing.assert_allclose(got["m2"], ref["m2"], rtol=1e-12, atol=1e-9)


def test_chan_merge_of_split_blocks_equals_whole():
    """Any split of the cells, merged with Chan's update, gives the moments of the whole (rel 1e-12)."""
    rng = np.random.default_rng(1)
    x = rng.poisson(3.0, size=(500, 30)).astype(np.float64) + 1e6  # large offset: E[x²]−E[x]² would lose ~12 digits
    codes = rng.integers(0, 4, 500)
    whole = group_moments(x, codes, 4, np)
    acc = None
    for a, b in [(0, 7), (7, 130), (130, 131), (131, 500)]:
        part = group_moments(x[a:b], codes[a:b], 4, np)
        acc = part if acc is None else chan_merge(acc, part, np)
    np.testing.assert_array_equal(acc["n"], whole["n"])
    np.testing.assert_allclose(acc["m2"], whole["m2"], rtol=1e-9)
    _, var = finish_moments(acc["n"], acc["sum"], acc["m2"], np)
    ref = np.stack([x[codes == g].var(0, ddof=1) for g in range(4)])
    np.testing.assert_allclose(var, ref, rtol=1e-9)


def test_check_stats():
    assert check_stats(["var", "sum", "var"]) == ("sum", "var")
    with pytest.raises(ValueError, match="'median'.*not among"):
        check_stats(("sum", "median"))


@pytest.mark.parametrize("block_cells", [137, 2000])
def test_stage_stats_match_scanpy(tmp_path: Path, counts_h5ad: Path, counts_adata: ad.AnnData, block_cells: int):
    by = ["cell_type", "sample"]
    out = _stage(tmp_path, counts_h5ad, block_cells, by=by, min_cells=1, stats=ALL)
    ref = scanpy_reference(counts_adata, by, out.obs_names)
    np.testing.assert_array_equal(out.layers["counts"], ref["sum"])
    np.testing.assert_array_equal(out.layers["count_nonzero"], ref["count_nonzero"])
    assert out.layers["count_nonzero"].dtype == np.int64
    np.testing.assert_allclose(out.layers["mean"], ref["mean"], rtol=1e-12)
    np.testing.assert_allclose(out.layers["var"], ref["var"], rtol=1e-6)


def test_stage_stats_identical_for_any_block_size(tmp_path: Path, counts_h5ad: Path):
    a = _stage(tmp_path / "a", counts_h5ad, 100, by=["cell_type"], min_cells=1, stats=ALL)
    b = _stage(tmp_path / "b", counts_h5ad, 1999, by=["cell_type"], min_cells=1, stats=ALL)
    for key in ("counts", "count_nonzero", "mean"):  # exact: integer sums, mean = S / n
        np.testing.assert_array_equal(a.layers[key], b.layers[key])
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_allclose(a.layers["var"], b.layers["var"], rtol=1e-12)


def test_default_stats_keep_fingerprint_and_outputs(tmp_path: Path, counts_h5ad: Path):
    old = PseudobulkStage("pb", inputs=("convert",), by=["cell_type"])
    assert "stats" not in old.params()  # existing specs keep their fingerprints
    assert PseudobulkStage("pb", inputs=("convert",), by=["cell_type"], stats=["var"]).params()["stats"] == ["sum", "var"]
    with pytest.raises(ValueError, match=r"\['median'\] not among"):
        PseudobulkStage("pb", inputs=("convert",), by=["cell_type"], stats=["median"])
    plain = _stage(tmp_path / "p", counts_h5ad, 500, by=["cell_type"], min_cells=1)
    rich = _stage(tmp_path / "r", counts_h5ad, 500, by=["cell_type"], min_cells=1, stats=ALL)
    assert list(plain.layers) == ["counts"]
    np.testing.assert_array_equal(plain.layers["counts"], rich.layers["counts"])
    np.testing.assert_array_equal(plain.X, rich.X)
    pd.testing.assert_frame_equal(plain.obs, rich.obs)


def test_single_cell_groups_have_nan_variance_like_scanpy():
    x = np.array([[1.0, 0.0], [3.0, 2.0], [5.0, 0.0]])
    mom = group_moments(sp.csr_matrix(x), np.array([0, 1, 1]), 2, np)
    mean, var = finish_moments(mom["n"], mom["sum"], mom["m2"], np)
    np.testing.assert_array_equal(mean, [[1.0, 0.0], [4.0, 1.0]])
    assert np.isnan(var[0]).all()
    np.testing.assert_allclose(var[1], [2.0, 2.0])
