"""infer() / score(): R SecAct reference, input kinds and types, block kernels, edge cases."""

from __future__ import annotations

import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from cytodask.activity import (
    activity_block,
    gene_mean_partial,
    gene_means,
    infer,
    permutation_table,
    prepare_block,
    prepare_signature,
    score,
)
from cytodask.core.backend import gpu_available

from .conftest import BULK, SIGNATURE_DIR, synthetic_counts

KEYS = ("beta", "se", "zscore", "pvalue")


@pytest.fixture(scope="module")
def ly86(shared):
    return pd.read_csv(BULK / "Ly86-Fc_vs_Vehicle_logFC.txt", sep=r"\s+")


@pytest.fixture(scope="module")
def r_ref(shared):
    return {k: pd.read_csv(BULK / "r-reference" / f"{k}.txt", sep=r"\s+") for k in KEYS}


def test_r_secact_reference_exact(ly86, r_ref, secact):
    res = infer(ly86, "SecAct", signature_dir=SIGNATURE_DIR, group=False, input_kind="differential",
                lam=5e5, n_rand=1000, seed=0, rng="srand", backend="numpy")
    assert res.params["n_genes"] == 7720
    for k in KEYS:
        ref = r_ref[k]
        got = getattr(res, k).T.loc[ref.index, ref.columns]  # R: signatures x samples
        # R SecAct (C rand() permutations) reproduced: 1e-10 absolute
        np.testing.assert_allclose(got.to_numpy(), ref.to_numpy(), rtol=0, atol=1e-10, err_msg=k)


def test_r_secact_reference_analytic(ly86, r_ref):
    res = infer(ly86, "SecAct", signature_dir=SIGNATURE_DIR, group=False, input_kind="differential",
                method="analytic", backend="numpy")
    ref = r_ref["zscore"]
    np.testing.assert_allclose(res.beta.T.loc[ref.index], r_ref["beta"], rtol=0, atol=1e-10)  # same beta
    r = np.corrcoef(res.zscore.loc["Diff", ref.index], ref["Diff"])[0, 1]
    assert r >= 0.999  # closed-form z vs 1000 sampled permutations (measured 0.99974)
    assert res.params["method"] == "analytic" and res.params["n_rand"] == 0


@pytest.fixture(scope="module")
def sc(cytosig):
    counts, genes, cells, _ = synthetic_counts(cytosig, n_cells=60, n_genes=800, seed=11)
    return counts, genes, cells


def _adata(counts, genes, cells, **var):
    return ad.AnnData(X=counts, obs=pd.DataFrame(index=cells), var=pd.DataFrame(var, index=genes))


def _same(a, b, atol=1e-12):
    for k in KEYS:
        pd.testing.assert_frame_equal(getattr(a, k), getattr(b, k), check_exact=False, rtol=0, atol=atol)


def test_input_types_agree(sc):
    counts, genes, cells = sc
    kw = dict(n_rand=50, min_genes=50, backend="numpy")
    base = infer(_adata(counts, genes, cells), **kw)
    assert base.beta.shape == (60, 43) and list(base.beta.index) == list(cells)  # AnnData's orientation
    dense = counts.toarray()
    _same(base, infer(_adata(dense, genes, cells), **kw), atol=1e-10)
    _same(base, infer(pd.DataFrame(dense.T, index=genes, columns=cells), **kw), atol=1e-10)
    _same(base, infer(counts, genes=genes, samples=cells, **kw))
    _same(base, infer(dense.T, genes=genes, samples=cells, **kw), atol=1e-10)  # genes x samples
    layered = _adata(np.zeros_like(dense), genes, cells)
    layered.layers["counts"] = counts
    _same(base, infer(layered, layer="counts", **kw))
    with pytest.raises(ValueError, match="genes="):
        infer(dense)
    with pytest.raises(TypeError, match="layer="):
        infer(pd.DataFrame(dense.T, index=genes), layer="counts")


def test_block_kernels_split_independent(sc):
    counts, genes, cells = sc
    res = infer(counts, genes=genes, samples=cells, n_rand=40, min_genes=50, backend="numpy")
    prep = prepare_signature("CytoSig", genes, min_genes=50)
    block = counts[:, prep.match.expr_idx]
    totals = np.asarray(counts.sum(axis=1)).ravel()
    bounds = [(0, 17), (17, 18), (18, 60)]
    prepared = [prepare_block(counts[a:b], prep.match.expr_idx) for a, b in bounds]
    g = gene_means([gene_mean_partial(p) for p in prepared], counts.shape[0])
    table = permutation_table(prep.match.n_genes, 40, 0)
    out = [activity_block(prep.T, block[a:b], totals=totals[a:b], gene_mean=g, perm_table=table)[0]
           for a, b in bounds]
    for i, k in enumerate(KEYS):
        np.testing.assert_allclose(np.hstack([o[i] for o in out]).T, getattr(res, k).to_numpy(), rtol=0, atol=1e-12)


