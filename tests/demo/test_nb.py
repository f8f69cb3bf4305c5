"""The exact sparse negative-binomial sampler (cytodask.demo._nb)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy import stats

from cytodask.demo._nb import MU_INVERSION_MAX, sample_nb_csr

# (mu, r) covering the three code paths: counts 1-2 by inversion, the k >= 3
# inversion search (mu <= MU_INVERSION_MAX), and rejection (mu > MU_INVERSION_MAX).
NB_CASES = [
    (0.01, 1.0), (0.2, 3.0), (1.0, 1.0), (2.5, 7.3), (4.0, 2.0), (4.5, 20.0), (30.0, 5.0), (150.0, 1.2),
]  # fmt: skip


def test_sampler_is_negative_binomial() -> None:
    """Each column is iid NB(mu, r); half of the rows reach mu through a size factor of 2.

    Tolerances (n = 200,000 draws per case, fixed seed, so the test is
    deterministic): the sample mean within 5 standard errors of mu; the sample
    variance within 5 % of mu + mu^2 / r (its standard error is below 1 % for
    these cases, kurtosis included); the chi-square goodness of fit of
    P(X = k) over bins with expected count >= 5 (plus one tail bin) with
    p > 1e-3.
    """
    assert any(mu > MU_INVERSION_MAX for mu, _ in NB_CASES)
    mu = np.array([c[0] for c in NB_CASES])
    r = np.array([c[1] for c in NB_CASES])
    n = 200_000
    groups = np.repeat([0, 1], n // 2)  # group 1 has half the mean, doubled by its size factor
    size_factors = np.where(groups == 1, 2.0, 1.0)
    indptr, indices, data = sample_nb_csr(
        np.random.default_rng(12345), np.stack([mu, mu / 2]), groups, size_factors, r
    )
    x = sp.csr_matrix((data, indices, indptr), shape=(n, len(mu))).toarray()
    assert data.dtype == np.int32 and (data > 0).all()
    for j, (m, rr) in enumerate(NB_CASES):
        dist = stats.nbinom(rr, rr / (rr + m))
        col = x[:, j]
        assert abs(col.mean() - m) < 5 * np.sqrt(dist.var() / n), (m, rr, col.mean())
        assert col.var() == pytest.approx(dist.var(), rel=0.05), (m, rr)
        k_max = int(np.nonzero(dist.pmf(np.arange(10_000)) * n >= 5)[0].max())
        observed = np.bincount(np.minimum(col, k_max + 1), minlength=k_max + 2)
        expected = n * np.r_[dist.pmf(np.arange(k_max + 1)), dist.sf(k_max)]
        keep = expected > 0
        p = stats.chisquare(observed[keep], expected[keep] * observed.sum() / expected[keep].sum()).pvalue
        assert p > 1e-3, (m, rr, p)
