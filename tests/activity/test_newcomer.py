"""Issue 14, a newcomer's first hour with the activity API: each test walks the user's steps.

- 14.3: ``infer(pseudobulk(adata, ...))`` normalizes once; counts-kind input that is visibly not counts is
  refused (log scale) or warned about (other non-integers), naming ``layer="counts"`` / ``input_kind="logexpr"``.
- 14.4: counts in ``adata.raw`` (scanpy's layout): ``layer="raw"``; errors name the argument ``layer=``.
- 14.9: one default (the closed form) for ``infer``, the stage and specs; ``n_rand`` asks for permutations and is
  recorded only when they ran; the closed form with ``n_rand`` says it is not used.
- 14.12: ``to_anndata()`` keeps the input's obs columns; the empty-sample flag is not called ``empty``.
"""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import dask.array as da
import numpy as np
import pandas as pd
import pytest

from cytodask import Config
from cytodask.activity import infer
from cytodask.activity.stage import ActivityStage
from cytodask.aggregation import pseudobulk
from cytodask.core.runner import run_stages
from cytodask.core.store import ResultStore
from cytodask.demo import SyntheticAtlasSpec, write_h5ad
from cytodask.ingest import ConvertStage, LocalH5ADSource

from .conftest import synthetic_counts

KEYS = ("beta", "se", "zscore", "pvalue")


@pytest.fixture(scope="module")
def cells(cytosig) -> ad.AnnData:
    """Raw counts of 240 cells in 4 samples x 3 cell types, with obs columns a user would have."""
    counts, genes, names, ctype = synthetic_counts(cytosig, n_cells=240, n_genes=1500, seed=21)
    obs = pd.DataFrame({"cell_type": [f"T{t}" for t in ctype], "sample": [f"S{i % 4}" for i in range(240)]},
                       index=names)
    return ad.AnnData(X=counts, obs=obs, var=pd.DataFrame(index=genes))


def _same(a, b) -> None:
    for k in KEYS:
        np.testing.assert_array_equal(getattr(a, k).to_numpy(), getattr(b, k).to_numpy(), err_msg=k)


def test_infer_of_a_pseudobulk_normalizes_once(cells: ad.AnnData):
    """14.3: the user's chain reads the pseudobulk's counts layer by default (its X is log2-normalized)."""
    pb = pseudobulk(cells, by=["cell_type", "sample"], min_cells=5)
    assert pb.uns["pseudobulk"]["counts_layer"] == "counts"
    chained = infer(pb, min_genes=50)
    _same(chained, infer(pb, layer="counts", min_genes=50))
    assert chained.params["layer"] == "counts" and chained.params["method"] == "analytic"
    # the normalized X itself, read as counts (the old silent double normalization), is refused with the fix
    bare = ad.AnnData(X=np.asarray(pb.X), obs=pb.obs, var=pb.var)
    with pytest.raises(ValueError, match=r"look log-normalized .*double-normalize; pass the raw counts "
                                         r"\(layer='counts'.*input_kind='logexpr'"):
        infer(bare, min_genes=50)
    with pytest.raises(ValueError, match="look log-normalized"):  # same for a DataFrame (genes x samples)
        infer(pd.DataFrame(np.asarray(pb.X).T, index=pb.var_names, columns=pb.obs_names), min_genes=50)
    infer(bare, input_kind="logexpr", min_genes=50)  # the fix the message names works
    # non-integer values on a count scale: computed, with a warning naming the same fixes
    scaled = ad.AnnData(X=cells.X * 1.5, obs=cells.obs, var=cells.var)
    with pytest.warns(UserWarning, match="not integers .*layer='counts'"):
        infer(scaled, min_genes=50)


def test_counts_in_adata_raw(cells: ad.AnnData, tmp_path: Path):
    """14.4: scanpy's layout (log-normalized X, raw counts in .raw, maybe more genes there) with layer='raw'."""
    user = cells[:, 100:].copy()  # X keeps fewer genes than raw, as after highly-variable-gene selection
    user.raw = cells
    user.X = np.log1p(user.X.toarray() / 3.0)
    _same(infer(user, layer="raw", min_genes=50), infer(cells, min_genes=50))
    pb_raw = pseudobulk(user, by=["sample"], layer="raw", min_cells=5)
    pb_ref = pseudobulk(cells, by=["sample"], min_cells=5)
    assert list(pb_raw.var_names) == list(cells.var_names)
    np.testing.assert_array_equal(pb_raw.layers["counts"], pb_ref.layers["counts"])
    with pytest.raises(ValueError, match=r"layer 'counts' does not exist; available layers: \[\]; adata.raw holds "
                                         r"counts too \(layer='raw'\)"):
        infer(user, layer="counts")
    with pytest.raises(ValueError, match=r"layer='raw' reads adata.raw, which this AnnData has not"):
        infer(cells, layer="raw")
    # the .h5ad file a user saved: its source reads raw/X with raw/var
    path = tmp_path / "user.h5ad"
    user.write_h5ad(path)
    src = LocalH5ADSource(path, layer="raw")
    assert src.shape == cells.shape and list(src.var().index) == list(cells.var_names)
    np.testing.assert_array_equal(src.read_rows(10, 30).toarray(), cells.X[10:30].toarray())
    with pytest.raises(ValueError, match=r"has no layer 'counts'; layers in the file: \[\]; the file has raw/X too "
                                         r"\(layer='raw'\); pass layer="):
        LocalH5ADSource(path, layer="counts")


