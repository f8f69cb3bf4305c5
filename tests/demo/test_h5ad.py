"""The .h5ad writer of the synthetic atlas (cytodask.demo.h5ad)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import anndata
import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from cytodask.demo import gene_table, write_h5ad
from tests.demo._atlas import GOLDEN_SPEC, SMALL, assert_csr_identical

GOLDEN_H5AD_SHA256 = {
    None: "57a76f9452b80f55c70a96ccfab8da7c8d7c519997599c00c873069c367e9200",
    "counts": "d56460ec92f8a95277a96743283da67894625f522a5d9f7903ac6aeddb53ef96",
}


def h5ad_digest(path: Path) -> str:
    """sha256 over every group and dataset of an HDF5 file: names, attributes, dtypes and values."""
    digest = hashlib.sha256()

    def visit(name: str, obj: h5py.Group | h5py.Dataset) -> None:
        digest.update(name.encode())
        for key in sorted(obj.attrs):
            digest.update(f"{key}={np.asarray(obj.attrs[key]).tolist()!r}".encode())
        if isinstance(obj, h5py.Dataset):
            value = np.asarray(obj[()])
            digest.update(value.dtype.str.encode())
            digest.update(repr(value.tolist()).encode() if value.dtype.kind == "O" else value.tobytes())

    with h5py.File(path, "r") as f:
        visit("/", f)
        f.visititems(visit)
    return digest.hexdigest()


@pytest.mark.parametrize("layer", [None, "counts"])
def test_h5ad_bytes_are_pinned(tmp_path: Path, layer: str | None) -> None:
    """The written file's content (counts, obs, var, encodings) is pinned too, for any block size."""
    for block_cells in (100, 77):
        path = write_h5ad(GOLDEN_SPEC, tmp_path / f"{block_cells}.h5ad", batch_size=block_cells, layer=layer)
        assert h5ad_digest(path) == GOLDEN_H5AD_SHA256[layer]


@pytest.fixture(scope="module")
def h5ad_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_h5ad(SMALL, tmp_path_factory.mktemp("h5ad") / "atlas.h5ad", batch_size=1000)


@pytest.mark.parametrize("backed", [None, "r"])
def test_h5ad_round_trip(
    h5ad_path: Path, small_counts: sp.csr_matrix, small_obs: pd.DataFrame, backed: str | None
) -> None:
    adata = anndata.read_h5ad(h5ad_path, backed=backed)
    x = adata.X[:] if backed else adata.X
    assert sp.issparse(x)
    assert_csr_identical(sp.csr_matrix(x), small_counts)
    pd.testing.assert_frame_equal(adata.obs, small_obs)
    pd.testing.assert_frame_equal(adata.var, gene_table(SMALL))
    if backed:
        adata.file.close()


def test_h5ad_is_byte_stable_across_block_sizes(h5ad_path: Path, tmp_path: Path) -> None:
    again = write_h5ad(SMALL, tmp_path / "again.h5ad", batch_size=777)
    with h5py.File(h5ad_path, "r") as a, h5py.File(again, "r") as b:
        for key in ("data", "indices", "indptr"):
            np.testing.assert_array_equal(a["X"][key][:], b["X"][key][:])


def test_h5ad_layer(tmp_path: Path, small_counts: sp.csr_matrix) -> None:
    spec = SMALL
    adata = anndata.read_h5ad(write_h5ad(spec, tmp_path / "layer.h5ad", layer="counts", batch_size=1500))
    assert adata.X.dtype == np.float32 and adata.layers["counts"].dtype == np.int32
    assert_csr_identical(adata.layers["counts"], small_counts)
    assert (adata.X != small_counts.astype(np.float32)).nnz == 0


def test_failed_write_leaves_no_file(tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []

    def progress(done: int, total: int) -> None:
        seen.append((done, total))
        if len(seen) == 2:
            raise KeyboardInterrupt("simulated kill")

    target = tmp_path / "atlas.h5ad"
    with pytest.raises(KeyboardInterrupt):
        write_h5ad(SMALL, target, batch_size=1000, progress=progress)
    assert seen == [(1000, 3000), (2000, 3000)]
    assert list(tmp_path.iterdir()) == []
    # An existing file is left untouched by a failed rewrite.
    target.write_bytes(b"previous")
    seen.clear()
    with pytest.raises(KeyboardInterrupt):
        write_h5ad(SMALL, target, batch_size=1000, progress=progress)
    assert target.read_bytes() == b"previous" and list(tmp_path.iterdir()) == [target]


def test_invalid_write_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="layer"):
        write_h5ad(SMALL, tmp_path / "x.h5ad", layer="")
    assert list(tmp_path.iterdir()) == []
