"""10x Cell Ranger matrices (MatrixMarket directories and .h5) against scanpy's and scipy's readers."""

from __future__ import annotations

import gzip
import io
import warnings
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest
import scanpy as sc
import scipy.io
import scipy.sparse as sp

from cytodask.ingest import convert
from cytodask.ingest.tenx import TenXSource
from tests.conftest import make_counts_adata

N_GEX = 55  # the last 5 of 60 features are antibody capture


def _same(a: sp.spmatrix, b: sp.spmatrix) -> bool:
    return a.shape == b.shape and (sp.csr_matrix(a) != sp.csr_matrix(b)).nnz == 0


def _features(n: int) -> pd.DataFrame:
    return pd.DataFrame({
        "id": [f"ENSG{i:011d}" for i in range(n)],
        "name": [f"G{i % 50}" for i in range(n)],  # symbols repeat, ids do not
        "type": ["Gene Expression"] * (n - 5) + ["Antibody Capture"] * 5,
    })


def _write(path: Path, text: bytes, gz: bool) -> None:
    path.write_bytes(gzip.compress(text) if gz else text)


def write_mtx_dir(folder: Path, x: sp.spmatrix, barcodes, *, v2: bool = False, shuffle: bool = False,
                  field: str = "integer", prefix: str = "") -> Path:
    """A Cell Ranger matrix directory for cells × genes ``x`` (v3: gzipped, 3 feature columns)."""
    folder.mkdir(parents=True, exist_ok=True)
    coo = sp.coo_matrix(x.T)  # genes × cells, sorted by cell like Cell Ranger
    if shuffle:
        order = np.random.default_rng(7).permutation(coo.nnz)
        coo = sp.coo_matrix((coo.data[order], (coo.row[order], coo.col[order])), shape=coo.shape)
    buf = io.BytesIO()
    scipy.io.mmwrite(buf, coo, field=field)
    gz, feats = not v2, _features(x.shape[1])
    _write(folder / f"{prefix}matrix.mtx{'.gz' if gz else ''}", buf.getvalue(), gz)
    cols = ["id", "name"] if v2 else ["id", "name", "type"]
    tsv = feats[cols].to_csv(sep="\t", header=False, index=False).encode()
    _write(folder / f"{prefix}{'genes' if v2 else 'features'}.tsv{'.gz' if gz else ''}", tsv, gz)
    _write(folder / f"{prefix}barcodes.tsv{'.gz' if gz else ''}", ("\n".join(barcodes) + "\n").encode(), gz)
    return folder


def write_h5(path: Path, x: sp.spmatrix, barcodes) -> Path:
    """A Cell Ranger v3 ``filtered_feature_bc_matrix.h5`` (CSC genes × cells = CSR cells × genes)."""
    csr, feats = sp.csr_matrix(x, dtype=np.int32), _features(x.shape[1])
    with h5py.File(path, "w") as f:
        g = f.create_group("matrix")
        g["data"], g["indices"], g["indptr"] = csr.data, csr.indices.astype(np.int64), csr.indptr.astype(np.int64)
        g["shape"] = np.array([x.shape[1], x.shape[0]], dtype=np.int32)
        g["barcodes"] = np.array(barcodes, dtype="S")
        fg = g.create_group("features")
        fg["id"], fg["name"] = feats["id"].to_numpy(dtype="S"), feats["name"].to_numpy(dtype="S")
        fg["feature_type"] = feats["type"].to_numpy(dtype="S")
        fg["genome"] = np.full(x.shape[1], b"GRCh38")
        fg["_all_tag_keys"] = np.array([b"genome"])
    return path


@pytest.fixture(scope="module")
def data() -> dict[str, ad.AnnData]:
    return {"small": make_counts_adata(40, 60, seed=5), "full": make_counts_adata(1000, 60, seed=5)}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, data) -> dict[tuple[str, str], Path]:
    root = tmp_path_factory.mktemp("tenx")
    out = {}
    for size, a in data.items():
        bc = list(a.obs_names)
        out["mtx", size] = write_mtx_dir(root / f"mtx_{size}", a.X, bc)
        out["shuffled", size] = write_mtx_dir(root / f"shuf_{size}", a.X, bc, shuffle=True)
        out["h5", size] = write_h5(root / f"{size}.h5", a.X, bc)
    return out


