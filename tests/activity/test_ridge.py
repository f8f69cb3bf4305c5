"""Ridge kernels: projection, closed-form permutation moments, batched permutations, sparse folding."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.sparse as sp

from cytodask.activity.preprocess import center_genes, normalize_counts, normalize_sparse, zscore_columns
from cytodask.activity.ridge import projection_matrix, ridge_analytic, ridge_permutation, ridge_sparse
from cytodask.activity.rng import permutation_table
from cytodask.core.backend import gpu_available


def _problem(n=60, k=5, m=4, seed=0):
    rng = np.random.default_rng(seed)
    x = zscore_columns(rng.normal(size=(n, k)))
    y = zscore_columns(rng.normal(size=(n, m)) + x[:, :1] * 0.5)
    return x, y


def test_projection_matrix_is_ridge_solution():
    x, _ = _problem()
    for lam in (0.0, 3.0, 5e5):
        T = projection_matrix(x, lam)
        np.testing.assert_allclose(T, np.linalg.solve(x.T @ x + lam * np.eye(5), x.T), rtol=1e-10, atol=1e-16)
    with pytest.raises(ValueError, match="lam must be"):
        projection_matrix(x, -1.0)
    with pytest.raises(ValueError, match="positive definite"):
        projection_matrix(np.hstack([x, x[:, :1]]), 0.0)


def _all_permutation_sums(a, b):
    perms = np.array(list(itertools.permutations(range(len(a)))))
    return a[perms] @ b  # S = sum_i a_pi(i) b_i for every pi


def test_closed_form_moments_exact_for_all_permutations():
    """E[S] = (sum a)(sum b)/n, Var[S] = sum(a-abar)^2 sum(b-bbar)^2/(n-1) over all 7! permutations."""
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=7), rng.normal(size=7) + 2.0
    s = _all_permutation_sums(a, b)
    n = 7
    assert s.mean() == pytest.approx(a.sum() * b.sum() / n, rel=1e-12)
    var = ((a - a.mean()) ** 2).sum() * ((b - b.mean()) ** 2).sum() / (n - 1)
    assert s.var() == pytest.approx(var, rel=1e-12)  # population variance over the full group
    # the kernel: a = rows of T, b = columns of y
    T = rng.normal(size=(3, n))
    y = rng.normal(size=(n, 2)) + 1.0
    res = ridge_analytic(T, y)
    for r in range(3):
        for c in range(2):
            sc = _all_permutation_sums(T[r], y[:, c])
            assert res.se[r, c] == pytest.approx(sc.std(), rel=1e-12)
            assert res.zscore[r, c] == pytest.approx((T[r] @ y[:, c] - sc.mean()) / sc.std(), rel=1e-10)


def test_closed_form_moments_agree_with_monte_carlo():
    rng = np.random.default_rng(2)
    n, draws = 60, 40_000
    a, b = rng.exponential(size=n), rng.normal(size=n)
    perms = rng.permuted(np.tile(np.arange(n), (draws, 1)), axis=1)
    s = a[perms] @ b
    mean = a.sum() * b.sum() / n
    var = ((a - a.mean()) ** 2).sum() * ((b - b.mean()) ** 2).sum() / (n - 1)
    # sampling error: mean within 4 standard errors, variance within 4 x sqrt(2/draws) (+ kurtosis slack)
    assert abs(s.mean() - mean) < 4 * np.sqrt(var / draws)
    assert abs(s.var() / var - 1) < 4 * np.sqrt(2.0 / draws) * 1.5


def _naive_permutation(T, y, table):
    """R SecAct's loop, one permutation at a time."""
    beta = T @ y
    s1 = np.zeros_like(beta)
    s2 = np.zeros_like(beta)
    cnt = np.zeros_like(beta)
    for perm in table:
        bp = T @ y[perm]
        s1 += bp
        s2 += bp**2
        cnt += np.abs(bp) >= np.abs(beta)
    mean = s1 / len(table)
    se = np.sqrt(s2 / len(table) - mean**2)
    return beta, se, (beta - mean) / se, (cnt + 1) / (len(table) + 1)


