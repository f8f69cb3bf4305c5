"""Issue 14, a newcomer's first hour with ingest: each test walks the user's steps.

- 14.4: counts in ``adata.raw`` (scanpy's layout) convert with ``layer="raw"`` (Python and ``--layer raw``),
  and a missing layer's message names the Python argument ``layer=``.
- 14.15: the Census source takes ``organism=`` in ``query()`` as ``cellxgene_census`` users write it, and
  ``DataSource.to_store(path)`` is the conversion verb (the module-level ``convert()`` stays).
"""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp

from cytodask.cli import main
from cytodask.ingest import LocalH5ADSource, convert
from cytodask.ingest.census import CellxgeneCensusSource
from tests.conftest import make_counts_adata
from tests.ingest.test_census import DESIGN_QUERY, census  # noqa: F401  (the local Census store fixture)


def _scanpy_layout(path: Path) -> ad.AnnData:
    """What scanpy users save: log-normalized X over fewer genes, the raw counts in .raw."""
    counts = make_counts_adata(300, 80, seed=5)
    user = counts[:, 20:].copy()
    user.raw = counts
    user.X = sp.csr_matrix(np.log1p(user.X.toarray()))
    user.write_h5ad(path)
    return counts


def test_raw_counts_convert_in_python_and_on_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    counts = _scanpy_layout(tmp_path / "user.h5ad")
    src = LocalH5ADSource(tmp_path / "user.h5ad", layer="raw")
    assert src.to_store(tmp_path / "py.zarr", batch_size=128, fsync=False).state == "computed"
    back = ad.read_zarr(tmp_path / "py.zarr")
    assert list(back.var_names) == list(counts.var_names)  # raw/var, not the 60 genes of var
    np.testing.assert_array_equal(back.X.toarray(), counts.X.toarray())
    assert main(["convert", str(tmp_path / "user.h5ad"), str(tmp_path / "cli.zarr"), "--layer", "raw", "-q"]) == 0
    np.testing.assert_array_equal(ad.read_zarr(tmp_path / "cli.zarr").X.toarray(), counts.X.toarray())
    with pytest.raises(ValueError, match=r"has no layer 'counts'; layers in the file: \[\]; the file has raw/X too "
                                         r"\(layer='raw'\); pass layer= one of them"):
        LocalH5ADSource(tmp_path / "user.h5ad", layer="counts")


def test_census_query_takes_organism_and_converts_with_to_store(census, tmp_path: Path):  # noqa: F811
    root, adata = census
    # DESIGN §3 as a cellxgene_census user writes it: organism in the query
    src = CellxgeneCensusSource(uri=root).query(organism="Homo sapiens", **DESIGN_QUERY)
    ref = CellxgeneCensusSource(uri=root, organism="Homo sapiens").query(**DESIGN_QUERY)
    np.testing.assert_array_equal(src.soma_joinids, ref.soma_joinids)
    assert src.identity() == ref.identity()
    with pytest.raises(ValueError, match=r"unknown organism 'Danio rerio'.*homo_sapiens"):
        CellxgeneCensusSource(uri=root).query(organism="Danio rerio", **DESIGN_QUERY)
    # the documented verb; the module-level convert() gives the same store and sees it up to date
    report = src.to_store(tmp_path / "blood.zarr", batch_size=64, fsync=False)
    assert report.state == "computed" and report.summary["n_obs"] == len(ref.soma_joinids)
    back = ad.read_zarr(tmp_path / "blood.zarr")
    assert (sp.csr_matrix(back.X) != sp.csr_matrix(adata.X[ref.soma_joinids])).nnz == 0
    assert convert(ref, tmp_path / "blood.zarr", batch_size=64, fsync=False).state == "skipped"



