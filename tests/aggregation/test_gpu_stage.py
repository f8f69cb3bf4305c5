"""The pseudobulk stage on the GPU (issue 15.4): a CuPy run's blocks are summed on the device, same layers.

The backend is chosen once for the run by :func:`cytodask.core.cluster.cluster` (``cluster = "none"``: this
process; ``gpu_devices = []`` keeps it on NumPy). Sums, counts and the variance of integer counts are
exact on both (float64 sums of integers); the normalized X to float32 rounding (rtol 1e-6).
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest

from cytodask import Config
from cytodask.aggregation import PseudobulkStage
from cytodask.core import cluster as cl
from cytodask.core.backend import run_backend
from cytodask.core.runner import run_stages
from cytodask.core.store import ResultStore
from cytodask.ingest import ConvertStage, LocalH5ADSource
from tests.gpu_util import STORE_DTYPES, requires_gpu

pytestmark = requires_gpu


@pytest.mark.parametrize("dtype", STORE_DTYPES)
def test_pseudobulk_stage_on_gpu_equals_cpu(tmp_path, counts_adata, dtype: str, monkeypatch: pytest.MonkeyPatch):
    from cytodask.aggregation import stage as pb_stage

    a = counts_adata.copy()
    a.X = a.X.astype(dtype)
    a.write_h5ad(tmp_path / "c.h5ad")
    seen: list[str] = []
    real = pb_stage.device_block

    def spy(block, backend):
        seen.append(backend)
        return real(block, backend)

    monkeypatch.setattr(pb_stage, "device_block", spy)
    out = {}
    for name, cfg in (("cpu", Config(cluster="none", gpu_devices=[])), ("gpu", Config(cluster="none"))):
        stages = [ConvertStage("convert", LocalH5ADSource(tmp_path / "c.h5ad"), batch_size=400),
                  PseudobulkStage("pb", inputs=("convert",), by=["cell_type", "sample"], min_cells=1,
                                  stats=["sum", "mean", "var", "count_nonzero"])]
        store = ResultStore(tmp_path / name)
        with cl.cluster(cfg, echo=None):
            assert run_backend() == ("numpy" if name == "cpu" else "cupy")
            run_stages(stages, store, cfg)
        out[name] = ad.read_zarr(store.stage_path("pb"))
    assert set(seen) == {"numpy", "cupy"}
    g, c = out["gpu"], out["cpu"]
    assert list(g.obs_names) == list(c.obs_names)
    for key in ("counts", "count_nonzero", "mean", "var"):
        if key in c.layers:
            np.testing.assert_array_equal(np.asarray(g.layers[key]), np.asarray(c.layers[key]), err_msg=key)
    np.testing.assert_allclose(np.asarray(g.X), np.asarray(c.X), rtol=1e-6)
