"""The activity stage on the atlas store (single cells, CSR blocks) and on pseudobulk rows
equals in-memory `infer` on the same data, for any block size."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pytest

from cytodask import Config
from cytodask.activity import infer
from cytodask.activity.stage import ActivityStage
from cytodask.aggregation.pseudobulk import PseudobulkStage
from cytodask.core.runner import run_stages
from cytodask.core.store import ResultStore
from cytodask.demo import SyntheticAtlasSpec, write_h5ad
from cytodask.ingest import ConvertStage, LocalH5ADSource

SPEC = SyntheticAtlasSpec(n_cells=1200, n_genes=5000, n_donors=6, seed=5)


@pytest.fixture(scope="module")
def atlas_h5ad(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sc") / "a.h5ad"
    write_h5ad(SPEC, path)
    return path


@pytest.mark.parametrize(("method", "block_cells"), [("analytic", 300), ("analytic", 1000), ("permutation", 500)])
def test_single_cell_stage_equals_infer(tmp_path: Path, atlas_h5ad: Path, method: str, block_cells: int):
    stages = [ConvertStage("convert", LocalH5ADSource(atlas_h5ad), block_cells=block_cells),
              ActivityStage("act", inputs=("convert",), signature="CytoSig", layer="X", method=method, n_rand=50)]
    store = ResultStore(tmp_path)
    reports = run_stages(stages, store, Config(cluster="none"))
    assert reports[1].n_blocks == -(-SPEC.n_cells // block_cells)
    got = ad.read_zarr(store.stage_path("act"))
    ref = infer(ad.read_h5ad(atlas_h5ad), "CytoSig", method=method, n_rand=50, seed=0, rng="srand",
                input_kind="counts", backend="numpy")
    # same kernels, same permutation table and gene means; only the summation order of the
    # gene-mean pass differs between blockings: 1e-10 absolute
    for key, frame in (("X", ref.zscore), ("beta", ref.beta), ("se", ref.se), ("pvalue", ref.pvalue)):
        ours = got.X if key == "X" else got.layers[key]
        expected = frame.loc[list(got.var_names), list(got.obs_names)].to_numpy().T
        np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-10, err_msg=key)
    assert got.obs["empty"].dtype == bool


def test_pseudobulk_stage_equals_infer_on_pseudobulk_counts(tmp_path: Path, atlas_h5ad: Path):
    stages = [ConvertStage("convert", LocalH5ADSource(atlas_h5ad), block_cells=400),
              PseudobulkStage("pb", inputs=("convert",), by=["cell_type_l2", "sample"], min_cells=3),
              ActivityStage("act", inputs=("pb",), signature="CytoSig", layer="counts", block_rows=7)]
    store = ResultStore(tmp_path)
    run_stages(stages, store, Config(cluster="none"))
    pb = ad.read_zarr(store.stage_path("pb"))
    got = ad.read_zarr(store.stage_path("act"))
    counts = ad.AnnData(pb.layers["counts"], obs=pb.obs, var=pb.var)
    ref = infer(counts, "CytoSig", method="analytic", input_kind="counts", backend="numpy")
    np.testing.assert_allclose(got.X, ref.zscore.loc[list(got.var_names), list(got.obs_names)].to_numpy().T,
                               rtol=0, atol=1e-10)
    assert got.var["coverage"].between(0, 1).all()


def test_activity_stage_errors(tmp_path: Path, atlas_h5ad: Path):
    with pytest.raises(ValueError, match="method='bogus'"):
        ActivityStage("a", inputs=("convert",), method="bogus")  # type: ignore[arg-type]
    stages = [ConvertStage("convert", LocalH5ADSource(atlas_h5ad), block_cells=600),
              ActivityStage("act", inputs=("convert",), layer="counts")]
    with pytest.raises(ValueError, match="has no layer 'counts'; use layer = 'X'"):
        run_stages(stages, ResultStore(tmp_path), Config(cluster="none"))


@pytest.mark.gpu
@pytest.mark.skipif(not __import__("cytodask.core.backend", fromlist=["x"]).gpu_available(),
                    reason="needs CuPy and a CUDA device")
@pytest.mark.parametrize("method", ["analytic", "permutation"])
def test_single_cell_stage_on_gpu_equals_numpy(tmp_path: Path, atlas_h5ad: Path, method: str):
    out = {}
    for backend in ("numpy", "cupy"):
        stages = [ConvertStage("convert", LocalH5ADSource(atlas_h5ad), block_cells=400),
                  ActivityStage("act", inputs=("convert",), layer="X", method=method, n_rand=50, backend=backend)]
        store = ResultStore(tmp_path / backend)
        run_stages(stages, store, Config(cluster="none"))
        out[backend] = ad.read_zarr(store.stage_path("act"))
    # same maths on another device: float64 rounding only
    np.testing.assert_allclose(out["cupy"].X, out["numpy"].X, rtol=0, atol=1e-8)
    np.testing.assert_allclose(out["cupy"].layers["pvalue"], out["numpy"].layers["pvalue"], rtol=0, atol=1e-8)
