"""Chunked sparse inference: chunks, their gene sums and threads never change the result."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from cytodask.activity import chunked, infer
from cytodask.activity.chunked import chunk_rows, gene_sums, normalized_chunks, row_view, stacked
from cytodask.activity.preprocess import normalize_counts, row_slices, row_sums

from .conftest import synthetic_counts

KEYS = ("beta", "se", "zscore", "pvalue")


@pytest.fixture(scope="module")
def sc(cytosig):
    counts, genes, cells, _ = synthetic_counts(cytosig, n_cells=300, n_genes=1500, seed=11)
    counts = counts.tolil()
    counts[[5, 150], :] = 0  # empty cells, one in each half
    return counts.tocsr(), genes, cells


def test_chunk_rows_depend_on_cells_only():
    assert chunk_rows(10) == chunked.MIN_ROWS
    assert chunk_rows(1000) == 125  # 8 chunks: every thread has work
    assert chunk_rows(10**7) == chunked.CHUNK_ROWS


def test_row_view_shares_arrays_and_equals_slice(sc):
    counts, _, _ = sc
    view = row_view(counts, 40, 97)
    assert np.shares_memory(view.data, counts.data)
    np.testing.assert_array_equal(view.toarray(), counts[40:97].toarray())


def test_row_sums_with_empty_rows_and_squares():
    a = sp.csr_matrix(np.array([[0, 0, 0], [1, 2, 0], [0, 0, 0], [0, 0, 3], [0, 0, 0]], dtype=np.float32))
    np.testing.assert_array_equal(row_sums(a), [0, 3, 0, 3, 0])
    np.testing.assert_array_equal(row_sums(a, square=True), [0, 5, 0, 9, 0])
    assert row_sums(a).dtype == np.float64
    big = sp.random(50, 40, density=0.3, format="csr", random_state=1) * 100
    for values in (7, 1 << 16):  # slices of a few values (many slices, rows split across none) and one slice
        parts = row_slices(big.indptr, values)
        assert parts[0][0] == 0 and parts[-1][1] == 50
        assert all(p[1] == q[0] for p, q in zip(parts, parts[1:], strict=False))  # contiguous, complete
        np.testing.assert_allclose(row_sums(big), np.asarray(big.sum(axis=1)).ravel(), rtol=1e-14)


@pytest.mark.parametrize("rows", [7, 64, 300])
def test_chunks_normalize_like_the_dense_formula(sc, rows):
    counts, _, _ = sc
    genes = np.sort(np.random.default_rng(0).choice(counts.shape[1], 900, replace=False))
    chunks = normalized_chunks(counts, genes, input_kind="counts", scale=1e5, threads=2, rows_per_chunk=rows)
    whole = stacked(chunks)
    totals = np.asarray(counts.sum(axis=1)).ravel()
    ref = normalize_counts(counts[:, genes].toarray().T, totals).T
    np.testing.assert_allclose(whole.norm.toarray(), ref, rtol=1e-15, atol=0)
    np.testing.assert_array_equal(whole.empty, totals == 0)
    sums, n = gene_sums(chunks)
    np.testing.assert_allclose(sums, ref.sum(axis=0), rtol=1e-12)
    assert n == counts.shape[0] - 2
    ctrl = np.arange(0, 300, 3)
    cchunks = normalized_chunks(counts, genes, input_kind="counts", scale=1e5, threads=1, control=ctrl,
                                rows_per_chunk=rows)
    csums, cn = gene_sums(cchunks)
    np.testing.assert_allclose(csums, ref[ctrl].sum(axis=0), rtol=1e-12)
    assert cn == int((totals[ctrl] > 0).sum())


@pytest.mark.parametrize("method", ["analytic", "permutation"])
def test_threads_do_not_change_results(sc, method):
    counts, genes, cells = sc
    kw = dict(method=method, n_rand=30, min_genes=50, backend="numpy")
    one = infer(counts, genes=genes, samples=cells, threads=1, **kw)
    two = infer(counts, genes=genes, samples=cells, threads=2, **kw)
    for k in KEYS:
        np.testing.assert_array_equal(getattr(one, k).to_numpy(), getattr(two, k).to_numpy())
    assert one.empty.sum() == 2 and (one.zscore.loc[one.empty].to_numpy() == 0).all()


def test_chunked_path_equals_dense_path(sc):
    """The sparse chunked pipeline and the single dense block agree (different code, same statistics)."""
    counts, genes, cells = sc
    for kind, mat in (("counts", counts), ("logexpr", counts.log1p())):
        for control in (None, np.arange(0, 300, 2)):
            kw = dict(method="analytic", min_genes=50, backend="numpy", input_kind=kind, control=control)
            sparse = infer(mat, genes=genes, samples=cells, **kw)
            dense = infer(mat.toarray(), genes=genes, samples=cells, **kw)
            for k in KEYS:
                np.testing.assert_allclose(getattr(sparse, k).to_numpy(), getattr(dense, k).to_numpy(),
                                           rtol=0, atol=1e-10)
            assert sparse.params["centred"] and dense.params["centred"]


def test_input_is_not_modified_and_dtypes_are_kept(sc):
    counts, genes, cells = sc
    for dtype in (np.float64, np.float32, np.int32):
        mat = counts.astype(dtype)
        before = mat.copy()
        res = infer(mat, genes=genes, samples=cells, method="analytic", min_genes=50, backend="numpy")
        assert mat.dtype == dtype
        np.testing.assert_array_equal(mat.data, before.data)
        np.testing.assert_array_equal(mat.indices, before.indices)
        if dtype is np.float64:
            base = res
        else:
            np.testing.assert_allclose(res.zscore.to_numpy(), base.zscore.to_numpy(), rtol=0, atol=1e-9)


def test_value_checks_on_each_dtype(sc):
    counts, genes, cells = sc
    kw = dict(genes=genes, method="analytic", min_genes=50, backend="numpy")
    bad = counts.astype(np.float32)
    bad.data[7] = np.nan
    with pytest.raises(ValueError, match="1 NaN/inf"):
        infer(bad, **kw)
    neg = counts.astype(np.int64)
    neg.data[3] = -2
    with pytest.raises(ValueError, match="negative"):
        infer(neg, **kw)
    from cytodask.activity.inputs import check_values

    huge = counts.copy()
    huge.data[:2] = 1e308  # finite values whose float64 sum overflows: counted, not an error
    check_values(huge, "logexpr")


def test_integer_gene_names_match_as_strings(cytosig):
    from cytodask.activity.genes import looks_like_ensembl, match_genes

    sig = cytosig.iloc[:300]
    names = list(sig.index[:250]) + [17, 3.5]
    m = match_genes(names, sig, min_genes=10)
    assert m.n_genes == 250 and list(m.genes) == list(sig.index[:250])
    assert not looks_like_ensembl(names)
    assert looks_like_ensembl(["ENSG00000141510", "ENSG00000111640.15", "TP53"])