@pytest.mark.parametrize("m", [2, 9])  # fewer samples than signatures (y stacked) or more (T stacked)
@pytest.mark.parametrize("batch_size", [None, 1, 7])
def test_batched_permutation_equals_naive_loop(m, batch_size):
    x, y = _problem(m=m)
    T = projection_matrix(x, 10.0)
    table = permutation_table(60, 50, 0)
    res = ridge_permutation(T, y, table, batch_size=batch_size)
    for got, ref in zip(res, _naive_permutation(T, y, table), strict=False):
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12)


def test_analytic_z_approaches_permutation_z():
    x, y = _problem(n=200, m=3)
    T = projection_matrix(x, 5.0)
    exact = ridge_analytic(T, y)
    sampled = ridge_permutation(T, y, permutation_table(200, 4000, 1, "numpy"))
    np.testing.assert_allclose(exact.beta, sampled.beta, atol=1e-15)
    np.testing.assert_allclose(sampled.se, exact.se, rtol=0.06)  # ~ 4 / sqrt(2 * 4000)
    assert np.corrcoef(exact.zscore.ravel(), sampled.zscore.ravel())[0, 1] > 0.99


def _sparse_counts(cells=80, genes=150, density=0.15, seed=4):
    rng = np.random.default_rng(seed)
    c = sp.random(cells, genes, density=density, format="csr", random_state=seed,
                  data_rvs=lambda k: rng.integers(1, 30, k).astype(float))
    return c


def _dense_reference(counts, totals, T, method, table):
    y = normalize_counts(counts.toarray().T, totals)
    g = y.mean(axis=1)
    y = zscore_columns(center_genes(y, gene_mean=g))
    res = ridge_analytic(T, y) if method == "analytic" else ridge_permutation(T, y, table)
    return res, g


@pytest.mark.parametrize("method", ["analytic", "permutation"])
def test_sparse_kernel_equals_dense_path(method):
    counts = _sparse_counts()
    totals = np.asarray(counts.sum(axis=1)).ravel() + 5.0  # library sizes include other genes
    x, _ = _problem(n=150, k=6)
    T = projection_matrix(x, 50.0)
    table = permutation_table(150, 200, 0)
    ref, g = _dense_reference(counts, totals, T, method, table)
    lsp = normalize_sparse(counts, totals)
    res = ridge_sparse(T, lsp, gene_mean=g, method=method, perm_table=table)
    for got, want in zip(res, ref, strict=False):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)  # folded standardisation, 1e-10
    assert sp.issparse(lsp) and lsp.nnz == counts.nnz


@pytest.mark.parametrize("method", ["analytic", "permutation"])
def test_sparse_kernel_block_independent(method):
    counts = _sparse_counts(cells=90)
    totals = np.asarray(counts.sum(axis=1)).ravel()
    x, _ = _problem(n=150, k=4)
    T = projection_matrix(x, 1.0)
    table = permutation_table(150, 60, 2)
    lsp = normalize_sparse(counts, totals)
    g = np.asarray(lsp.mean(axis=0)).ravel()  # the global gene-mean pass
    whole = ridge_sparse(T, lsp, gene_mean=g, method=method, perm_table=table)
    parts = [ridge_sparse(T, lsp[a:b], gene_mean=g, method=method, perm_table=table, batch_size=7)
             for a, b in ((0, 31), (31, 32), (32, 90))]
    for i, full in enumerate(whole):
        np.testing.assert_allclose(np.hstack([p[i] for p in parts]), full, rtol=0, atol=1e-12)


