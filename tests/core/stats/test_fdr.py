"""Benjamini–Hochberg against statsmodels.multipletests(method="fdr_bh")."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from statsmodels.stats.multitest import multipletests

from cytodask.core.stats import fdr_bh


def _ref(p):
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    if ok.any():
        out[ok] = multipletests(p[ok], method="fdr_bh")[1]
    return out


@st.composite
def pvalues(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    shape = (draw(st.integers(1, 5)), draw(st.integers(1, 40)))
    p = rng.random(shape) ** draw(st.sampled_from([1, 4]))
    if draw(st.booleans()):
        p = np.round(p, 2)  # ties
    p[rng.random(shape) < draw(st.sampled_from([0.0, 0.2]))] = np.nan
    return p


@settings(max_examples=40, deadline=None)
@given(pvalues())
def test_matches_statsmodels(p):
    np.testing.assert_allclose(fdr_bh(p), _ref(p.ravel()).reshape(p.shape), rtol=1e-12)
    q1 = fdr_bh(p, axis=1)
    np.testing.assert_allclose(q1, np.array([_ref(r) for r in p]), rtol=1e-12)
    np.testing.assert_array_equal(fdr_bh(p.T, axis=0), q1.T)
    fam = np.repeat(np.arange(p.shape[0]), p.shape[1]).reshape(p.shape)
    np.testing.assert_array_equal(fdr_bh(p, families=fam), q1)


def test_families_with_labels_and_uneven_sizes():
    rng = np.random.default_rng(0)
    p = rng.random(30)
    labels = np.array(["a"] * 3 + ["b"] * 20 + ["c"] * 7, dtype=object)
    rng.shuffle(labels)
    q = fdr_bh(p, families=labels)
    for lab in "abc":
        np.testing.assert_allclose(q[labels == lab], _ref(p[labels == lab]), rtol=1e-12)


def test_pandas_and_dask():
    rng = np.random.default_rng(1)
    p = rng.random((6, 4))
    s = pd.Series(p[:, 0], index=list("abcdef"), name="p")
    qs = fdr_bh(s)
    assert isinstance(qs, pd.Series) and list(qs.index) == list("abcdef")
    frame = fdr_bh(pd.DataFrame(p), axis=0)
    np.testing.assert_allclose(frame.to_numpy(), fdr_bh(p, axis=0))
    lazy = fdr_bh(da.from_array(p, chunks=(2, 2)), axis=0)
    assert isinstance(lazy, da.Array)
    np.testing.assert_array_equal(lazy.compute(), fdr_bh(p, axis=0))
    np.testing.assert_array_equal(fdr_bh(da.from_array(p, chunks=2)).compute(), fdr_bh(p))


def test_errors():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        fdr_bh(np.array([0.1, 1.5]))
    with pytest.raises(ValueError, match="not both"):
        fdr_bh(np.zeros((2, 2)), axis=0, families=np.zeros((2, 2)))
    with pytest.raises(ValueError, match="one label per p-value"):
        fdr_bh(np.zeros(3), families=np.zeros(2))


def test_public_family_name_is_the_core_function():
    """``cytodask.differential.fdr_bh`` (the documented name) is the one BH implementation."""
    import cytodask.differential

    assert cytodask.differential.fdr_bh is fdr_bh
