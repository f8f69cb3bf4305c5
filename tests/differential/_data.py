"""Shared generators and comparison helpers for the differential tests."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from cytodask.core.backend import gpu_available

BACKENDS = ["numpy", "dask"]
GPU = gpu_available()

STAT_RTOL = 1e-10  # statistics (U, t, df, effects)
P_RTOL = 1e-9  # p-values, relative; in log space below TINY
TINY = 1e-250


@st.composite
def two_groups(draw, *, max_features=6, max_n=14, min_n=0, nan=True):
    """(x, y) features × samples with ties, NaNs, constant rows and tiny groups."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    f = draw(st.integers(1, max_features))
    n1, n2 = draw(st.integers(min_n, max_n)), draw(st.integers(min_n, max_n))
    kind = draw(st.sampled_from(["int", "float", "mixed"]))

    def make(n):
        if kind == "int":
            return rng.integers(-3, 4, (f, n)).astype(np.float64)
        if kind == "float":
            return np.round(rng.normal(size=(f, n)) * 8, 2)
        return np.where(rng.random((f, n)) < 0.5, 1.0, rng.normal(size=(f, n)))

    x, y = make(n1), make(n2)
    if f > 1 and draw(st.booleans()):
        x[0], y[0] = 2.0, 2.0  # a constant feature
    if nan and draw(st.booleans()):
        frac = draw(st.sampled_from([0.1, 0.3]))
        x[rng.random(x.shape) < frac] = np.nan
        y[rng.random(y.shape) < frac] = np.nan
    return x, y


def assert_p_close(p, ref, rtol=P_RTOL):
    """p-values equal to ``rtol`` relative, compared in log space below ``TINY``; NaN where ref is NaN."""
    p, ref = np.asarray(p, dtype=float), np.asarray(ref, dtype=float)
    np.testing.assert_array_equal(np.isnan(p), np.isnan(ref))
    ok = ~np.isnan(ref)
    big = ok & (ref > TINY)
    np.testing.assert_allclose(p[big], ref[big], rtol=rtol, atol=0)
    small = ok & ~big
    if small.any():
        log_p, log_ref = (np.log(np.maximum(v[small], 1e-320)) for v in (p, ref))
        np.testing.assert_allclose(log_p, log_ref, rtol=1e-6)


def as_backend(a, backend, chunks=2):
    """Put a NumPy array on ``backend`` (``numpy`` or ``dask`` with row chunks)."""
    if backend == "dask":
        import dask.array as da

        return da.from_array(a, chunks=(chunks, -1))
    return a


def compute(v):
    return v.compute() if hasattr(v, "compute") else v
