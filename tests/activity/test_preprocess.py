"""Preprocessing kernels against direct formulas (NumPy backend)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from cytodask.activity.preprocess import (
    center_genes,
    gene_sum_partial,
    normalize_counts,
    normalize_sparse,
    sparse_column_moments,
    zscore_columns,
)


@pytest.fixture
def counts():
    rng = np.random.default_rng(3)
    x = rng.poisson(0.7, size=(40, 12)).astype(float)  # genes x samples
    x[:, 5] = 0.0  # an empty sample
    return x


def test_normalize_counts_formula(counts):
    out = normalize_counts(counts, scale=1e5)
    tot = counts.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        ref = np.log2(counts / tot * 1e5 + 1)
    np.testing.assert_allclose(np.delete(out, 5, axis=1), np.delete(ref, 5, axis=1), rtol=1e-15)
    assert (out[:, 5] == 0).all()  # empty column -> 0, not NaN
    sub = normalize_counts(counts[:10], counts.sum(axis=0))  # totals over all genes
    np.testing.assert_array_equal(sub, out[:10])


def test_normalize_sparse_equals_dense(counts):
    cells = sp.csr_matrix(counts.T)
    totals = counts.sum(axis=0)
    out = normalize_sparse(cells, totals, scale=1e4)
    assert sp.issparse(out) and out.nnz == cells.nnz
    np.testing.assert_array_equal(out.toarray(), normalize_counts(counts, totals, scale=1e4).T)  # bitwise
    assert cells.data.max() >= 1  # input untouched


def test_center_genes_mean_control_and_given(counts):
    y = normalize_counts(counts)
    np.testing.assert_allclose(center_genes(y), y - y.mean(axis=1, keepdims=True))
    ctrl = np.zeros(12, bool)
    ctrl[[0, 3]] = True
    np.testing.assert_allclose(center_genes(y, control=ctrl), y - y[:, [0, 3]].mean(axis=1, keepdims=True))
    g = np.arange(40.0)
    np.testing.assert_allclose(center_genes(y, gene_mean=g), y - g[:, None])
    with pytest.raises(ValueError, match="control"):
        center_genes(y, control=np.zeros(12, bool))


def test_gene_sum_partials_merge_to_mean(counts):
    cells = normalize_counts(counts).T  # cells x genes
    valid = counts.sum(axis=0) > 0
    s1, n1 = gene_sum_partial(cells[:6], valid[:6])
    s2, n2 = gene_sum_partial(sp.csr_matrix(cells[6:]), valid[6:])
    np.testing.assert_allclose((s1 + s2) / (n1 + n2), cells[valid].mean(axis=0), rtol=1e-13)
    assert n1 + n2 == 11


def test_zscore_matches_r_scale():
    rng = np.random.default_rng(0)
    a = rng.normal(3, 2, size=(50, 4))
    a[:, 2] = 7.3  # constant column -> 0 (R: NaN, secactpy: 0)
    ref = pd.DataFrame(a)
    ref = ((ref - ref.mean()) / ref.std(ddof=1)).fillna(0).to_numpy()
    out = zscore_columns(a)
    np.testing.assert_allclose(out[:, [0, 1, 3]], ref[:, [0, 1, 3]], rtol=1e-13)
    assert (out[:, 2] == 0).all()
    assert np.isfinite(zscore_columns(np.array([[np.nan, 1.0], [np.nan, 2.0]]))).all()


def test_sparse_column_moments(counts):
    lsp = sp.csr_matrix(normalize_counts(counts).T)
    g = np.asarray(lsp.mean(axis=0)).ravel()
    y = lsp.toarray() - g
    mu, sigma, const = sparse_column_moments(lsp, g)
    np.testing.assert_allclose(mu, y.mean(axis=1), atol=1e-14)
    np.testing.assert_allclose(sigma, y.std(axis=1, ddof=1), rtol=1e-12)
    assert not const.any()
    mu0, sigma0, const0 = sparse_column_moments(lsp)  # no centring: the empty cell is constant
    assert const0[5] and sigma0[5] == 0 and const0.sum() == 1