def test_ensembl_ids(sc):
    counts, genes, cells = sc
    ids = [f"ENSG{i:011d}" for i in range(len(genes))]
    kw = dict(method="analytic", min_genes=50, backend="numpy")
    base = infer(_adata(counts, genes, cells), **kw)
    _same(base, infer(_adata(counts, ids, cells, feature_name=list(genes)), **kw))
    with pytest.raises(ValueError, match="Ensembl IDs"):
        infer(_adata(counts, ids, cells), **kw)


def test_no_overlap_and_bad_values(sc):
    counts, genes, cells = sc
    with pytest.raises(ValueError, match="Only 0 genes are shared"):
        infer(counts, genes=[f"NOPE{i}" for i in range(len(genes))], method="analytic")
    bad = counts.toarray()
    bad[3, 4] = np.nan
    with pytest.raises(ValueError, match="NaN/inf"):
        infer(bad, genes=genes, method="analytic", min_genes=50)
    bad[3, 4] = np.inf
    with pytest.raises(ValueError, match="NaN/inf"):
        infer(sp.csr_matrix(bad), genes=genes, method="analytic", min_genes=50)
    neg = counts.copy()
    neg.data[0] = -1.0
    with pytest.raises(ValueError, match="negative"):
        infer(neg, genes=genes, method="analytic", min_genes=50)
    logged = infer(neg, genes=genes, method="analytic", min_genes=50, input_kind="logexpr")  # fine when logged
    assert np.isfinite(logged.zscore.to_numpy()).all()
    for kw, match in [(dict(method="exact"), "method="), (dict(input_kind="tpm"), "input_kind="),
                      (dict(n_rand=0), "n_rand"), (dict(scale=0), "scale")]:
        with pytest.raises(ValueError, match=match):
            infer(counts, genes=genes, **kw)


@pytest.mark.parametrize("layout", ["sparse", "dense"])
def test_all_zero_cells_are_flagged_and_zero(sc, layout):
    counts, genes, cells = sc
    with_empty = sp.vstack([counts[:5], sp.csr_matrix((2, counts.shape[1])), counts[5:]]).tocsr()
    names = list(cells[:5]) + ["empty1", "empty2"] + list(cells[5:])
    x = with_empty if layout == "sparse" else with_empty.toarray()
    kw = dict(n_rand=30, min_genes=50, backend="numpy")
    res = infer(x, genes=genes, samples=names, **kw)
    assert res.empty.sum() == 2 and res.empty["empty1"] and res.empty["empty2"]
    for k, v in (("beta", 0.0), ("se", 0.0), ("zscore", 0.0), ("pvalue", 1.0)):
        assert (getattr(res, k).loc[["empty1", "empty2"]] == v).all().all()
    assert np.isfinite(res.zscore.to_numpy()).all()
    # empty cells do not enter the gene means: the other cells are unchanged
    ref = infer(counts, genes=genes, samples=cells, **kw)
    for k in KEYS:
        np.testing.assert_allclose(getattr(res, k).loc[cells], getattr(ref, k), rtol=0, atol=1e-12)


def test_constant_and_duplicate_signature_columns(sc, cytosig, tmp_path):
    counts, genes, cells = sc
    sig = cytosig.iloc[:, :5].copy()
    first = sig.columns[0]
    sig["CONST"] = 1.0
    sig["DUP"] = sig[first]
    kw = dict(n_rand=40, min_genes=50, backend="numpy", input_kind="counts")
    res = infer(counts, sig, genes=genes, samples=cells, group=False, **kw)
    assert (res.zscore["CONST"] == 0).all() and (res.pvalue["CONST"] == 1).all()
    np.testing.assert_allclose(res.beta["DUP"], res.beta[first], rtol=1e-12)  # ridge splits evenly
    grouped = infer(counts, sig, genes=genes, samples=cells, **kw)  # custom: grouped by default
    assert grouped.params["group"] and sorted([first, "DUP"]) in map(sorted, grouped.params["groups"].values())
    assert list(grouped.zscore.columns) == list(sig.columns)
    pd.testing.assert_series_equal(grouped.zscore["DUP"], grouped.zscore[first], check_names=False)
    assert (grouped.zscore["CONST"] == 0).all()
    grouped.to_anndata().write_h5ad(tmp_path / "grouped.h5ad")  # group lists survive h5ad
    assert list(ad.read_h5ad(tmp_path / "grouped.h5ad").uns["params"]["groups"].values())[0].size == 2