def _reference(kind: str, path: Path) -> ad.AnnData:
    """scanpy's reader, var indexed by gene id as TenXSource does."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind == "h5":
            ref = sc.read_10x_h5(path, gex_only=True)
            ref.var = ref.var.set_index("gene_ids").rename_axis(None)
            ref.var.insert(0, "gene_symbols", sc.read_10x_h5(path).var_names[:N_GEX].to_numpy())
        else:
            ref = sc.read_10x_mtx(path, var_names="gene_ids", gex_only=True)
    return ref


@pytest.mark.parametrize("kind", ["mtx", "shuffled", "h5"])
@pytest.mark.parametrize("block_cells", [1, 333, 1000])
def test_converts_like_scanpy_reads_it(tmp_path: Path, files, data, kind: str, block_cells: int):
    size = "small" if block_cells == 1 else "full"
    path, a = files[kind, size], data[size]
    src = TenXSource(path, chunk_lines=500, spill_dir=tmp_path / "spill")
    assert src.shape == (a.n_obs, N_GEX) and src.dtype == np.int32
    rep = convert(src, tmp_path / "a.zarr", batch_size=block_cells, fsync=False)
    assert rep.state == "computed" and rep.n_blocks == -(-a.n_obs // block_cells)
    back, ref = ad.read_zarr(tmp_path / "a.zarr"), _reference(kind, path)
    assert back.X.dtype == np.int32 and _same(back.X, ref.X) and _same(back.X, a.X[:, :N_GEX])
    pd.testing.assert_frame_equal(back.obs, ref.obs)
    pd.testing.assert_frame_equal(back.var, ref.var)
    assert list(back.var.columns) == ["gene_symbols", "feature_types"] + (["genome"] if kind == "h5" else [])
    if kind != "h5":  # the MatrixMarket pass spilled to spill_dir; close() removes it
        assert any((tmp_path / "spill").iterdir())
        src.close()
        assert not any((tmp_path / "spill").iterdir())


def test_unsorted_mtx_against_mmread_and_random_blocks(files, data):
    path, a = files["shuffled", "full"], data["full"]
    full = sp.csr_matrix(scipy.io.mmread(path / "matrix.mtx.gz").T)  # the independent reader, whole file
    src = TenXSource(path, feature_type=None, chunk_lines=333)
    assert src.shape == (1000, 60) and src.nnz_hint() == full.nnz
    for start, stop in [(990, 1000), (0, 1), (250, 700), (3, 3)]:
        assert _same(src.read_rows(start, stop), full[start:stop])
    assert list(src.var()["feature_types"].unique()) == ["Gene Expression", "Antibody Capture"]
    assert _same(sp.csr_matrix(a.X), full)


def test_feature_types_and_h5_layouts(tmp_path: Path, files, data):
    a = data["full"]
    all_h5 = TenXSource(files["h5", "full"], feature_type=None)
    assert all_h5.shape == (1000, 60) and _same(all_h5.read_rows(0, 1000), a.X)
    assert all_h5.var()["genome"].eq("GRCh38").all()
    adt = TenXSource(files["h5", "full"], feature_type="Antibody Capture")
    assert adt.var().index[0] == "ENSG00000000055" and _same(adt.read_rows(5, 500), a.X[5:500, N_GEX:])
    with pytest.raises(ValueError, match=r"no features of type 'Peaks'; types in the file: \['Antibody Capture', "
                                         r"'Gene Expression'\]\. Pass feature_type=None"):
        TenXSource(files["mtx", "full"], feature_type="Peaks")
    v2 = tmp_path / "v2.h5"  # Cell Ranger v2: one group per genome, genes/gene_names, no feature types
    with h5py.File(files["h5", "full"]) as f, h5py.File(v2, "w") as g:
        grp = g.create_group("hg19")
        for k in ("data", "indices", "indptr", "shape", "barcodes"):
            f.copy(f["matrix"][k], grp, k)
        grp["genes"], grp["gene_names"] = f["matrix/features/id"][:], f["matrix/features/name"][:]
    src = TenXSource(v2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scanpy: duplicate symbols as var names
        ref = sc.read_10x_h5(v2)
    assert src.shape == (1000, 60) and _same(src.read_rows(0, 1000), ref.X)
    assert list(src.var().columns) == ["gene_symbols", "genome"] and src.var()["genome"].eq("hg19").all()
    assert list(src.var().index) == list(ref.var["gene_ids"])


def test_v2_directory_prefixed_file_and_real_field(tmp_path: Path, data):
    a = data["small"]
    bc = list(a.obs_names)
    v2 = write_mtx_dir(tmp_path / "v2", a.X, bc, v2=True)
    src = TenXSource(v2)
    assert src.shape == (40, 60) and "feature_types" not in src.var()  # v2 has no types: everything kept
    ref = sc.read_10x_mtx(v2, var_names="gene_ids")
    assert _same(src.read_rows(0, 40), ref.X) and list(src.var().index) == list(ref.var_names)
    pre = write_mtx_dir(tmp_path / "geo", a.X, bc, prefix="GSM1_")
    src = TenXSource(pre / "GSM1_matrix.mtx.gz")
    assert set(src.fingerprint_paths()) == {"matrix", "features", "barcodes"}
    assert _same(src.read_rows(0, 40), a.X[:, :N_GEX])
    real = TenXSource(write_mtx_dir(tmp_path / "real", a.X, bc, field="real"))  # integral 'real' → int32
    assert real.dtype == np.int32 and _same(real.read_rows(0, 40), a.X[:, :N_GEX])
    x = a.X.copy()
    x.data = x.data / 4
    frac = TenXSource(write_mtx_dir(tmp_path / "frac", x, bc, field="real"))
    assert frac.dtype == np.float32
    np.testing.assert_array_equal(frac.read_rows(0, 40).toarray(), x[:, :N_GEX].toarray().astype(np.float32))
    pattern = TenXSource(write_mtx_dir(tmp_path / "pat", (a.X > 0).astype(np.int32), bc, field="pattern"))
    assert _same(pattern.read_rows(0, 40), (a.X[:, :N_GEX] > 0).astype(np.int32))


def test_errors_name_the_file_and_the_fix(tmp_path: Path, files, data):
    a = data["small"]
    bc = list(a.obs_names)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        TenXSource(tmp_path / "nope")
    d = write_mtx_dir(tmp_path / "missing", a.X, bc)
    (d / "features.tsv.gz").unlink()
    with pytest.raises(ValueError, match=r"missing features.tsv.gz or features.tsv or genes.tsv.gz or genes.tsv "
                                         r"\(found: \['barcodes.tsv.gz', 'matrix.mtx.gz'\]\)"):
        TenXSource(d)
    d = write_mtx_dir(tmp_path / "mismatch", a.X, bc[:-1])
    with pytest.raises(ValueError, match=r"matrix.mtx.gz is 60 features × 40 cells, but features.tsv.gz lists 60 "
                                         r"features and barcodes.tsv.gz 39 barcodes .*do not belong together"):
        TenXSource(d)
    d = write_mtx_dir(tmp_path / "trunc", a.X, bc)
    raw = (d / "matrix.mtx.gz").read_bytes()
    (d / "matrix.mtx.gz").write_bytes(raw[: len(raw) * 2 // 3])
    src = TenXSource(d)  # the header is intact; the damage shows on the streaming pass
    with pytest.raises(ValueError, match=r"matrix.mtx.gz looks truncated or corrupt"):
        src.read_rows(0, 10)
    d = write_mtx_dir(tmp_path / "short", a.X, bc, v2=True)
    lines = (d / "matrix.mtx").read_text().splitlines(keepends=True)
    (d / "matrix.mtx").write_text("".join(lines[:-3]))
    with pytest.raises(ValueError, match=r"matrix.mtx: the header announces \d+ entries but the file holds \d+"):
        TenXSource(d).read_rows(0, 40)
    h5 = tmp_path / "trunc.h5"
    h5.write_bytes(files["h5", "small"].read_bytes()[:3000])
    with pytest.raises(ValueError, match=r"trunc.h5 looks truncated or corrupt"):
        TenXSource(h5)
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not hdf5 at all")
    with pytest.raises(ValueError, match="neither a 10x matrix directory nor an HDF5 file"):
        TenXSource(junk)
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(ValueError, match="not a Cell Ranger matrix"):
        TenXSource(tmp_path / "other.h5")
