"""The CuPy branches of the stages, run on the CPU through a NumPy-backed stand-in for CuPy (issue 15).

No GPU here: :func:`tests.gpu_util.install_fake_cupy` makes ``backend="cupy"`` resolve to a module that
computes with NumPy/SciPy, lacks what CuPy 13 lacks (``repeat``, ``nanquantile``, ``stdtr``...) and refuses
integer sparse values. A run whose backend is ``"cupy"`` then takes every ``xp is not np`` branch of the
activity and pseudobulk stages (host casts, device copies of the shared operands, the sparse normalization
without ``repeat``, device p-values); its results must equal the NumPy run's to float64 rounding. The real
device run is the gpu-marked tests (tests/core/test_gpu_cluster.py and the other test_gpu* files).
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from cytodask import Config
from cytodask.activity.stage import ActivityStage
from cytodask.aggregation import PseudobulkStage
from cytodask.core import backend as be
from cytodask.core import xp as xpm
from cytodask.core.runner import run_stages
from cytodask.core.store import ResultStore
from cytodask.ingest import ConvertStage, LocalH5ADSource
from tests.gpu_util import counts_store, install_fake_cupy


def _stages(h5ad, sig, method: str):
    return [ConvertStage("convert", LocalH5ADSource(h5ad), batch_size=500),
            PseudobulkStage("pb", inputs=("convert",), by=["cell_type", "sample"], min_cells=1,
                            stats=["sum", "mean", "var"]),
            ActivityStage("act", inputs=("convert",), layer="X", signature=str(sig), method=method, n_rand=30,
                          min_genes=10)]


@pytest.mark.parametrize("dtype", ["int32", "float32"])
@pytest.mark.parametrize("method", ["analytic", "permutation"])
def test_stages_through_the_cupy_branches_equal_numpy(tmp_path, counts_adata, monkeypatch, dtype, method):
    store = counts_store(tmp_path, counts_adata, dtype, 500)
    h5ad = tmp_path / f"{dtype}.h5ad"
    assert store.exists() and h5ad.exists()
    genes = list(counts_adata.var_names)
    sig = tmp_path / "sig.tsv"
    rng = np.random.default_rng(1)
    pd.DataFrame(rng.standard_normal((len(genes), 5)), index=genes, columns=list("ABCDE")).to_csv(sig, sep="\t")
    out = {}
    for backend in ("numpy", "cupy"):
        if backend == "cupy":
            install_fake_cupy(monkeypatch)
            assert be.gpu_available() and be.resolve_backend("cupy").__name__ == "cupy"
            xpm._DEVICE_COPIES.clear()
        token = be.RUN_BACKEND.set(backend)
        try:
            res = ResultStore(tmp_path / backend)
            run_stages(_stages(h5ad, sig, method), res, Config(cluster="none", gpu_devices=[]))
        finally:
            be.RUN_BACKEND.reset(token)
        out[backend] = {s: ad.read_zarr(res.stage_path(s)) for s in ("pb", "act")}
    assert len(xpm._DEVICE_COPIES) >= 2  # T and the gene means (and the permutation table) went "to the device"
    g, c = out["cupy"], out["numpy"]
    for key in ("counts", "mean", "var"):
        np.testing.assert_array_equal(np.asarray(g["pb"].layers[key]), np.asarray(c["pb"].layers[key]), err_msg=key)
    np.testing.assert_allclose(g["act"].X, c["act"].X, rtol=0, atol=1e-10)
    for key in ("beta", "se", "pvalue"):
        np.testing.assert_allclose(g["act"].layers[key], c["act"].layers[key], rtol=1e-9, atol=1e-12, err_msg=key)