def test_logexpr_control_and_single_sample(sc):
    counts, genes, cells = sc
    logged = np.log1p(counts.toarray())
    df = pd.DataFrame(logged.T, index=genes, columns=cells)
    ctrl = np.zeros(len(cells), bool)
    ctrl[:10] = True
    kw = dict(method="analytic", min_genes=50, backend="numpy")
    res = infer(df, input_kind="logexpr", control=ctrl, **kw)
    diff = df.sub(df.loc[:, ctrl].mean(axis=1), axis=0)
    _same(res, infer(diff, input_kind="differential", **kw), atol=1e-10)
    _same(res, infer(df, input_kind="logexpr", control=list(cells[:10]), **kw))
    with pytest.raises(ValueError, match="control names"):
        infer(df, input_kind="logexpr", control=["nope"], **kw)
    with pytest.warns(UserWarning, match="not centred"):
        one = infer(df.iloc[:, :1], input_kind="logexpr", **kw)
    assert not one.params["centred"]
    _same(one, infer(df.iloc[:, :1], input_kind="differential", **kw))


def test_to_anndata_and_score(sc, tmp_path):
    counts, genes, cells = sc
    adata = _adata(counts, genes, cells)
    res = infer(adata, n_rand=20, min_genes=50, backend="numpy")
    out = res.to_anndata()
    assert out.shape == (60, 43) and list(out.obs_names) == list(cells)
    np.testing.assert_array_equal(out.X, res.zscore.to_numpy())
    np.testing.assert_array_equal(out.layers["pvalue"], res.pvalue.to_numpy())
    # the deprecated orientation (signatures x samples) for one release, with a warning; same AnnData
    with pytest.warns(FutureWarning, match="orientation='signatures'.* is deprecated"):
        old = infer(adata, n_rand=20, min_genes=50, backend="numpy", orientation="signatures")
    assert old.zscore.shape == (43, 60) and list(old.zscore.columns) == list(cells)
    for k in KEYS:
        pd.testing.assert_frame_equal(getattr(old, k).T, getattr(res, k))
    np.testing.assert_array_equal(old.to_anndata().X, out.X)
    with pytest.raises(ValueError, match="orientation='cells'"):
        infer(adata, orientation="cells")
    assert out.uns["params"]["rng"] == "srand" and "coverage" in out.var
    out.write_h5ad(tmp_path / "act.h5ad")
    assert ad.read_h5ad(tmp_path / "act.h5ad").uns["params"]["n_genes"] == res.params["n_genes"]
    assert score(adata, method="analytic", min_genes=50, backend="numpy") is None
    z = adata.obsm["activity_CytoSig"]
    assert isinstance(z, pd.DataFrame) and z.shape == (60, 43) and list(z.index) == list(cells)
    assert adata.uns["activity_CytoSig"]["params"]["method"] == "analytic"
    copy = score(adata, key_added="cs", copy=True, method="analytic", min_genes=50, backend="numpy")
    assert "cs" in copy.obsm and "cs" not in adata.obsm
    with pytest.raises(TypeError, match="AnnData"):
        score(pd.DataFrame())


def test_dask_input_gives_lazy_result_equal_to_eager(sc):
    da = pytest.importorskip("dask.array")
    counts, genes, _ = sc
    lazy = infer(da.from_array(counts.toarray(), chunks=(37, -1)), genes=genes, method="analytic")
    assert isinstance(lazy.zscore, da.Array)
    eager = infer(counts, genes=genes, method="analytic", backend="numpy")
    np.testing.assert_allclose(lazy.compute().zscore.to_numpy(), eager.zscore.to_numpy(), rtol=0, atol=1e-10)


def test_coverage_reported(sc):
    counts, genes, cells = sc
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = infer(counts, genes=genes, method="analytic", min_genes=50, backend="numpy")
    assert res.coverage.between(0, 1).all() and res.coverage.index.equals(res.zscore.columns)
    assert len(res.genes) == res.params["n_genes"]


@pytest.mark.gpu
@pytest.mark.skipif(not gpu_available(), reason="needs CuPy and a CUDA device")
@pytest.mark.parametrize("method", ["analytic", "permutation"])
def test_infer_cupy_matches_numpy(sc, method):
    counts, genes, cells = sc
    kw = dict(genes=genes, samples=cells, method=method, n_rand=100, min_genes=50)
    _same(infer(counts, backend="numpy", **kw), infer(counts, backend="cupy", **kw), atol=1e-10)