def test_one_permutation_default(cells: ad.AnnData):
    """14.9: the closed form by default; n_rand alone asks for permutations; analytic + n_rand says so."""
    default = infer(cells, min_genes=50)
    _same(default, infer(cells, method="analytic", min_genes=50))
    assert default.params["n_rand"] == 0
    perm = infer(cells, n_rand=20, min_genes=50)
    assert perm.params["method"] == "permutation" and perm.params["n_rand"] == 20
    _same(perm, infer(cells, method="permutation", n_rand=20, min_genes=50))
    with pytest.warns(UserWarning, match="n_rand=20 is not used by method='analytic'"):
        infer(cells, method="analytic", n_rand=20, min_genes=50)
    assert ActivityStage("a", inputs=("x",)).method == "analytic"
    assert ActivityStage("a", inputs=("x",), n_rand=10).method == "permutation"


@pytest.mark.parametrize("method", ["analytic", "permutation"])
def test_stage_records_n_rand_only_when_permutations_ran(tmp_path: Path, method: str):
    """14.9: Config(n_rand=...) with the closed form: no n_rand in uns, and a notice says it was not used."""
    spec = SyntheticAtlasSpec(n_cells=300, n_genes=5000, n_donors=3, seed=2)
    path = tmp_path / "a.h5ad"
    write_h5ad(spec, path)
    stages = [ConvertStage("convert", LocalH5ADSource(path), batch_size=300),
              ActivityStage("act", inputs=("convert",), layer="X", method=method)]
    reports = run_stages(stages, ResultStore(tmp_path / "r"), Config(cluster="none", n_rand=30))
    uns = ad.read_zarr(tmp_path / "r" / "stages" / "act" / "data.zarr").uns
    notices = reports[1].summary.get("notices", [])
    if method == "analytic":
        assert "n_rand" not in uns and "n_rand" not in uns["params"]
        assert any("n_rand = 30 is not used: method = 'analytic'" in n for n in notices)
    else:
        assert uns["n_rand"] == 30 and not notices


def test_to_anndata_keeps_obs(cells: ad.AnnData):
    """14.12: the input's obs columns survive; the flag is `is_empty`, not `empty` (DataFrame.empty)."""
    out = infer(cells, min_genes=50).to_anndata()
    assert list(out.obs.columns) == ["cell_type", "sample", "is_empty"]
    pd.testing.assert_series_equal(out.obs["cell_type"], cells.obs["cell_type"])
    assert out.obs.is_empty.dtype == bool and not out.obs.is_empty.any()
    assert infer(pd.DataFrame(cells.X[:5].toarray().T, index=cells.var_names), min_genes=50).to_anndata() \
        .obs.columns.tolist() == ["is_empty"]
    lazy = ad.AnnData(X=da.from_array(cells.X.toarray(), chunks=(80, -1)), obs=cells.obs, var=cells.var)
    assert list(infer(lazy, min_genes=50).compute(scheduler="sync").to_anndata().obs.columns) == \
        ["cell_type", "sample", "is_empty"]


@pytest.mark.slow
def test_secact_by_name_behind_a_package_index_mirror(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                      e2e_atlas: Path, shared: Path):
    """14.8: signatures=["SecAct"] with an empty cache and pip pointed at a mirror (a local index here): the
    wheel comes through pip's index, md5-checked; a mirror without it fails before any stage runs."""
    from cytodask import Pipeline

    from ._fake_index import WHEEL, pip_env, serve_index

    kw = dict(h5ad_path=e2e_atlas, signatures=["SecAct"], analyses=["activity"], aggregation_levels=["celltype_L2"])
    cfg = Config(cluster="none", batch_size=1000)
    with serve_index(tmp_path / "broken", None) as (url, _):  # the mirror serves a wheel without the file
        pip_env(monkeypatch, url, tmp_path / "cache")
        with pytest.raises(FileNotFoundError, match=r"stage 'activity_SecAct_cell_type_l2': SecAct signature not "
                                                    r"found .*not a secactpy wheel"):
            Pipeline(cfg).process_submission(output_dir=tmp_path / "failed", **kw)
    stages = tmp_path / "failed" / "stages"
    assert not stages.exists() or not list(stages.glob("*/manifest.json"))  # nothing ran, nothing half-done
    payload = (shared / "signatures" / "SecAct.tsv.gz").read_bytes()
    with serve_index(tmp_path / "mirror", payload) as (url, seen):
        pip_env(monkeypatch, url, tmp_path / "cache")
        res = Pipeline(cfg).process_submission(output_dir=tmp_path / "ok", **kw)
    assert any(p.endswith(WHEEL) for p in seen)
    assert (tmp_path / "cache" / "cytodask" / "signatures" / "SecAct.tsv.gz").read_bytes() == payload
    act = res.activity["activity_SecAct_cell_type_l2"]
    assert act.n_vars == 1170 and np.isfinite(act.X).all()