def test_sparse_permutation_threads_and_gene_slices_do_not_change_results(monkeypatch):
    """Batches on a thread pool are consumed in order; gene slices only regroup sums (≤ 1e-12)."""
    import cytodask.activity.ridge as ridge

    counts = _sparse_counts(cells=40)
    totals = np.asarray(counts.sum(axis=1)).ravel()
    x, _ = _problem(n=150, k=5)
    T = projection_matrix(x, 1.0)
    table = permutation_table(150, 90, 4)
    lsp = normalize_sparse(counts, totals)
    g = np.asarray(lsp.mean(axis=0)).ravel()
    one = ridge_sparse(T, lsp, gene_mean=g, method="permutation", perm_table=table, batch_size=7)
    many = ridge_sparse(T, lsp, gene_mean=g, method="permutation", perm_table=table, batch_size=7, threads=3)
    for a, b in zip(one, many, strict=True):
        np.testing.assert_array_equal(a, b)
    monkeypatch.setattr(ridge, "_PART_BYTES", 2048)  # many gene slices
    sliced = ridge_sparse(T, lsp, gene_mean=g, method="permutation", perm_table=table, batch_size=7)
    assert len(ridge._gene_parts(lsp, 150 * 7 * 5 * 8, np)) == 16
    for a, b in zip(one, sliced, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


def test_sparse_kernel_constant_and_uncentred_cells():
    counts = _sparse_counts(cells=10)
    counts = sp.vstack([counts, sp.csr_matrix((1, 150))]).tocsr()  # an empty cell
    x, _ = _problem(n=150, k=3)
    T = projection_matrix(x, 1.0)
    res = ridge_sparse(T, counts, method="analytic")  # no gene mean: empty cell is constant
    assert (res.beta[:, -1] == 0).all() and (res.zscore[:, -1] == 0).all() and (res.pvalue[:, -1] == 1).all()
    ref = ridge_analytic(T, zscore_columns(counts.toarray().T))
    np.testing.assert_allclose(res.zscore, ref.zscore, atol=1e-10)
    with pytest.raises(ValueError, match="perm_table"):
        ridge_sparse(T, counts, method="permutation")
    with pytest.raises(ValueError, match="common genes"):
        ridge_sparse(T[:, :10], counts)
    with pytest.raises(ValueError, match="method"):
        ridge_sparse(T, counts, method="exact")
    with pytest.raises(ValueError, match="perm_table must be"):
        ridge_permutation(T, np.ones((150, 1)), np.zeros((3, 10), int))


@pytest.mark.gpu
@pytest.mark.skipif(not gpu_available(), reason="needs CuPy and a CUDA device")
@pytest.mark.parametrize("method", ["analytic", "permutation"])
def test_cupy_matches_numpy(method):
    import cupy as cp
    import cupyx.scipy.sparse as csp

    counts = _sparse_counts()
    totals = np.asarray(counts.sum(axis=1)).ravel()
    x, _ = _problem(n=150, k=6)
    table = permutation_table(150, 100, 0)
    T = projection_matrix(x, 50.0)
    Tg = projection_matrix(cp.asarray(x), 50.0, xp=cp)
    np.testing.assert_allclose(Tg.get(), T, rtol=1e-10, atol=1e-16)
    ref, g = _dense_reference(counts, totals, T, method, table)
    y = zscore_columns(center_genes(normalize_counts(cp.asarray(counts.toarray().T), cp.asarray(totals), xp=cp),
                                    gene_mean=cp.asarray(g), xp=cp), xp=cp)
    dense = (ridge_analytic(Tg, y, xp=cp) if method == "analytic"
             else ridge_permutation(Tg, y, cp.asarray(table), xp=cp))
    lsp = normalize_sparse(csp.csr_matrix(counts), cp.asarray(totals), xp=cp)
    sparse = ridge_sparse(Tg, lsp, gene_mean=cp.asarray(g), method=method, perm_table=cp.asarray(table), xp=cp)
    for a, b, want in zip(dense, sparse, ref, strict=False):
        np.testing.assert_allclose(a.get(), want, rtol=0, atol=1e-10)
        np.testing.assert_allclose(b.get(), want, rtol=0, atol=1e-10)


def test_projection_is_reused_for_the_same_signature_and_lam():
    """prepare_signature keeps the last projections keyed by the z-scored signature's bytes and lam:
    a repeated call returns the same (read-only) T; another lam or gene set computes a new one."""
    from cytodask.activity import operands as infer_mod

    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 5))
    infer_mod._PROJECTIONS.clear()
    t1 = infer_mod._cached_projection(x, 5e5)
    assert infer_mod._cached_projection(x.copy(), 5e5) is t1 and not t1.flags.writeable
    np.testing.assert_array_equal(t1, projection_matrix(x, 5e5))
    t2 = infer_mod._cached_projection(x, 1e3)
    assert t2 is not t1 and not np.allclose(t1, t2)
    t3 = infer_mod._cached_projection(x[:-1], 5e5)
    assert t3.shape == (5, 299)
    assert len(infer_mod._PROJECTIONS) == infer_mod._PROJECTIONS_KEPT  # the oldest was dropped
    infer_mod._PROJECTIONS.clear()
