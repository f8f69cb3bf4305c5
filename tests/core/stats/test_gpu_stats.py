"""Device-side statistics (issue 15.8): the forms CuPy runs, checked on NumPy here and on CuPy on a GPU.

The Student t tail on the GPU is the regularised incomplete beta function (cupyx has ``betainc``, no
``stdtr``). :func:`t_pvalue_betainc` is one xp-generic function, so the same code is compared here
with ``scipy.stats.t.sf`` on NumPy. Tolerance: the argument ``x = ν/(ν+t²)`` carries one rounding
(2**-53 relative), which the tail ``I_x(ν/2, 1/2) ≈ C·x^{ν/2}`` amplifies ν/2-fold, and the
incomplete beta itself is good to ~1e-14: rtol = 1e-15·ν + 1e-13 bounds both (measured worst:
2e-15 at ν = 10, 2e-14 at ν = 100, 8e-12 at ν = 1e5, 7e-11 at ν = 1e6). Where both underflow
(p < 1e-290) only the absolute difference is checked.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.special
import scipy.stats

from cytodask.core.stats import blocks, two_sided_t_pvalue
from cytodask.core.stats.pvalues import t_pvalue_betainc
from tests.gpu_util import requires_gpu

DFS = [1.0, 2.0, 2.5, 3.0, 5.0, 7.3, 10.0, 30.0, 98.0, 100.0, 1e3, 1e4, 1e5, 1e6]


def _t_grid(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([np.linspace(-40, 40, 4001), 5 * rng.standard_normal(2000),
                           [0.0, 1e-8, -1e-3, 1.0, 1.0 + 1e-12, 0.999999, 1e3, 1e10]])


def _rtol(df: float) -> float:
    return 1e-15 * df + 1e-13


@pytest.mark.parametrize("df", DFS)
def test_betainc_t_pvalue_matches_scipy(df: float):
    t = _t_grid()
    got = t_pvalue_betainc(t, df, np)
    ref = 2.0 * scipy.stats.t.sf(np.abs(t), df)
    if df == 1.0:  # scipy's stdtr loses 3e-9 at |t| = 1e-8 for ν = 1; the Cauchy tail is exact: 2/π·atan(1/|t|)
        with np.errstate(divide="ignore"):
            ref = 2.0 / np.pi * np.arctan(1.0 / np.abs(t))
    big = ref > 1e-290
    np.testing.assert_allclose(got[big], ref[big], rtol=_rtol(df), atol=0)
    np.testing.assert_allclose(got[~big], ref[~big], rtol=0, atol=1e-290)
    assert got.dtype == np.float64 and ((got >= 0) & (got <= 1)).all()


def test_betainc_t_pvalue_edges_and_broadcast():
    t = np.array([np.nan, np.inf, -np.inf, 0.0, 2.0, 2.0, 3.0])
    df = np.array([3.0, 3.0, 3.0, 3.0, np.inf, np.nan, 7.0])
    got = t_pvalue_betainc(t, df, np)
    assert np.isnan(got[0]) and got[1] == 0.0 and got[2] == 0.0 and got[3] == 1.0 and np.isnan(got[5])
    assert got[4] == pytest.approx(2 * scipy.stats.norm.sf(2.0), rel=1e-15)
    assert got[6] == pytest.approx(2 * scipy.stats.t.sf(3.0, 7.0), rel=1e-13)
    r = np.linspace(-0.99, 0.99, 12).reshape(3, 4)  # correlation-shaped: t per pair, one df per row
    tt = r * np.sqrt(20 / ((1 + r) * (1 - r)))
    np.testing.assert_allclose(t_pvalue_betainc(tt, np.full((3, 1), 20.0), np), 2 * scipy.stats.t.sf(np.abs(tt), 20),
                               rtol=_rtol(20))


def test_numpy_keeps_stdtr():
    """CPU results unchanged: NumPy still calls scipy's stdtr (bit for bit)."""
    t, df = _t_grid(), 17.0
    np.testing.assert_array_equal(two_sided_t_pvalue(t, df, np), 2.0 * scipy.special.stdtr(df, -np.abs(t)))


