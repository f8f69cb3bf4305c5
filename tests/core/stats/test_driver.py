"""The row-block driver: both layouts, reason codes, threads and Dask give the same outputs."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pandas as pd
import pytest

from cytodask.core.stats import driver
from cytodask.core.stats.inputs import prepare_pairs, prepare_rows
from cytodask.core.stats.results import CorrelationResult, StatResult


def _diff_block(x, y, *, xp, min_n):
    n1, n2 = (~xp.isnan(x)).sum(axis=1) * 1.0, (~xp.isnan(y)).sum(axis=1) * 1.0
    code = (n1 < min_n) * 1.0 + (n2 < min_n) * 2.0
    return xp.stack([xp.nanmean(x, axis=1) - xp.nanmean(y, axis=1), n1, code], axis=1)


def _pair_block(a, b, *, xp, z, min_n):
    prod = a @ b.T
    n = xp.full(prod.shape, float(a.shape[1]))
    return xp.stack([prod, prod * 0.5, n, (n < min_n) * 1.0], axis=-1)


def test_rows_layout_array_dask_pandas_and_threads_agree(monkeypatch):
    monkeypatch.setattr(driver, "ROW_BLOCK_ELEMENTS", 16)  # many row blocks
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(9, 5)), rng.normal(size=(9, 2))
    names = ("diff", "n_g1", "code")
    ref = driver.run(_diff_block, prepare_rows(x, y), names, min_n=3, reasons=driver.TWO_SAMPLE_REASONS, threads=1)
    assert isinstance(ref, StatResult) and ref.n_g1.dtype == np.int64
    assert list(ref.reason) == ["n_g2<3"] * 9
    many = driver.run(_diff_block, prepare_rows(x, y), names, min_n=3, reasons=driver.TWO_SAMPLE_REASONS,
                      threads=3)  # fmt: skip
    np.testing.assert_array_equal(many.diff, ref.diff)
    lazy = driver.run(_diff_block, prepare_rows(da.from_array(x, chunks=(4, 5)), y), names, min_n=3,
                      reasons=driver.TWO_SAMPLE_REASONS)  # fmt: skip
    np.testing.assert_array_equal(lazy.diff.compute(), ref.diff)
    assert list(lazy.reason.compute()) == list(ref.reason)
    frame = driver.run(_diff_block, prepare_rows(pd.DataFrame(x), pd.DataFrame(y)), names, min_n=2,
                       reasons=driver.TWO_SAMPLE_REASONS)  # fmt: skip
    assert list(frame.columns) == ["diff", "n_g1", "reason"] and (frame["reason"] == "").all()


def test_pairs_layout_array_dask_pandas_agree():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(5, 4)), rng.normal(size=(3, 4))
    names = ("rho", "pvalue", "n", "code")
    kw = {"min_n": 5, "reasons": driver.CORRELATION_REASONS, "pairs": True}
    ref = driver.run(_pair_block, prepare_pairs(a, b), names, threads=2, **kw)
    assert isinstance(ref, CorrelationResult) and ref.rho.shape == (5, 3) and ref.n.dtype == np.int64
    np.testing.assert_array_equal(ref.rho, a @ b.T)
    assert (ref.reason == "n<5").all()
    lazy = driver.run(_pair_block, prepare_pairs(da.from_array(a, chunks=(2, 4)), b), names, **kw)
    np.testing.assert_array_equal(lazy.rho.compute(), ref.rho)
    labelled = driver.run(_pair_block, prepare_pairs(pd.DataFrame(a, index=list("abcde")), pd.DataFrame(b)),
                          names, **kw)  # fmt: skip
    assert list(labelled.rho.index) == list("abcde")
    assert list(labelled.to_frame().columns) == ["feature_a", "feature_b", "rho", "pvalue", "n", "reason"]


def test_reason_strings_and_min_n_checks():
    codes = np.array([0.0, 1.0, 3.0, 16.0])
    assert list(driver.reason_strings(codes, 3, driver.TWO_SAMPLE_REASONS)) == [
        "", "n_g1<3", "n_g1<3;n_g2<3", "all_differences_zero"]  # fmt: skip
    assert list(driver.reason_strings(np.array([2, 3]), 10, driver.CORRELATION_REASONS)) == [
        "constant", "n<10;constant"]  # fmt: skip
    assert driver.check_min_n(np.int64(4)) == 4
    with pytest.raises(ValueError, match=r">= 3 \(10 is the default\)"):
        driver.check_min_n(2, smallest=3, default=10)
    with pytest.raises(ValueError, match=">= 1"):
        driver.check_min_n(True)
