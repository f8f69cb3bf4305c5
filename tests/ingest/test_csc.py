"""Out-of-core re-blocking by rows (rowsort) and CSC-encoded .h5ad through it."""

from __future__ import annotations

import copy
import gc
import pickle
import tracemalloc
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from cytodask.ingest import convert
from cytodask.ingest.h5ad import LocalH5ADSource
from cytodask.ingest.rowsort import RowSpill, choose_rows_per_bucket, csc_triples
from tests.conftest import make_counts_adata


def _same(a: sp.spmatrix, b: sp.spmatrix) -> bool:
    return a.shape == b.shape and (sp.csr_matrix(a) != sp.csr_matrix(b)).nnz == 0


def _shuffled_stream(m: sp.spmatrix, chunk: int, seed: int):
    """The non-zeros of ``m`` in a random order, ``chunk`` at a time."""
    coo = sp.coo_matrix(m)
    order = np.random.default_rng(seed).permutation(coo.nnz)
    rows, cols, vals = coo.row[order], coo.col[order], coo.data[order]

    def stream():
        for a in range(0, len(rows), chunk):
            yield rows[a : a + chunk], cols[a : a + chunk], vals[a : a + chunk]

    return stream


_SMALL = sp.random(61, 17, density=0.3, format="csr", dtype=np.float32, random_state=np.random.default_rng(3))
_SMALL.data = np.ceil(_SMALL.data * 9)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    chunk=st.integers(1, 200),
    rows_per_bucket=st.integers(1, 70),
    ranges=st.lists(st.tuples(st.integers(0, 61), st.integers(0, 61)), min_size=1, max_size=8),
)
def test_read_rows_matches_csr_for_any_ranges(seed: int, chunk: int, rows_per_bucket: int, ranges):
    with RowSpill(_shuffled_stream(_SMALL, chunk, seed), _SMALL.shape, np.float32,
                  rows_per_bucket=rows_per_bucket) as spill:
        for a, b in ranges:
            start, stop = min(a, b), max(a, b)
            got = spill.read_rows(start, stop)
            assert isinstance(got, sp.csr_matrix) and got.has_sorted_indices and got.dtype == np.float32
            assert got.shape == (stop - start, 17) and got.nnz == _SMALL[start:stop].nnz
            assert _same(got, _SMALL[start:stop])
        spill.build()
        assert spill.nnz == _SMALL.nnz


def test_duplicates_kept_and_bounds(tmp_path: Path):
    rows, cols, vals = np.array([2, 0, 2]), np.array([1, 3, 1]), np.array([5, 7, 1], dtype=np.int32)
    spill = RowSpill(lambda: [(rows, cols, vals)], (4, 5), np.int32, spill_dir=tmp_path)
    m = spill.read_rows(0, 4)
    assert m.nnz == 3 and m.toarray()[2, 1] == 6 and m.toarray()[0, 3] == 7  # source values kept, not summed
    assert spill.read_rows(3, 3).shape == (0, 5)
    with pytest.raises(IndexError, match="outside"):
        spill.read_rows(2, 5)
    bad = RowSpill(lambda: [(np.array([0, 9]), np.array([0, 0]), np.array([1, 1]))], (4, 5), np.int32,
                   spill_dir=tmp_path, name="x.mtx")
    with pytest.raises(ValueError, match=r"x.mtx: row index 9 outside 0..3; .*corrupt"):
        bad.read_rows(0, 1)
    assert choose_rows_per_bucket(10, None) == 10 and choose_rows_per_bucket(10**7, None) == 4096
    assert choose_rows_per_bucket(10**6, 10**9) == 2098  # ≈ 2M non-zeros per bucket


def test_spill_is_lazy_cleaned_up_and_rebuilt_after_failure(tmp_path: Path):
    calls = []

    def stream():
        calls.append(1)
        yield np.array([0, 1]), np.array([0, 1]), np.array([1.0, 2.0])
        if len(calls) == 1:
            raise OSError("source vanished")

    spill = RowSpill(stream, (2, 2), np.float64, spill_dir=tmp_path / "spill")
    assert not spill.built and not calls
    with pytest.raises(OSError, match="vanished"):
        spill.read_rows(0, 2)
    assert list((tmp_path / "spill").iterdir()) == []  # a failed build leaves nothing behind
    assert _same(spill.read_rows(0, 2), sp.diags([1.0, 2.0]))
    (d,) = (tmp_path / "spill").iterdir()
    assert d.name.startswith("cytodask-rowsort-") and any(d.iterdir())
    dup = copy.copy(spill)  # a copy (or an unpickled one) builds its own spill
    assert not dup.built and _same(dup.read_rows(0, 2), spill.read_rows(0, 2))
    spill.close()
    assert not d.exists() and not spill.built
    del dup
    gc.collect()
    assert list((tmp_path / "spill").iterdir()) == []  # garbage collection removes the copy's spill