def test_gpu_block_sizes():
    """Device-sized blocks: few large ones for 1,170 × 100k, bounded by device memory, never below the CPU's."""
    h200 = blocks.gpu_block_sizes(141 * 10**9)
    h100 = blocks.gpu_block_sizes(80 * 10**9)
    small = blocks.gpu_block_sizes(8 * 2**30)
    assert h200 == h100 and h200.row_elements == blocks.GPU_MAX_ELEMENTS == 1 << 26
    assert small.row_elements == 1 << 24  # 8 GiB / (4 · 8 B · 16)
    tiny = blocks.gpu_block_sizes(1)
    assert tiny.row_elements == blocks.CPU_BLOCKS.row_elements and tiny.pair_elements == blocks.CPU_BLOCKS.pair_elements
    for s in (h200, small):
        assert s.row_elements & (s.row_elements - 1) == 0
        assert s.row_elements * 8 * blocks.GPU_TEMPORARIES <= max(8 * 2**30, 141 * 10**9) / blocks.GPU_MEMORY_SHARE
    n_features, n_columns = 1170, 100_000  # Wilcoxon 1,170 × 100k (x and y columns together)
    gpu_calls = -(-n_features // blocks.rows_per_block(n_columns, h200))
    cpu_calls = -(-n_features // blocks.rows_per_block(n_columns, blocks.CPU_BLOCKS))
    assert gpu_calls <= 4 and cpu_calls == 585
    assert blocks.block_sizes(np) == blocks.CPU_BLOCKS
    with pytest.raises(ValueError, match="device_bytes=0"):
        blocks.gpu_block_sizes(0)


class TestOnDevice:
    pytestmark = requires_gpu

    @pytest.mark.parametrize("df", [3.0, 30.0, 1e4])
    def test_cupy_t_pvalue_matches_numpy(self, df: float):
        import cupy as cp

        t = _t_grid()
        got = two_sided_t_pvalue(cp.asarray(t), df, cp)
        assert isinstance(got, cp.ndarray)  # computed on the device, no host round trip
        ref = two_sided_t_pvalue(t, df, np)
        big = ref > 1e-290
        # cupyx's betainc is Cephes' incbet (cupyx/scipy/special/_beta.py), scipy's stdtr Boost's: Cephes
        # documents a peak relative error of 2.2e-13 for a, b <= 85 and 5.3e-12 for a, b <= 1000 (incbet.c),
        # above the formula's own ~1e-15·ν (df = 1e4: a = 5000, past that table): 1e-11 more covers both.
        np.testing.assert_allclose(cp.asnumpy(got)[big], ref[big], rtol=_rtol(df) + 1e-11)

    def test_device_block_sizes(self):
        import cupy as cp

        s = blocks.block_sizes(cp)
        assert s == blocks.gpu_block_sizes(cp.cuda.Device().mem_info[1])
        assert s.row_elements >= blocks.CPU_BLOCKS.row_elements


@pytest.mark.parametrize("n", [5, 30, 1000])
def test_betainc_correlation_pvalue_matches_pearsonr(n: int):
    """The correlation p-value the GPU computes (r -> t -> incomplete beta) against scipy's own beta form."""
    from cytodask.correlation.kernels import t_pvalue

    r = np.concatenate([np.linspace(-0.999, 0.999, 401), [0.0, 1e-9, -0.3]])
    df = n - 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        t = r * np.sqrt(np.clip(df / ((r + 1.0) * (1.0 - r)), 0.0, None))
    got = t_pvalue_betainc(t, df, np)
    dist = scipy.stats.beta(df / 2, df / 2, loc=-1, scale=2)  # scipy.stats.pearsonr's null of r
    ref = 2 * dist.sf(np.abs(r))
    big = ref > 1e-290
    np.testing.assert_allclose(got[big], ref[big], rtol=1e-10)  # two formulas of one distribution: ~1e-12 apart
    np.testing.assert_allclose(got, t_pvalue(r, df, np), rtol=_rtol(df), atol=1e-300)  # and the CPU kernel's stdtr
