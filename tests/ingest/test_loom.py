"""Loom files written by loompy (the reference writer), read back against loompy and anndata."""

from __future__ import annotations

import warnings
from pathlib import Path

import anndata as ad
import h5py
import loompy
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from cytodask.ingest import convert
from cytodask.ingest import loom as loom_mod
from cytodask.ingest.loom import LoomSource
from tests.conftest import make_counts_adata


def _same(a: sp.spmatrix, b: sp.spmatrix) -> bool:
    return a.shape == b.shape and (sp.csr_matrix(a) != sp.csr_matrix(b)).nnz == 0


def write_loom(path: Path, a: ad.AnnData, *, unique_accession: bool = True, counts_layer: bool = False) -> Path:
    """``a`` as Loom: genes × cells, Gene/Accession row attributes, CellID and obs as column attributes."""
    n = a.n_vars
    row_attrs = {
        "Gene": np.array([f"G{i % (n - 3)}" for i in range(n)]),  # three symbols occur twice
        "Accession": np.array([f"ENSG{(i if unique_accession else i // 2):011d}" for i in range(n)]),
        "chromosome": np.array([f"chr{1 + i % 3}" for i in range(n)]),
    }
    col_attrs = {
        "CellID": a.obs_names.to_numpy(),
        "cell_type": a.obs["cell_type"].astype(str).to_numpy(),
        "sample": a.obs["sample"].astype(str).to_numpy(),
        "barcode": np.array([f"AC{i:06d}&x" for i in range(a.n_obs)]),  # unique, needs XML escaping
        "age": a.obs["age"].to_numpy(),
        "n_counts": np.asarray(a.X.sum(axis=1)).ravel().astype(np.int64),
        "X_umap": np.zeros((a.n_obs, 2)),  # multi-dimensional: not an obs column
    }
    counts = sp.csr_matrix(a.X).T.tocoo().astype(np.int32)
    if counts_layer:
        loompy.create(str(path), np.log1p(counts.toarray()).astype(np.float32), row_attrs, col_attrs)
        with loompy.connect(str(path)) as ds:
            ds.layers["counts"] = counts.toarray()
    else:
        loompy.create(str(path), counts, row_attrs, col_attrs)
    return path


@pytest.fixture(scope="module")
def looms(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, ad.AnnData]]:
    root = tmp_path_factory.mktemp("loom")
    out = {}
    for key, n in (("small", 40), ("full", 1000)):
        a = make_counts_adata(n, 70, seed=6)
        out[key] = (write_loom(root / f"{key}.loom", a), a)
    return out


def _expected(path: Path) -> tuple[sp.csr_matrix, pd.DataFrame, pd.DataFrame]:
    """X, obs and var as defined by LoomSource, built from loompy's own reader."""
    with loompy.connect(str(path), "r") as ds:
        x = sp.csr_matrix(ds[:, :].T)
        ca = {k: ds.ca[k] for k in ds.ca.keys() if ds.ca[k].ndim == 1}
        ra = {k: ds.ra[k] for k in ds.ra.keys()}
    obs = pd.DataFrame({k: v for k, v in ca.items() if k != "CellID"}, index=pd.Index(ca["CellID"], dtype=object))
    var = pd.DataFrame({("gene_symbols" if k == "Gene" else k): v for k, v in ra.items() if k != "Accession"},
                       index=pd.Index(ra["Accession"], dtype=object))
    tmp = ad.AnnData(obs=obs, var=var)
    tmp.strings_to_categoricals()  # anndata's rule: string columns with repeated values
    return x, tmp.obs, tmp.var


@pytest.mark.parametrize("block_cells", [1, 333, 1000])
def test_converts_like_loompy_reads_it(tmp_path: Path, looms, block_cells: int):
    path, a = looms["small" if block_cells == 1 else "full"]
    x, obs, var = _expected(path)
    src = LoomSource(path)
    assert src.shape == (a.n_obs, 70) and src.dtype == np.int32 and src.layers() == []
    rep = convert(src, tmp_path / "l.zarr", batch_size=block_cells, fsync=False)
    assert rep.state == "computed" and rep.n_blocks == -(-a.n_obs // block_cells)
    back = ad.read_zarr(tmp_path / "l.zarr")
    assert _same(back.X, x) and _same(back.X, a.X) and back.X.dtype == np.int32
    pd.testing.assert_frame_equal(back.obs, obs, check_like=True)
    pd.testing.assert_frame_equal(back.var, var, check_like=True)
    assert back.obs["barcode"].iloc[0] == "AC000000&x" and back.obs["cell_type"].dtype == "category"
    assert back.obs["barcode"].dtype == object and "X_umap" not in back.obs
    assert back.var["gene_symbols"].iloc[:3].tolist() == ["G0", "G1", "G2"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = ad.io.read_loom(path)  # anndata's reader agrees on the matrix and the cells
    assert _same(back.X, ref.X) and list(back.obs_names) == list(ref.obs_names)


def test_layers_bounded_slices_and_index_fallback(tmp_path: Path, looms, monkeypatch: pytest.MonkeyPatch):
    _, a = looms["full"]
    path = write_loom(tmp_path / "layer.loom", a, unique_accession=False, counts_layer=True)
    with pytest.raises(ValueError, match=r"non-integer values.*layers in this file: \['counts'\]"), \
            pytest.warns(UserWarning, match="var names occur more than once"):
        convert(LoomSource(path), tmp_path / "bad.zarr", batch_size=500, counts="strict", fsync=False)
    src = LoomSource(path, layer="counts")
    assert src.layers() == ["counts"]
    monkeypatch.setattr(loom_mod, "MAX_DENSE_BYTES", 70 * 4 * 100)  # 100 cells per dense read
    for start, stop in [(0, 1000), (999, 1000), (37, 465), (5, 5)]:
        assert _same(src.read_rows(start, stop), a.X[start:stop])
    var = src.var()  # Accession repeats, so genes are named by symbol (kept as gene_symbols too)
    assert var.index[:3].tolist() == ["G0", "G1", "G2"] and var["Accession"].dtype == "category"
    assert (var.index == var["gene_symbols"].astype(str)).all()
    with pytest.warns(UserWarning, match="3 var names occur more than once"):
        rep = convert(src, tmp_path / "ok.zarr", batch_size=400, fsync=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # anndata: var names not unique
        back = ad.read_zarr(tmp_path / "ok.zarr")
    assert rep.computed == 3 and _same(back.X, a.X)


def test_errors_name_the_file_and_the_fix(tmp_path: Path, looms):
    path, _ = looms["small"]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        LoomSource(tmp_path / "nope.loom")
    with pytest.raises(ValueError, match=r"has no layer 'spliced'; layers in the file: \[\] \(no layer: /matrix\)"):
        LoomSource(path, layer="spliced")
    with h5py.File(tmp_path / "nomatrix.loom", "w") as f:
        f.create_group("row_attrs")
        f.create_group("col_attrs")
    with pytest.raises(ValueError, match=r"nomatrix.loom has no 2-D /matrix dataset, so it is not a Loom file"):
        LoomSource(tmp_path / "nomatrix.loom")
    cut = tmp_path / "cut.loom"
    cut.write_bytes(path.read_bytes()[:4000])
    with pytest.raises(ValueError, match=r"cut.loom .*truncated or corrupt"):
        LoomSource(cut)
    text = tmp_path / "text.loom"
    text.write_text("hello")
    with pytest.raises(ValueError, match="not an HDF5/Loom file"):
        LoomSource(text)
    with pytest.raises(IndexError, match="outside"):
        LoomSource(path).read_rows(0, 41)
