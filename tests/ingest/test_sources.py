"""open_source dispatch, count checks, duplicate var names, and kill -9 of `cytodask convert`."""

from __future__ import annotations

import json
import os
import signal
import time
import warnings
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pytest
import scipy.sparse as sp
import zarr

from cytodask.ingest import LocalH5ADSource, convert, open_atlas, open_source
from cytodask.ingest.base import check_counts
from cytodask.ingest.sources import is_local_path
from tests.conftest import make_counts_adata
from tests.e2e import cytodask, popen


def _info(store: Path) -> dict:
    return dict(zarr.open_group(str(store), mode="r").attrs["cytodask"])


def test_open_source_dispatch_and_unsupported(tmp_path: Path, counts_h5ad: Path):
    src = open_source(counts_h5ad)
    assert isinstance(src, LocalH5ADSource) and src.shape == (2000, 300)
    odd = tmp_path / "atlas.data"  # HDF5 content under an unknown suffix is recognised
    odd.write_bytes(counts_h5ad.read_bytes())
    assert isinstance(open_source(odd), LocalH5ADSource)
    assert isinstance(open_source(f"file://{counts_h5ad}"), LocalH5ADSource)
    with pytest.raises(FileNotFoundError, match="does not exist.*supported: .h5ad"):
        open_source(tmp_path / "missing.h5ad")
    csv = tmp_path / "counts.csv"
    csv.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match=r"unsupported format.*supported: .h5ad file; 10x.*\.loom.*census:"):
        open_source(csv)
    empty = tmp_path / "empty.bin"
    empty.touch()
    with pytest.raises(ValueError, match="is empty"):
        open_source(empty)
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["weights"] = np.zeros(3)
    with pytest.raises(ValueError, match=r"none of the supported layouts \(top-level keys: \['weights'\]\)"):
        open_source(tmp_path / "other.h5")
    d = tmp_path / "dir"
    d.mkdir()
    (d / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match=r"directory without matrix.mtx.*notes.txt"):
        open_source(d)
    with pytest.raises(ValueError, match="unsupported URL scheme 'ftp'"):
        open_source("ftp://host/a.h5ad")
    with pytest.raises(ValueError, match="only .h5ad files are read from URLs"):
        open_source("https://host/a.loom")


def test_is_local_path():
    assert is_local_path("data/a.h5ad") and is_local_path("/abs/a.h5ad")
    assert not is_local_path("census:stable?tissue=blood")
    assert not is_local_path("https://h/a.h5ad")


def test_truncated_h5ad(tmp_path: Path, counts_h5ad: Path):
    cut = tmp_path / "cut.h5ad"
    data = counts_h5ad.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        open_source(cut)


def test_count_modes(tmp_path: Path, counts_adata: ad.AnnData):
    a = counts_adata.copy()
    a.X = a.X.astype(np.float32)
    a.X.data[7:] = np.log1p(a.X.data[7:])  # normalized from block 0 on
    src = tmp_path / "norm.h5ad"
    a.write_h5ad(src)
    with pytest.warns(UserWarning, match=r"non-integer values.*converting anyway.*--strict") as rec:
        rep = convert(LocalH5ADSource(src), tmp_path / "warn.zarr", batch_size=500)
    assert rep.computed == 4
    assert sum("non-integer" in str(w.message) for w in rec) == 1  # once per conversion, not per block
    assert _info(tmp_path / "warn.zarr")["non_integer_values"] is True
    with pytest.raises(Exception, match="non-integer values"):
        convert(LocalH5ADSource(src), tmp_path / "strict.zarr", batch_size=500, counts="strict")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        convert(LocalH5ADSource(src), tmp_path / "off.zarr", batch_size=500, counts="off")
    assert _info(tmp_path / "off.zarr")["non_integer_values"] is False
    convert(LocalH5ADSource(src.parent / "norm.h5ad"), tmp_path / "ok.zarr", batch_size=500, counts="off")
    with pytest.raises(ValueError, match="counts='maybe'"):
        convert(LocalH5ADSource(src), tmp_path / "x.zarr", counts="maybe")
    # NaN is refused in every checking mode
    bad = sp.csr_matrix(np.array([[1.0, np.nan]]))
    with pytest.raises(ValueError, match="NaN or infinite"):
        check_counts(bad, where="w", mode="warn")
    assert check_counts(sp.csr_matrix(np.array([[1.5]])), where="w", mode="warn").startswith("w: the matrix holds")


def test_counts_flag_on_integer_data(tmp_path: Path, counts_h5ad: Path):
    convert(LocalH5ADSource(counts_h5ad), tmp_path / "s.zarr", batch_size=700)
    assert _info(tmp_path / "s.zarr")["non_integer_values"] is False
    assert _info(tmp_path / "s.zarr")["duplicate_var_names"] == 0


def test_duplicate_var_names_kept_and_reported(tmp_path: Path):
    a = make_counts_adata(300, 50)
    names = list(a.var_names)
    names[3] = names[2]
    names[10] = names[2]
    a.var_names = names
    src = tmp_path / "dup.h5ad"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a.write_h5ad(src)
    with pytest.warns(UserWarning, match=r"1 var names occur more than once \(e.g. \['G2'\]\).*var_names_make_unique"):
        convert(LocalH5ADSource(src), tmp_path / "d.zarr", batch_size=100)
    assert _info(tmp_path / "d.zarr")["duplicate_var_names"] == 1
    back = open_atlas(tmp_path / "d.zarr")
    assert list(back.var.index) == names
    assert (back.X.compute() != a.X).nnz == 0


