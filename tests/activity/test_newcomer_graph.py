"""Issue 14.16: "Sending large graph of size 14.87 MiB" on every SecAct run (the projection matrix travelled
inside the task graph, once per block task).

The user's steps: ``Pipeline.process_submission(signatures=["SecAct"])`` on a Dask cluster. Every warning
is recorded; none may be Dask's large-graph warning. A control shows the warning does fire here when an
array of the projection matrix's size is put in a graph (so the check can fail).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from cytodask import Config, Pipeline
from cytodask.activity.operands import prepare_signature

from .conftest import SIGNATURE_DIR

pytestmark = pytest.mark.slow

LARGE = "Sending large graph"


def _large_graph_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if LARGE in str(w.message)]


def test_secact_run_on_a_cluster_sends_no_large_graph(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                      e2e_atlas: Path, shared: Path):
    import anndata as ad
    import dask
    from distributed import Client

    monkeypatch.setenv("CYTODASK_SIGNATURE_DIR", str(SIGNATURE_DIR))
    genes = ad.read_h5ad(e2e_atlas, backed="r").var_names.tolist()
    T = prepare_signature("SecAct", genes, signature_dir=SIGNATURE_DIR, xp=np).T
    threshold = dask.config.get("distributed.admin.large-graph-warning-threshold")
    assert T.nbytes > dask.utils.parse_bytes(threshold), (T.shape, threshold)  # big enough to be warned about
    # control: the same matrix inside a graph is warned about on this Dask
    with Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=":0") as client, \
            warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        client.compute(dask.delayed(np.sum)(T), sync=True)
    assert _large_graph_warnings(caught), "control: an embedded projection matrix must be warned about"

    cfg = Config(cluster="local", processes=False, n_workers=1, threads_per_worker=2, dashboard_address=":0",
                 batch_size=1000)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = Pipeline(cfg).process_submission(h5ad_path=e2e_atlas, output_dir=tmp_path / "out",
                                               signatures=["SecAct"], analyses=["activity"],
                                               aggregation_levels=["celltype_L2"])
    assert _large_graph_warnings(caught) == []
    act = res.activity["activity_SecAct_cell_type_l2"]
    assert act.n_vars == 1170 and np.isfinite(np.asarray(act.X)).all()
