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
from cytodask.aggregation import PseudobulkStage
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
    stages = [ConvertStage("convert", LocalH5ADSource(atlas_h5ad), batch_size=block_cells),
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
        expected = frame.loc[list(got.obs_names), list(got.var_names)].to_numpy()  # both cells x signatures
        np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-10, err_msg=key)
    assert got.obs["empty"].dtype == bool


def test_pseudobulk_stage_equals_infer_on_pseudobulk_counts(tmp_path: Path, atlas_h5ad: Path):
    stages = [ConvertStage("convert", LocalH5ADSource(atlas_h5ad), batch_size=400),
              PseudobulkStage("pb", inputs=("convert",), by=["cell_type_l2", "sample"], min_cells=3),
              ActivityStage("act", inputs=("pb",), signature="CytoSig", layer="counts", block_rows=7)]
    store = ResultStore(tmp_path)
    run_stages(stages, store, Config(cluster="none"))
    pb = ad.read_zarr(store.stage_path("pb"))
    got = ad.read_zarr(store.stage_path("act"))
    counts = ad.AnnData(pb.layers["counts"], obs=pb.obs, var=pb.var)
    ref = infer(counts, "CytoSig", method="analytic", input_kind="counts", backend="numpy")
    np.testing.assert_allclose(got.X, ref.zscore.loc[list(got.obs_names), list(got.var_names)].to_numpy(),
                               rtol=0, atol=1e-10)
    assert got.var["coverage"].between(0, 1).all()


def test_activity_stage_errors(tmp_path: Path, atlas_h5ad: Path):
    with pytest.raises(ValueError, match="method='bogus'"):
        ActivityStage("a", inputs=("convert",), method="bogus")  # type: ignore[arg-type]
    stages = [ConvertStage("convert", LocalH5ADSource(atlas_h5ad), batch_size=600),
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
        stages = [ConvertStage("convert", LocalH5ADSource(atlas_h5ad), batch_size=400),
                  ActivityStage("act", inputs=("convert",), layer="X", method=method, n_rand=50, backend=backend)]
        store = ResultStore(tmp_path / backend)
        run_stages(stages, store, Config(cluster="none"))
        out[backend] = ad.read_zarr(store.stage_path("act"))
    # same maths on another device: float64 rounding only
    np.testing.assert_allclose(out["cupy"].X, out["numpy"].X, rtol=0, atol=1e-8)
    np.testing.assert_allclose(out["cupy"].layers["pvalue"], out["numpy"].layers["pvalue"], rtol=0, atol=1e-8)


@pytest.mark.parametrize("n_rand", [0, -3])
def test_permutation_stage_refuses_n_rand_below_one(n_rand: int):
    """Issue 22.6: n_rand = 0 was silently replaced by the config's n_rand (`self.n_rand or config.n_rand`)."""
    with pytest.raises(ValueError, match=rf"stage 'act': n_rand = {n_rand}, but method = 'permutation' needs n_rand ≥ 1"):
        ActivityStage("act", inputs=("convert",), method="permutation", n_rand=n_rand)
    ActivityStage("act", inputs=("convert",), method="analytic", n_rand=n_rand)  # no permutations: not used


def _graph_holders(tasks: list, value: np.ndarray) -> int:
    """Graph entries holding ``value`` itself (not a scattered future's key)."""
    import dask

    graph = dict(dask.base.collections_to_expr(tasks).__dask_graph__())

    def holds(node) -> bool:
        if node is value or getattr(node, "value", None) is value:
            return True
        return any(holds(a) for a in getattr(node, "args", ()) if not isinstance(a, str))

    return sum(holds(v) for v in graph.values())


def test_block_tasks_carry_shared_operands_once(tmp_path: Path, atlas_h5ad: Path):
    """T and the permutation table are one graph key for all block tasks (one scattered copy with a client),
    not a copy per task (SecAct rebuilds warned "Sending large graph of size 14.87 MiB")."""
    from distributed import Client

    from cytodask.core.stage import StageContext

    act = ActivityStage("act", inputs=("convert",), layer="X", method="permutation", n_rand=20)
    stages = [ConvertStage("convert", LocalH5ADSource(atlas_h5ad), batch_size=200), act]
    store = ResultStore(tmp_path)
    run_stages(stages, store, Config(cluster="none"))
    ctx = StageContext("act", store.stage("act"), "fp", Config(cluster="none"),
                       inputs={"convert": store.stage_path("convert")})
    setup = act._setup(ctx)
    T, perm = setup["prepared"].T, setup["perm"]
    tasks = act.block_tasks(ctx, list(range(6)))
    assert len(tasks) == 6
    assert _graph_holders(tasks, T) == 1 and _graph_holders(tasks, perm) == 1
    with Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None) as client:
        ctx.client = client
        tasks = act.block_tasks(ctx, [0, 1])
        assert _graph_holders(tasks, T) == 0  # broadcast to the workers, referenced by key
        # the same results through the scattered operands (block 0 is rewritten with identical bits)
        before = ad.read_zarr(store.stage_path("act")).X[:200].copy()
        client.compute(tasks, sync=True)
        np.testing.assert_array_equal(ad.read_zarr(store.stage_path("act")).X[:200], before)
        from cytodask.core.backend import in_dask_task

        assert client.submit(in_dask_task, pure=False).result() is True  # a distributed worker's task


def test_library_calls_in_a_dask_task_use_one_thread(monkeypatch: pytest.MonkeyPatch):
    """infer() inside a Dask task runs on one thread by default (the scheduler parallelises), so it never
    changes process-wide BLAS limits there; in the caller's own thread it uses the thread pool."""
    import dask

    from cytodask.activity import api
    from cytodask.core import backend

    seen: list[int] = []

    def fake_run(*args, threads, **kwargs):
        seen.append(threads)
        raise RuntimeError("stop")  # only the thread count matters here

    monkeypatch.setattr(api, "run_in_memory", fake_run)
    x = np.random.default_rng(0).poisson(1.0, size=(20, 300)).astype(float)
    from cytodask.activity import load_signature

    genes = list(load_signature("CytoSig").index[:300])

    def call() -> None:
        with pytest.raises(RuntimeError, match="stop"):
            infer(x, genes=genes, method="analytic", min_genes=50)

    call()
    dask.compute(dask.delayed(call)(), scheduler="threads")
    from cytodask.core.backend import available_threads

    assert not backend.in_dask_task()
    assert seen == [available_threads(), 1]