def test_empty_matrix_refused_and_nothing_recorded(tmp_path: Path):
    a = make_counts_adata(10, 20)[:0].copy()
    src = tmp_path / "zero.h5ad"
    a.write_h5ad(src)
    with pytest.raises(Exception, match=r"matrix is empty \(0 cells × 20 genes\)"):
        convert(LocalH5ADSource(src), tmp_path / "z.zarr")
    with pytest.raises((ValueError, FileNotFoundError)):
        open_atlas(tmp_path / "z.zarr")


def test_cli_convert_strict_and_help(tmp_path: Path, counts_adata: ad.AnnData):
    a = counts_adata.copy()
    a.X = a.X.astype(np.float32) * 0.5
    src = tmp_path / "half.h5ad"
    a.write_h5ad(src)
    res = cytodask("convert", str(src), str(tmp_path / "s.zarr"), "--strict", "-q")
    assert res.returncode != 0 and "non-integer values" in res.stderr
    res = cytodask("convert", str(src), str(tmp_path / "w.zarr"), "-q")
    assert res.returncode == 0 and "non-integer values" in res.stderr, res.stderr
    res = cytodask("convert", "--help")
    assert "census:" in res.stdout and "loom" in res.stdout.lower()


def _store_bytes(store: Path) -> dict[str, bytes]:
    g = zarr.open_group(str(store), mode="r")
    out = {k: np.ascontiguousarray(v[...]).tobytes() for k, v in g["X"].arrays()}
    out["attrs"] = json.dumps(dict(g.attrs), sort_keys=True).encode()
    return out


def test_kill9_cli_convert_resumes_identically(tmp_path: Path):
    """`cytodask convert` killed with SIGKILL mid-way, run again: same store, only missing blocks written."""
    a = make_counts_adata(3000, 200, seed=3)
    src = tmp_path / "a.h5ad"
    a.write_h5ad(src)
    ref = tmp_path / "ref.zarr"
    assert cytodask("convert", str(src), str(ref), "--batch-size", "100", "-q").returncode == 0
    store = tmp_path / "s.zarr"
    blocks = tmp_path / ".s.zarr.cytodask" / "blocks"
    proc = popen("convert", str(src), str(store), "--batch-size", "100", "-q",
                 env={"CYTODASK_FAULT_RECORD_DELAY": "0.1"})
    deadline = time.monotonic() + 60
    while not (blocks.is_dir() and len(list(blocks.glob("*.json"))) >= 5):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(list(blocks.glob("*.json")))
    assert 5 <= done < 30
    with pytest.raises(ValueError, match="incomplete"):
        open_atlas(store)
    res = cytodask("convert", str(src), str(store), "--batch-size", "100")
    assert res.returncode == 0, res.stderr
    assert f"{30 - done} blocks written" in res.stdout
    assert _store_bytes(store) == _store_bytes(ref)
    assert "already up to date" in cytodask("convert", str(src), str(store), "--batch-size", "100", "-q").stdout


def test_open_source_and_cli_every_local_format(tmp_path: Path):
    """A 10x directory, a 10x .h5 (also under another name), a .loom and a CSC .h5ad: same store contents."""
    import loompy

    from cytodask.ingest import LoomSource, TenXSource
    from tests.ingest.test_tenx import write_h5, write_mtx_dir

    a = make_counts_adata(120, 40, seed=9)
    a.X = a.X.astype(np.int32)
    barcodes = [f"BC{i}" for i in range(a.n_obs)]
    inputs = {
        "10x-dir": write_mtx_dir(tmp_path / "mtx", a.X, barcodes),
        "10x-h5": write_h5(tmp_path / "filtered_feature_bc_matrix.h5", a.X, barcodes),
        "10x-odd": write_h5(tmp_path / "cellranger.out", a.X, barcodes),
    }
    loom = tmp_path / "a.loom"
    loompy.create(str(loom), a.X.T.toarray(), {"Gene": np.array(a.var_names)}, {"CellID": np.array(barcodes)})
    inputs["loom"] = loom
    csc = a.copy()
    csc.X = sp.csc_matrix(csc.X)
    csc.write_h5ad(tmp_path / "csc.h5ad")
    inputs["csc"] = tmp_path / "csc.h5ad"
    kinds = {"10x-dir": TenXSource, "10x-h5": TenXSource, "10x-odd": TenXSource, "loom": LoomSource,
             "csc": LocalH5ADSource}
    for name, path in inputs.items():
        assert isinstance(open_source(path), kinds[name]), name
        store = tmp_path / f"{name}.zarr"
        res = cytodask("convert", str(path), str(store), "--batch-size", "50", "-q")
        assert res.returncode == 0, (name, res.stderr)
        genes = 35 if name.startswith("10x") else 40  # 10x: Gene Expression features only (5 antibody capture)
        assert f"120 cells × {genes} genes" in res.stdout, name
        assert (open_atlas(store).X.compute() != a.X[:, :genes]).nnz == 0, name
    with pytest.raises(ValueError, match="10x matrices have no layers"):
        open_source(inputs["10x-dir"], layer="counts")
