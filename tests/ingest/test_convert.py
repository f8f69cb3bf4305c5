from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import zarr

from cytodask.core.runner import StageFailed
from cytodask.ingest import LocalH5ADSource, convert, open_atlas
from tests.conftest import make_counts_adata


def _same(a: sp.spmatrix, b: sp.spmatrix) -> bool:
    return a.shape == b.shape and (sp.csr_matrix(a) != sp.csr_matrix(b)).nnz == 0


@pytest.mark.parametrize("block_cells", [1, 333, 2000, 5000])
def test_round_trip_any_block_size(tmp_path: Path, counts_h5ad: Path, counts_adata: ad.AnnData, block_cells: int):
    if block_cells == 1:  # one cell per block is slow; use a small slice of the file
        small = counts_adata[:40].copy()
        src = tmp_path / "small.h5ad"
        small.write_h5ad(src)
        expected = small
    else:
        src, expected = counts_h5ad, counts_adata
    store = tmp_path / "atlas.zarr"
    report = convert(LocalH5ADSource(src), store, batch_size=block_cells)
    assert report.state == "computed" and report.n_blocks == -(-expected.n_obs // block_cells)
    back = ad.read_zarr(store)  # AnnData opens the store with obs/var intact
    assert _same(back.X, expected.X)
    pd.testing.assert_frame_equal(back.obs, expected.obs)
    pd.testing.assert_frame_equal(back.var, expected.var)
    atlas = open_atlas(store)
    lazy = atlas.X
    assert lazy.chunks[0] == tuple(min(block_cells, expected.n_obs - s) for s in range(0, expected.n_obs, block_cells))
    assert isinstance(lazy.blocks[0].compute(), sp.csr_matrix)
    assert _same(lazy.compute(), expected.X)


def test_reconvert_is_noop_and_change_rewrites(tmp_path: Path, counts_adata: ad.AnnData):
    src = tmp_path / "a.h5ad"
    counts_adata.write_h5ad(src)
    store = tmp_path / "atlas.zarr"
    assert convert(LocalH5ADSource(src), store, batch_size=500).computed == 4
    again = convert(LocalH5ADSource(src), store, batch_size=500)
    assert again.state == "skipped" and again.computed == 0
    changed = counts_adata[:1500].copy()
    changed.write_h5ad(src)
    rep = convert(LocalH5ADSource(src), store, batch_size=500)
    assert rep.computed == 3
    assert open_atlas(store).n_obs == 1500


def test_killed_conversion_resumes_identically(tmp_path: Path, counts_h5ad: Path, counts_adata: ad.AnnData,
                                               monkeypatch: pytest.MonkeyPatch):
    store = tmp_path / "atlas.zarr"
    real = LocalH5ADSource.read_rows
    calls = []

    def failing(self, start, stop):
        calls.append(start)
        if start == 1200:
            raise OSError("disk vanished")
        return real(self, start, stop)

    monkeypatch.setattr(LocalH5ADSource, "read_rows", failing)
    with pytest.raises(StageFailed, match="block 3"):
        convert(LocalH5ADSource(counts_h5ad), store, batch_size=400)
    with pytest.raises(ValueError, match="incomplete"):
        open_atlas(store)  # a half-written store is never taken as complete
    monkeypatch.setattr(LocalH5ADSource, "read_rows", real)
    rep = convert(LocalH5ADSource(counts_h5ad), store, batch_size=400)
    assert (rep.computed, rep.skipped) == (2, 3)
    assert _same(ad.read_zarr(store).X, counts_adata.X)


def test_dense_x_and_layers(tmp_path: Path, counts_adata: ad.AnnData):
    a = counts_adata.copy()
    a.layers["counts"] = a.X.copy()
    a.X = np.log1p(a.X.toarray())
    src = tmp_path / "dense.h5ad"
    a.write_h5ad(src)
    with pytest.raises(ValueError, match=r"non-integer values.*--layer.*\['counts'\]"):
        convert(LocalH5ADSource(src), tmp_path / "bad.zarr", batch_size=500, counts="strict")
    assert not (tmp_path / ".bad.zarr.cytodask" / "blocks" / "00000000.json").exists()
    rep = convert(LocalH5ADSource(src, layer="counts"), tmp_path / "ok.zarr", batch_size=500)
    assert rep.computed == 4
    assert _same(ad.read_zarr(tmp_path / "ok.zarr").X, counts_adata.X)
    rep = convert(LocalH5ADSource(src), tmp_path / "dense.zarr", batch_size=700, counts="off")
    np.testing.assert_allclose(ad.read_zarr(tmp_path / "dense.zarr").X.toarray(), a.X, rtol=1e-6)


def test_bad_inputs(tmp_path: Path, counts_adata: ad.AnnData):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        LocalH5ADSource(tmp_path / "nope.h5ad")
    txt = tmp_path / "x.h5ad"
    txt.write_text("not hdf5")
    with pytest.raises(ValueError, match="not an HDF5/.h5ad file"):
        LocalH5ADSource(txt)
    with h5py.File(tmp_path / "plain.h5", "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(ValueError, match="not AnnData"):
        LocalH5ADSource(tmp_path / "plain.h5")
    good = tmp_path / "g.h5ad"
    counts_adata.write_h5ad(good)
    with pytest.raises(ValueError, match=r"no layer 'counts'; layers in the file: \[\]"):
        LocalH5ADSource(good, layer="counts")
    csc = counts_adata.copy()
    csc.X = sp.csc_matrix(csc.X)
    csc.write_h5ad(tmp_path / "csc.h5ad")
    # CSC is read through the row spill (tests/ingest/test_csc.py), not refused
    assert _same(LocalH5ADSource(tmp_path / "csc.h5ad").read_rows(0, counts_adata.n_obs), counts_adata.X)
    neg = counts_adata.copy()
    neg.X = neg.X.copy()
    neg.X.data[5] = -1
    neg.write_h5ad(tmp_path / "neg.h5ad")
    with pytest.raises(ValueError, match="negative values"):
        convert(LocalH5ADSource(tmp_path / "neg.h5ad"), tmp_path / "neg.zarr", batch_size=1000)


# VmHWM (peak RSS of this address space) rather than ru_maxrss, which Linux carries over
# from the forking parent across exec.
_RSS_SCRIPT = """
import sys, warnings
warnings.filterwarnings("ignore")
from cytodask.ingest import LocalH5ADSource, convert
convert(LocalH5ADSource(sys.argv[1]), sys.argv[2], batch_size=2000, fsync=False)
print(next(l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM")))
"""


def test_conversion_memory_is_flat(tmp_path: Path):
    """Peak RSS converting 20k and 80k cells (4×): growth must stay far below the data growth."""
    peaks, sizes = [], []
    for n in (20_000, 80_000):
        a = make_counts_adata(n, 2000, seed=1, density=0.1)
        src = tmp_path / f"a{n}.h5ad"
        a.write_h5ad(src)
        sizes.append(a.X.data.nbytes + a.X.indices.nbytes)
        out = subprocess.run([sys.executable, "-c", _RSS_SCRIPT, str(src), str(tmp_path / f"s{n}.zarr")],
                             capture_output=True, text=True, check=True)
        peaks.append(int(out.stdout.strip().splitlines()[-1]) * 1024)
        del a
    growth, data_growth = peaks[1] - peaks[0], sizes[1] - sizes[0]
    print(json.dumps({"peak_rss_mb": [p / 2**20 for p in peaks], "matrix_mb": [s / 2**20 for s in sizes]}))
    # The matrix grows by ~92 MiB: a whole-matrix load would grow the peak by at least that much (ratio >= 1).
    # What may grow is per-cell metadata (obs frame and names, indptr, the duplicate-name check): measured
    # 17-19 MiB for these 60k more cells (~300 B/cell), i.e. 0.18-0.20 of the matrix growth; 0.4 keeps a 2x
    # margin over that and a 2.5x margin under the failure it guards against.
    assert growth < 0.4 * data_growth, (peaks, sizes)


def test_refuses_a_directory_it_did_not_create(tmp_path: Path, counts_h5ad: Path):
    """Issue 22.1: `convert INPUT DIR` on a user's directory must not delete their files."""
    user = tmp_path / "mine"
    user.mkdir()
    (user / "notes.txt").write_text("keep me")
    (user / "sub").mkdir()
    with pytest.raises(ValueError, match=r"mine is an existing directory that cytodask did not create.*notes\.txt"
                                         r".*nothing was changed. Pass a new or empty directory as STORE"):
        convert(LocalH5ADSource(counts_h5ad), user, batch_size=1000)
    assert sorted(p.name for p in user.iterdir()) == ["notes.txt", "sub"]
    assert (user / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]  # no bookkeeping, no trash left beside it
    empty = tmp_path / "empty"
    empty.mkdir()
    assert convert(LocalH5ADSource(counts_h5ad), empty, batch_size=1000).computed == 2  # an empty one is fine


def test_resumes_a_store_whose_creation_was_interrupted(tmp_path: Path, counts_h5ad: Path, counts_adata):
    store = tmp_path / "atlas.zarr"
    convert(LocalH5ADSource(counts_h5ad), store, batch_size=1000)
    # killed inside create_store: zarr.json without the cytodask layout yet, bookkeeping present
    zarr.open_group(str(store), mode="w", zarr_format=3)
    meta = tmp_path / ".atlas.zarr.cytodask"
    m = json.loads((meta / "manifest.json").read_text())
    (meta / "manifest.json").write_text(json.dumps({**m, "state": "running", "prepared": False}))
    for f in (meta / "blocks").glob("*.json"):
        f.unlink()
    assert convert(LocalH5ADSource(counts_h5ad), store, batch_size=1000).computed == 2
    assert _same(ad.read_zarr(store).X, counts_adata.X)


@pytest.mark.parametrize("where", ["same", "inside", "contains"])
def test_refuses_output_overlapping_the_input(tmp_path: Path, counts_adata, where: str):
    """Issue 22.2: `convert atlas.h5ad atlas.h5ad` moved the input to a hidden trash and failed."""
    src = tmp_path / "d" / "atlas.h5ad"
    src.parent.mkdir()
    counts_adata.write_h5ad(src)
    before = src.read_bytes()
    store = {"same": src, "inside": src / "x.zarr", "contains": src.parent}[where]
    want = {"same": "is the input itself", "inside": "lies inside the input", "contains": "contains the input"}
    with pytest.raises(ValueError, match=want[where] + r".*Choose an output path outside the input, e\.g\. atlas\.zarr"):
        convert(LocalH5ADSource(src), store, batch_size=1000)
    assert src.read_bytes() == before
    assert sorted(p.name for p in src.parent.iterdir()) == ["atlas.h5ad"]


def test_refuses_a_file_or_a_path_below_one(tmp_path: Path, counts_h5ad: Path):
    f = tmp_path / "out.zarr"
    f.write_text("x")
    with pytest.raises(ValueError, match="out.zarr is a file, not a directory; pass a directory path as STORE"):
        convert(LocalH5ADSource(counts_h5ad), f, batch_size=1000)
    with pytest.raises(ValueError, match=r"lies below .*out\.zarr, which is a regular file"):
        convert(LocalH5ADSource(counts_h5ad), f / "sub" / "a.zarr", batch_size=1000)
    assert f.read_text() == "x"


def test_damaged_store_chunk_is_rewritten(tmp_path: Path, counts_h5ad: Path, counts_adata, capsys):
    """Issue 22.4: a truncated or deleted chunk of a converted store is found and its block rewritten."""
    from cytodask.cli import main

    store = tmp_path / "atlas.zarr"
    convert(LocalH5ADSource(counts_h5ad), store, batch_size=500)
    assert main(["verify", str(store)]) == 0
    indptr_chunk = store / "X" / "indptr" / "c" / "2"
    indptr_chunk.write_bytes(indptr_chunk.read_bytes()[:-2])
    assert main(["verify", str(store)]) == 1
    out = capsys.readouterr().out
    assert "convert: block 1:" in out and "X/indptr/c/2 has" in out  # block 1 wrote indptr[1000]
    rep = convert(LocalH5ADSource(counts_h5ad), store, batch_size=500)
    assert rep.computed == 2  # blocks 1 and 2 both wrote that chunk
    assert _same(ad.read_zarr(store).X, counts_adata.X) and main(["verify", str(store)]) == 0
    data_chunks = sorted((store / "X" / "data" / "c").iterdir(), key=lambda p: int(p.name))
    data_chunks[0].unlink()
    rep = convert(LocalH5ADSource(counts_h5ad), store, batch_size=500)
    assert rep.computed >= 1 and rep.skipped >= 1
    assert _same(ad.read_zarr(store).X, counts_adata.X) and main(["verify", str(store)]) == 0


def test_duplicate_cell_names_warn(tmp_path: Path, counts_adata):
    """Issue 22.9: duplicate cell names are kept, with a warning that says how to make them unique."""
    a = counts_adata[:600].copy()
    a.obs_names = [f"c{i % 500}" for i in range(600)]
    src = tmp_path / "dup.h5ad"
    a.write_h5ad(src)
    with pytest.warns(UserWarning, match=r"100 cell names occur more than once .*obs_names_make_unique\(\)"):
        convert(LocalH5ADSource(src), tmp_path / "dup.zarr", batch_size=300)
    assert open_atlas(tmp_path / "dup.zarr").info["duplicate_obs_names"] == 100


def test_failed_on_bad_data_says_fix_the_input(tmp_path: Path, counts_adata):
    """Issue 22.12: a store whose conversion stopped on bad data does not say 'run convert again to resume'."""
    bad = counts_adata.copy()
    bad.X = bad.X.copy()
    bad.X.data[-1] = np.nan  # in the last block: earlier blocks are written first
    bad.write_h5ad(tmp_path / "nan.h5ad")
    with pytest.raises(ValueError, match="NaN"):
        convert(LocalH5ADSource(tmp_path / "nan.h5ad"), tmp_path / "nan.zarr", batch_size=500)
    with pytest.raises(ValueError, match="stopped on bad input data .*NaN.*fix the input"):
        open_atlas(tmp_path / "nan.zarr")


def test_full_hash_option(tmp_path: Path, counts_h5ad: Path, capsys):
    from cytodask.cli import main

    assert main(["convert", str(counts_h5ad), str(tmp_path / "s.zarr"), "--full-hash", "-q"]) == 0
    assert main(["convert", str(counts_h5ad), str(tmp_path / "s.zarr"), "--full-hash", "-q"]) == 0
    assert "already up to date" in capsys.readouterr().out


def test_bad_values_name_the_cells_and_the_matrix(tmp_path: Path, counts_adata):
    """Issue 22.10: NaN/inf/negative counts say which cells, which matrix was read and how to fix it."""
    a = counts_adata.copy()
    a.layers["raw"] = a.X.copy()
    a.X = a.X.copy()
    row = a.X.indptr[1203]  # first stored value of cell 1203
    a.X.data[row] = -2
    a.X.data[a.X.indptr[1500]] = np.inf
    a.write_h5ad(tmp_path / "neg.h5ad")
    with pytest.raises(ValueError, match=r"cells 1000\.\.1500: X holds negative values \(min -2\) in 1 cell\(s\) "
                                         r"\(rows \[1203\]\).*pass layer=NAME \(command line: --layer NAME\) with the raw counts "
                                         r"\(layers in this "
                                         r"file: \['raw'\]\)"):
        convert(LocalH5ADSource(tmp_path / "neg.h5ad"), tmp_path / "neg.zarr", batch_size=500)
    b = counts_adata.copy()
    b.layers["counts"] = b.X.copy()
    b.layers["counts"].data[b.layers["counts"].indptr[7]] = np.nan
    b.write_h5ad(tmp_path / "nan.h5ad")
    with pytest.raises(ValueError, match=r"layer 'counts' holds NaN or infinite values in 1 cell\(s\) \(rows \[7\]\)"):
        convert(LocalH5ADSource(tmp_path / "nan.h5ad", layer="counts"), tmp_path / "nan.zarr", batch_size=500)
