"""Exports stream AnnData by row chunks and summarise activity without loading it whole."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import zarr

from cytodask.activity.export import activity_by_cell_type
from cytodask.export.stage import stream_h5ad


def _activity(tmp: Path) -> tuple[ad.AnnData, Path]:
    rng = np.random.default_rng(0)
    obs = pd.DataFrame({"ct": pd.Categorical(rng.choice(["a", "b", "c"], 103)),
                        "n_cells": rng.integers(1, 50, 103), "empty": rng.random(103) < 0.1},
                       index=[f"s{i}" for i in range(103)])
    a = ad.AnnData(rng.normal(size=(103, 7)), obs=obs, var=pd.DataFrame(index=[f"sig{i}" for i in range(7)]),
                   layers={"beta": rng.normal(size=(103, 7)), "pvalue": rng.random((103, 7))})
    path = tmp / "act.zarr"
    a.write_zarr(path)
    return a, path


def test_stream_h5ad_equals_anndata(tmp_path: Path):
    a, path = _activity(tmp_path)
    stream_h5ad(zarr.open_group(str(path), mode="r"), tmp_path / "out.h5ad", chunk_rows=10)
    b = ad.read_h5ad(tmp_path / "out.h5ad")
    np.testing.assert_array_equal(b.X, a.X)
    for k in a.layers:
        np.testing.assert_array_equal(b.layers[k], a.layers[k])
    pd.testing.assert_frame_equal(b.obs, a.obs)


def test_activity_by_cell_type_streamed_equals_pandas(tmp_path: Path):
    a, path = _activity(tmp_path)
    g = zarr.open_group(str(path), mode="r")
    got = activity_by_cell_type(a.obs, a.var_names, g["X"], "ct", "CytoSig", chunk=9)
    keep = ~a.obs["empty"].to_numpy()
    df = pd.DataFrame(a.X[keep], columns=a.var_names)
    ref = df.groupby(a.obs["ct"].astype(str).to_numpy()[keep]).mean()
    for row in got.itertuples():
        assert abs(row.mean_activity - ref.loc[row.cell_type, row.signature]) < 1e-12
    cells = a.obs[keep].groupby("ct", observed=True)["n_cells"].sum()
    assert got.groupby("cell_type")["n_cells"].first().to_dict() == {k: int(v) for k, v in cells.items()}
