"""Block kernels of aggregation (cytodask.aggregation.kernels) against dense NumPy references."""

from __future__ import annotations

import numpy as np
import pytest

from cytodask.aggregation.kernels import group_sums, normalize_sums


def test_kernels_dense_equals_sparse():
    import scipy.sparse as sp

    rng = np.random.default_rng(0)
    x = sp.random(50, 20, density=0.3, format="csr", random_state=1)
    codes = rng.integers(-1, 4, 50)
    s1 = group_sums(x, codes, 4, np)
    s2 = group_sums(x.toarray(), codes, 4, np)
    ref = np.stack([x.toarray()[codes == g].sum(0) for g in range(4)])
    np.testing.assert_allclose(s1, ref, rtol=1e-12)
    np.testing.assert_allclose(s2, ref, rtol=1e-12)
    n = normalize_sums(ref, ref.sum(1), "log1p", np)
    np.testing.assert_allclose(n, np.log1p(ref / ref.sum(1, keepdims=True) * 1e4))
    with pytest.raises(ValueError, match="normalize='bad'"):
        normalize_sums(ref, ref.sum(1), "bad", np)  # type: ignore[arg-type]
