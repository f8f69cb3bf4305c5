"""CellxgeneCensusSource against a small local Census-shaped SOMA store (no network)."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import anndata as ad
import cellxgene_census
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import scipy.sparse as sp
import tiledbsoma as soma
import tiledbsoma.io

from cytodask.ingest.census import DEFAULT_OBS_COLUMNS, CellxgeneCensusSource
from cytodask.ingest.conversion import convert
from tests.conftest import make_counts_adata

DESIGN_QUERY = {"tissue": "blood", "cell_type": ["T cell", "B cell"], "disease": "COVID-19", "max_cells": 150}
DESIGN_FILTER = ("tissue_general == 'blood' and cell_type in ['T cell', 'B cell'] and disease == 'COVID-19' "
                 "and is_primary_data == True")


def census_adata() -> ad.AnnData:
    """make_counts_adata with Census obs/var columns."""
    adata = make_counts_adata(1500, 120, seed=3)
    n = adata.n_obs
    rng = np.random.default_rng(11)
    general = rng.choice(["blood", "lung"], n, p=[0.6, 0.4])
    cell_type = rng.choice(["T cell", "B cell", "monocyte", "natural killer cell"], n)
    terms = {"T cell": "CL:0000084", "B cell": "CL:0000236", "monocyte": "CL:0000576",
             "natural killer cell": "CL:0000623"}
    adata.obs = pd.DataFrame({
        "sample": adata.obs["sample"],
        "dataset_id": pd.Categorical(rng.choice(["ds-a", "ds-b", "ds-c"], n)),
        "assay": pd.Categorical(rng.choice(["10x 3' v3", "Smart-seq2"], n)),
        "cell_type": pd.Categorical(cell_type),
        "cell_type_ontology_term_id": pd.Categorical([terms[c] for c in cell_type]),
        "tissue": pd.Categorical(np.where(general == "blood", "venous blood", "lung parenchyma")),
        "tissue_general": pd.Categorical(general),
        "disease": pd.Categorical(rng.choice(["COVID-19", "normal"], n)),
        "donor_id": pd.Categorical([f"D{i}" for i in rng.integers(0, 12, n)]),
        "sex": pd.Categorical(rng.choice(["female", "male"], n)),
        "is_primary_data": rng.random(n) > 0.15,
        "nnz": np.diff(adata.X.indptr).astype(np.int64),
    }, index=adata.obs.index)
    ids = [f"ENSG{i:011d}" for i in range(adata.n_vars)]
    adata.var = pd.DataFrame({"feature_name": [f"GENE{i}" for i in range(adata.n_vars)],
                              "feature_length": rng.integers(500, 5000, adata.n_vars)}, index=ids)
    return adata


@pytest.fixture(scope="module")
def census(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ad.AnnData]:
    """``<root>/census_data/homo_sapiens`` registered in SOMA collections, as open_soma(uri=root) expects."""
    root = tmp_path_factory.mktemp("census") / "soma"
    adata = census_adata()
    with soma.Collection.create(str(root)) as top:
        data = top.add_new_collection("census_data")
        uri = tiledbsoma.io.from_anndata(str(root / "census_data" / "homo_sapiens"), adata, measurement_name="RNA",
                                         X_layer_name="raw", var_id_name="feature_id")
        with soma.Experiment.open(uri) as exp:
            data.set("homo_sapiens", exp, use_relative_uri=True)
        summary = pd.DataFrame({"soma_joinid": [0, 1], "label": ["census_schema_version", "census_build_date"],
                                "value": ["2.0.1", "2024-07-01"]})
        table = pa.Table.from_pandas(summary, preserve_index=False)
        info = top.add_new_collection("census_info")
        info.add_new_dataframe("summary", schema=table.schema, domain=[(0, 1)]).write(table)
    with cellxgene_census.open_soma(uri=str(root)) as c:
        assert c["census_data"]["homo_sapiens"].obs.count == adata.n_obs
    return root, adata


def reference_ids(adata: ad.AnnData, mask: np.ndarray, max_cells: int | None, seed: int = 0) -> np.ndarray:
    ids = np.flatnonzero(mask)
    if max_cells is not None and ids.size > max_cells:
        ids = np.sort(np.random.default_rng(seed).choice(ids, max_cells, replace=False))
    return ids


def design_mask(adata: ad.AnnData) -> np.ndarray:
    o = adata.obs
    return ((o["tissue_general"] == "blood") & o["cell_type"].isin(["T cell", "B cell"])
            & (o["disease"] == "COVID-19") & o["is_primary_data"]).to_numpy()


def same(a: sp.spmatrix, b: sp.spmatrix) -> bool:
    return a.shape == b.shape and (sp.csr_matrix(a) != sp.csr_matrix(b)).nnz == 0


def test_design_query_converts_to_reference(census, tmp_path: Path):
    root, adata = census
    src = CellxgeneCensusSource(uri=root).query(**DESIGN_QUERY)
    assert src.value_filter == DESIGN_FILTER
    ids = reference_ids(adata, design_mask(adata), 150)
    assert design_mask(adata).sum() > 150 and np.array_equal(src.soma_joinids, ids)
    report = convert(src, tmp_path / "a.zarr", batch_size=64, fsync=False)
    assert report.state == "computed"
    back = ad.read_zarr(tmp_path / "a.zarr")
    assert same(back.X, adata.X[ids])
    assert src.nnz_hint() == adata.X[ids].nnz
    assert list(back.obs.index) == [str(i) for i in ids]
    assert list(back.obs.columns) == [c for c in DEFAULT_OBS_COLUMNS if c in adata.obs or c == "soma_joinid"]
    np.testing.assert_array_equal(back.obs["soma_joinid"], ids)
    for col in back.obs.columns.drop("soma_joinid"):
        expected = adata.obs[col].to_numpy()[ids]
        np.testing.assert_array_equal(back.obs[col].to_numpy().astype(expected.dtype), expected, err_msg=col)
        if col != "is_primary_data":
            assert isinstance(back.obs[col].dtype, pd.CategoricalDtype), col
    pd.testing.assert_frame_equal(back.var, adata.var, check_dtype=False)


def test_subsample_depends_on_seed_not_block_size(census, tmp_path: Path):
    root, adata = census
    src = CellxgeneCensusSource(uri=str(root)).query(**DESIGN_QUERY)
    stores = []
    for block in (7, 150):
        convert(src, tmp_path / f"b{block}.zarr", batch_size=block, fsync=False)
        stores.append(ad.read_zarr(tmp_path / f"b{block}.zarr"))
    assert list(stores[0].obs.index) == list(stores[1].obs.index) and same(stores[0].X, stores[1].X)
    again = CellxgeneCensusSource(uri=root).query(**DESIGN_QUERY)
    assert np.array_equal(again.soma_joinids, src.soma_joinids)
    other = CellxgeneCensusSource(uri=root).query(**{**DESIGN_QUERY, "seed": 1})
    assert not np.array_equal(other.soma_joinids, src.soma_joinids)
    np.testing.assert_array_equal(other.soma_joinids, reference_ids(adata, design_mask(adata), 150, seed=1))
    copy = pickle.loads(pickle.dumps(other))  # the open handle is dropped and reopened
    assert same(copy.read_rows(10, 30), adata.X[other.soma_joinids[10:30]])


def test_gene_subset_by_symbol_and_ensembl_id(census, tmp_path: Path):
    root, adata = census
    base = CellxgeneCensusSource(uri=root)
    src = base.query(tissue="lung", genes=["GENE40", "ENSG00000000002", "GENE5"])
    cols = [2, 5, 40]  # order of the Census var table, not of the request
    assert list(src.var().index) == list(adata.var.index[cols]) and src.shape[1] == 3
    assert src.nnz_hint() is None  # the obs nnz column counts all genes
    convert(src, tmp_path / "g.zarr", batch_size=100, fsync=False)
    back = ad.read_zarr(tmp_path / "g.zarr")
    mask = ((adata.obs["tissue_general"] == "lung") & adata.obs["is_primary_data"]).to_numpy()
    assert same(back.X, adata.X[np.flatnonzero(mask)][:, cols])
    with pytest.raises(ValueError, match=r"2 of 3 genes.*NOPE1.*ENSG99"):
        base.query(genes=["GENE1", "NOPE1", "ENSG99"])


def test_primary_data_default(census):
    root, adata = census
    base = CellxgeneCensusSource(uri=root)
    assert base.shape == (int(adata.obs["is_primary_data"].sum()), adata.n_vars)  # unqueried: all primary cells
    primary = base.query(tissue="lung")
    everything = base.query(tissue="lung", is_primary_data=None)
    lung = (adata.obs["tissue_general"] == "lung").to_numpy()
    np.testing.assert_array_equal(primary.soma_joinids, np.flatnonzero(lung & adata.obs["is_primary_data"]))
    np.testing.assert_array_equal(everything.soma_joinids, np.flatnonzero(lung))
    assert primary.obs()["is_primary_data"].all() and not everything.obs()["is_primary_data"].all()
    assert "is_primary_data" not in (everything.value_filter or "")
    only = base.query(obs_value_filter="sex == 'female'", obs_columns=["donor_id", "sample"])
    assert list(only.obs().columns) == ["donor_id", "sample"]
    assert set(only.obs()["donor_id"]) <= set(adata.obs["donor_id"])
    np.testing.assert_array_equal(
        only.soma_joinids, np.flatnonzero((adata.obs["sex"] == "female") & adata.obs["is_primary_data"]))


def test_errors(census):
    root, _ = census
    base = CellxgeneCensusSource(uri=root)
    with pytest.raises(ValueError, match=re.escape("cell_type == 'neuron' and is_primary_data == True")):
        base.query(cell_type="neuron")
    tricky = "Crohn's \"disease\""  # quoted safely: no parse error, just no cells
    with pytest.raises(ValueError, match="match the obs filter"):
        base.query(disease=tricky)
    with pytest.raises(ValueError, match=r"no_such_column.*tissue_general"):
        base.query(obs_value_filter="no_such_column == 'x'")
    with pytest.raises(ValueError, match=r"unknown organism 'Danio rerio'.*homo_sapiens"):
        CellxgeneCensusSource(uri=root, organism="Danio rerio")
    with pytest.raises(ValueError, match=r"no X layer 'normalized'.*raw"):
        base.query(layer="normalized")
    with pytest.raises(ValueError, match=r"obs columns \['nope'\]"):
        base.query(obs_columns=["cell_type", "nope"]).obs()


def test_reconvert_same_query_is_noop(census, tmp_path: Path):
    root, _ = census
    store = tmp_path / "r.zarr"
    first = convert(CellxgeneCensusSource(uri=root).query(**DESIGN_QUERY), store, batch_size=50, fsync=False)
    assert first.state == "computed"
    again = convert(CellxgeneCensusSource(uri=root).query(**DESIGN_QUERY), store, batch_size=50, fsync=False)
    assert again.state == "skipped" and again.computed == 0
    build = CellxgeneCensusSource(uri=root).identity()["build"]
    assert build["census_build_date"] == "2024-07-01" and len(build["listing"]) == 32
    for changed in ({**DESIGN_QUERY, "seed": 2}, {**DESIGN_QUERY, "disease": "normal"}):
        rep = convert(CellxgeneCensusSource(uri=root).query(**changed), store, batch_size=50, fsync=False)
        assert rep.state == "computed" and rep.computed == 3
    changed_store = next(p for p in (root / "census_data").rglob("*") if p.is_file())
    changed_store.touch()  # a rewritten local Census changes the listing in identity()
    rep = convert(CellxgeneCensusSource(uri=root).query(**DESIGN_QUERY), store, batch_size=50, fsync=False)
    assert rep.state == "computed"
    assert CellxgeneCensusSource(uri=root).identity()["build"]["listing"] != build["listing"]


def test_read_rows_streams_only_the_block(census, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    root, adata = census
    x_reads: list[np.ndarray] = []
    obs_reads: list[object] = []
    real_x, real_obs = soma.SparseNDArray.read, soma.DataFrame.read

    def spy_x(self, coords=(), **kw):
        x_reads.append(np.asarray(coords[0]))
        return real_x(self, coords, **kw)

    def spy_obs(self, coords=(), *args, **kw):
        obs_reads.append(coords)
        return real_obs(self, coords, *args, **kw)

    def no_get_anndata(*args, **kw):
        raise AssertionError("get_anndata must not be used")

    monkeypatch.setattr(soma.SparseNDArray, "read", spy_x)
    monkeypatch.setattr(soma.DataFrame, "read", spy_obs)
    monkeypatch.setattr(cellxgene_census, "get_anndata", no_get_anndata)
    src = CellxgeneCensusSource(uri=root).query(tissue="blood", max_cells=300)
    ids = src.soma_joinids
    convert(src, tmp_path / "s.zarr", batch_size=40, fsync=False)
    assert [r.size for r in x_reads] == [min(40, 300 - s) for s in range(0, 300, 40)]
    assert np.array_equal(np.concatenate(x_reads), ids)  # each read is exactly its block's cells
    obs_coords = [c for c in obs_reads if c]  # the filter/var reads have no coords; obs is read once
    assert len(obs_coords) == 1 and np.array_equal(obs_coords[0][0], ids)
    assert same(ad.read_zarr(tmp_path / "s.zarr").X, adata.X[ids])


def test_cli_census_query_string(census, tmp_path: Path):
    """`cytodask convert 'census:?uri=…&tissue=blood&cell_type=T cell&cell_type=B cell…'` = the Python query."""
    from urllib.parse import quote

    from cytodask.ingest import open_source
    from tests.e2e import cytodask

    root, adata = census
    spec = (f"census:?uri={quote(str(root))}&tissue=blood&cell_type=T cell&cell_type=B cell"
            "&disease=COVID-19&max_cells=150&seed=0")
    src = open_source(spec)
    assert src.value_filter == DESIGN_FILTER
    np.testing.assert_array_equal(src.soma_joinids, reference_ids(adata, design_mask(adata), 150))
    res = cytodask("convert", spec, str(tmp_path / "c.zarr"), "--batch-size", "50", "-q")
    assert res.returncode == 0, res.stderr
    assert "150 cells" in res.stdout
    assert same(ad.read_zarr(tmp_path / "c.zarr").X, adata.X[src.soma_joinids])
    anyp = open_source(f"census:?uri={quote(str(root))}&tissue=blood&is_primary_data=any")
    assert "is_primary_data" not in anyp.value_filter
    with pytest.raises(ValueError, match="unknown Census query key 'tisue'"):
        open_source("census:?tisue=blood")
    with pytest.raises(ValueError, match="max_cells='many' is not an integer"):
        open_source("census:?max_cells=many")
    with pytest.raises(ValueError, match="--layer"):
        open_source("census:?tissue=blood", layer="raw")