def test_memory_is_bounded_by_chunk_not_matrix():
    """Building the spill and reading blocks holds chunk- and bucket-sized arrays, never the matrix."""
    m = sp.random(20_000, 500, density=0.1, format="csc", dtype=np.float32, random_state=np.random.default_rng(0))
    matrix_bytes = m.nnz * (4 + 4 + 8)  # values + column + row, as triples
    chunk = 10_000
    stream = lambda: csc_triples(m.indptr, lambda a, b: (m.indices[a:b], m.data[a:b]), chunk_nnz=chunk)  # noqa: E731
    spill = RowSpill(stream, m.shape, np.float32, rows_per_bucket=256)
    tracemalloc.start()
    try:
        spill.build()
        _, build_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        for start in range(0, 20_000, 100):
            spill.read_rows(start, start + 100)
        _, read_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    chunk_bytes, bucket_bytes = chunk * 16, 256 * 500 * 0.1 * 16  # one chunk / one bucket as triples
    assert build_peak < 6 * chunk_bytes < 0.1 * matrix_bytes, (build_peak, matrix_bytes)
    assert read_peak < 6 * bucket_bytes < 0.1 * matrix_bytes, (read_peak, matrix_bytes)
    assert _same(spill.read_rows(0, 20_000), m)
    spill.close()


@pytest.fixture(scope="module")
def csc_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, ad.AnnData]]:
    root = tmp_path_factory.mktemp("csc")
    out = {}
    for key, n in (("small", 40), ("full", 1000)):
        a = make_counts_adata(n, 120, seed=4)
        a.X = a.X.tocsc()
        a.write_h5ad(root / f"{key}.h5ad")
        out[key] = (root / f"{key}.h5ad", a)
    return out


@pytest.mark.parametrize("block_cells", [1, 333, 1000])
def test_csc_h5ad_converts_like_anndata_reads_it(tmp_path: Path, csc_files, block_cells: int):
    path, _ = csc_files["small" if block_cells == 1 else "full"]
    expected = ad.read_h5ad(path)  # the independent reader
    assert isinstance(expected.X, sp.csc_matrix)
    src = LocalH5ADSource(path, spill_dir=tmp_path / "spill", csc_chunk_nnz=997)
    assert src.shape == expected.shape and src.nnz_hint() == expected.X.nnz and src.dtype == np.float32
    rep = convert(src, tmp_path / "a.zarr", batch_size=block_cells, fsync=False)
    assert rep.state == "computed" and rep.n_blocks == -(-expected.n_obs // block_cells)
    back = ad.read_zarr(tmp_path / "a.zarr")
    assert _same(back.X, expected.X) and back.X.dtype == np.float32
    pd.testing.assert_frame_equal(back.obs, expected.obs)
    pd.testing.assert_frame_equal(back.var, expected.var)
    assert any((tmp_path / "spill").iterdir())
    again = pickle.loads(pickle.dumps(src))  # e.g. sent to a worker: rebuilds its own spill
    assert _same(again.read_rows(0, 7), expected.X[:7])
    again.close()
    src.close()
    assert not any((tmp_path / "spill").iterdir())


def test_csc_layer_and_random_blocks(tmp_path: Path, csc_files):
    _, a = csc_files["full"]
    b = a.copy()
    b.layers["counts"] = sp.csc_matrix(a.X)
    b.X = sp.csr_matrix(np.log1p(a.X.toarray()))
    b.write_h5ad(tmp_path / "layer.h5ad")
    src = LocalH5ADSource(tmp_path / "layer.h5ad", layer="counts", csc_chunk_nnz=5000)
    full = sp.csr_matrix(a.X)
    for start, stop in [(999, 1000), (0, 1), (17, 600), (500, 500), (0, 1000)]:  # any order
        assert _same(src.read_rows(start, stop), full[start:stop])
    rep = convert(src, tmp_path / "l.zarr", batch_size=300, fsync=False)
    assert rep.computed == 4 and _same(ad.read_zarr(tmp_path / "l.zarr").X, a.X)
    with pytest.raises(ValueError, match="csc_chunk_nnz=0"):
        LocalH5ADSource(tmp_path / "layer.h5ad", layer="counts", csc_chunk_nnz=0)
