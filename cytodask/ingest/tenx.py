"""10x Genomics Cell Ranger matrices: a matrix directory (MatrixMarket) or the ``.h5`` file.

Both hold genes × cells. The HDF5 file (Cell Ranger v3 ``matrix/`` group, or
the v2 ``GENOME/`` group) stores it as CSC, which is CSR of cells × genes, so
blocks of cells are sliced through ``indptr``. A MatrixMarket file may list
its entries in any order, so it is streamed once in chunks of lines into a row
spill (:class:`~cytodask.ingest.rowsort.RowSpill`) on the first read; a sorted
file (the usual Cell Ranger output) makes that pass sequential writes only.
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import h5py
import numpy as np
import pandas as pd
import scipy.sparse as sp

from cytodask.ingest.base import DataSource
from cytodask.ingest.rowsort import RowSpill, Triples

GENE_EXPRESSION = "Gene Expression"
_CORRUPT = (OSError, EOFError, zlib.error, UnicodeDecodeError, pd.errors.ParserError)
_INT32_MAX = np.iinfo(np.int32).max


def _corrupt(path: Path, err: BaseException) -> ValueError:
    return ValueError(f"{path} looks truncated or corrupt ({type(err).__name__}: {err}); re-copy or re-download it")


@contextmanager
def _text(path: Path) -> Iterator[IO[str]]:
    """``path`` opened as text, gunzipped when it is gzip (by content, not name)."""
    with open(path, "rb") as raw:
        gz = raw.read(2) == b"\x1f\x8b"
    with (gzip.open(path, "rt", encoding="utf-8") if gz else open(path, encoding="utf-8")) as fh:
        yield fh


@contextmanager
def _h5(path: Path) -> Iterator[h5py.File]:
    """``path`` opened with h5py; low-level read errors become a ValueError naming the file."""
    try:
        with h5py.File(path, "r") as f:
            yield f
    except OSError as err:
        raise _corrupt(path, err) from None


def _table(path: Path) -> pd.DataFrame:
    try:
        with _text(path) as fh:
            return pd.read_csv(fh, sep="\t", header=None, dtype=str, keep_default_na=False, na_filter=False)
    except pd.errors.EmptyDataError:
        return pd.DataFrame({0: pd.Series([], dtype=str)})
    except _CORRUPT as err:
        raise _corrupt(path, err) from None


def _find_mtx_files(path: Path) -> tuple[Path, Path, Path]:
    """(matrix, features, barcodes) of a matrix directory, or beside ``[PREFIX]matrix.mtx[.gz]``."""
    if path.is_dir():
        folder, prefix = path, ""
    else:
        folder, name = path.parent, path.name
        stem = name[: -len(".gz")] if name.endswith(".gz") else name
        if not stem.endswith("matrix.mtx"):
            raise ValueError(f"{path}: expected a 10x matrix directory, [PREFIX]matrix.mtx[.gz] or a Cell Ranger .h5")
        prefix = stem[: -len("matrix.mtx")]
    names = {p.name for p in folder.iterdir()}
    wanted = {"matrix": ("matrix.mtx.gz", "matrix.mtx"),
              "features": ("features.tsv.gz", "features.tsv", "genes.tsv.gz", "genes.tsv"),
              "barcodes": ("barcodes.tsv.gz", "barcodes.tsv")}
    found = {k: next((folder / (prefix + n) for n in opts if prefix + n in names), None) for k, opts in wanted.items()}
    missing = [" or ".join(prefix + n for n in wanted[k]) for k, p in found.items() if p is None]
    if missing:
        raise ValueError(
            f"{folder} is not a complete 10x matrix directory: missing {'; '.join(missing)} (found: "
            f"{sorted(names)[:20]}). Cell Ranger writes matrix.mtx.gz, features.tsv.gz and barcodes.tsv.gz "
            "(v2: matrix.mtx, genes.tsv, barcodes.tsv); copy the missing file(s) next to the matrix"
        )
    return found["matrix"], found["features"], found["barcodes"]  # type: ignore[return-value]


def _mtx_header(path: Path) -> tuple[str, int, int, int, int]:
    """``(field, n_rows, n_cols, nnz, header_lines)`` of a MatrixMarket coordinate file."""
    try:
        with _text(path) as fh:
            first = fh.readline()
            parts = first.lower().split()
            if not first.startswith("%%MatrixMarket") or parts[1:3] != ["matrix", "coordinate"] or len(parts) < 5:
                raise ValueError(f"{path} is not a MatrixMarket coordinate file (first line {first.strip()!r})")
            field, symmetry = parts[3], parts[4]
            if field not in ("integer", "real", "pattern") or symmetry != "general":
                raise ValueError(f"{path}: MatrixMarket '{field} {symmetry}' is not supported; 10x matrices are "
                                 "'integer general' (also read: 'real general', 'pattern general')")
            lines, line = 1, fh.readline()
            while line.startswith("%") or (line and not line.strip()):
                lines, line = lines + 1, fh.readline()
    except _CORRUPT as err:
        raise _corrupt(path, err) from None
    try:
        n_rows, n_cols, nnz = (int(v) for v in line.split())
    except ValueError:
        raise ValueError(f"{path}: no valid size line (got {line.strip()!r}); it looks truncated or corrupt") from None
    return field, n_rows, n_cols, nnz, lines + 1


class TenXSource(DataSource):
    """A Cell Ranger count matrix: a matrix directory, its ``matrix.mtx[.gz]``, or ``*_feature_bc_matrix.h5``.

    Parameters
    ----------
    path
        A directory with ``matrix.mtx[.gz]``, ``features.tsv[.gz]`` (v2:
        ``genes.tsv``) and ``barcodes.tsv[.gz]``; a ``[PREFIX]matrix.mtx[.gz]``
        file with its ``[PREFIX]features``/``barcodes`` files beside it; or a
        Cell Ranger HDF5 file (v3 ``matrix`` group, or a v2 genome group).
    feature_type
        Keep only features of this type (default ``"Gene Expression"``, which
        drops antibody capture, CRISPR guides, …); ``None`` keeps all features.
        Ignored when the file records no feature types (v2).
    spill_dir
        Where a MatrixMarket file is re-blocked by cells (default: the system
        temporary directory; about 12–16 bytes per non-zero).
    chunk_lines
        MatrixMarket lines parsed at a time (bounds the memory of that pass).

    Notes
    -----
    ``var`` is indexed by gene id (Ensembl) with columns ``gene_symbols``,
    ``feature_types`` and ``genome`` where the file has them (as
    ``scanpy.read_10x_*(var_names="gene_ids")``); ``obs`` is indexed by
    barcode. Values keep the stored dtype (HDF5), or are ``int32`` from a
    MatrixMarket file unless a ``real`` file holds non-integer values
    (``float32``). The MatrixMarket spill lives as long as this object: a
    killed conversion that resumes repeats the O(nnz) pass.
    """

    def __init__(self, path: str | os.PathLike[str], *, feature_type: str | None = GENE_EXPRESSION,
                 spill_dir: str | os.PathLike[str] | None = None, chunk_lines: int = 1_000_000) -> None:
        self.path = Path(path)
        self.feature_type = feature_type
        if not self.path.exists():
            raise FileNotFoundError(f"10x input {self.path} does not exist")
        if chunk_lines < 1:
            raise ValueError(f"chunk_lines={chunk_lines}: must be ≥ 1")
        self.chunk_lines = int(chunk_lines)
        self._spill: RowSpill | None = None
        if self.path.is_dir() or self.path.name.endswith((".mtx", ".mtx.gz")):
            self._files = dict(zip(("matrix", "features", "barcodes"), _find_mtx_files(self.path), strict=True))
            features, barcodes = self._init_mtx()
        elif h5py.is_hdf5(self.path):
            self._files = {"source": self.path}
            features, barcodes = self._init_h5()
        else:
            raise ValueError(f"{self.path} is neither a 10x matrix directory nor an HDF5 file; if it is a Cell "
                             "Ranger .h5 it looks truncated or corrupt — re-copy it")
        self._set_features(features)
        self._obs = pd.DataFrame(index=pd.Index(barcodes))
        if "matrix" in self._files:  # 'real' values are spilled exactly; the dtype is settled by the pass
            self._spill = RowSpill(self._mtx_stream, self.shape, np.float64 if self._field == "real" else np.int32,
                                   nnz_hint=self._nnz, name=str(self._files["matrix"]), spill_dir=spill_dir)

    # -- layouts -----------------------------------------------------------------------------------------------
    def _init_h5(self) -> tuple[pd.DataFrame, np.ndarray]:
        with _h5(self.path) as f:
            if "matrix" in f:
                g, feats = f["matrix"], f["matrix"].get("features", {})
                cols = {k: feats[k] for k in ("id", "name", "feature_type", "genome") if k in feats}
            else:
                groups = [k for k in f if isinstance(f[k], h5py.Group) and "genes" in f[k]]
                if len(groups) != 1:
                    raise ValueError(f"{self.path} is HDF5 but not a Cell Ranger matrix (no 'matrix' group and "
                                     f"{len(groups)} v2 genome groups; top-level keys: {sorted(f)[:10]})")
                g = f[groups[0]]
                cols = {"id": g["genes"], "name": g.get("gene_names")}
            lacking = [k for k in ("data", "indices", "indptr", "shape", "barcodes") if k not in g] + (
                [] if cols.get("id") is not None else ["features/id"])
            if lacking:
                raise ValueError(f"{self.path}: Cell Ranger group {g.name!r} lacks {lacking}; it looks truncated or "
                                 "corrupt, or is not a Cell Ranger count matrix")
            self._group = g.name
            n_features, n_cells = (int(v) for v in g["shape"][:2])
            features = pd.DataFrame({k: v.asstr()[:] for k, v in cols.items() if v is not None})
            if "genome" not in features and "matrix" not in f:
                features["genome"] = g.name.strip("/")
            barcodes = g["barcodes"].asstr()[:]
            self._nnz, self._dtype = int(g["data"].shape[0]), g["data"].dtype
            bad = (len(features) != n_features or len(barcodes) != n_cells or g["indptr"].shape[0] != n_cells + 1
                   or g["indices"].shape[0] != self._nnz)
            if bad:
                raise ValueError(f"{self.path}: matrix shape {n_features}×{n_cells} disagrees with its features "
                                 f"({len(features)}), barcodes ({len(barcodes)}) or indptr; it looks truncated "
                                 "or corrupt")
        self._all_shape = (n_cells, n_features)
        return features, barcodes

    def _init_mtx(self) -> tuple[pd.DataFrame, np.ndarray]:
        mtx, feats, bcs = self._files["matrix"], self._files["features"], self._files["barcodes"]
        self._field, n_features, n_cells, self._nnz, self._skip = _mtx_header(mtx)
        table = _table(feats)
        features = pd.DataFrame({k: table[i] for i, k in enumerate(("id", "name", "feature_type")) if i in table})
        barcodes = _table(bcs)[0].to_numpy()
        if (n_features, n_cells) != (len(features), len(barcodes)):
            flipped = (n_features, n_cells) == (len(barcodes), len(features))
            raise ValueError(
                f"{mtx.name} is {n_features} features × {n_cells} cells, but {feats.name} lists {len(features)} "
                f"features and {bcs.name} {len(barcodes)} barcodes (in {mtx.parent}); "
                + ("the matrix looks transposed (cells × genes): 10x matrices are genes × cells"
                   if flipped else "the files do not belong together, or one is truncated")
            )
        self._all_shape = (n_cells, n_features)
        self._dtype = np.dtype(np.int32)
        self._integral = True
        return features, barcodes

    def _set_features(self, features: pd.DataFrame) -> None:
        types = features.get("feature_type")
        keep = np.ones(len(features), dtype=bool)
        if self.feature_type is not None and types is not None:
            keep = (types == self.feature_type).to_numpy()
            if not keep.any():
                raise ValueError(f"{self.path}: no features of type {self.feature_type!r}; types in the file: "
                                 f"{sorted(set(types))}. Pass feature_type=None to keep all, or one of these")
        self._keep = None if keep.all() else np.flatnonzero(keep)
        self._map = np.full(len(features), -1, dtype=np.int64)
        self._map[keep] = np.arange(int(keep.sum()))
        kept = features[keep]
        var = pd.DataFrame(index=pd.Index(kept["id"].to_numpy(), dtype=object))
        for src, dst in (("name", "gene_symbols"), ("feature_type", "feature_types"), ("genome", "genome")):
            if src in kept:
                var[dst] = kept[src].to_numpy()
        self._var = var

    def _mtx_lines(self) -> Iterator[np.ndarray]:
        """The MatrixMarket entries as float64 arrays of ``chunk_lines`` rows (gene, cell[, value])."""
        mtx = self._files["matrix"]
        names = ["gene", "cell"] + ([] if self._field == "pattern" else ["value"])
        try:
            with _text(mtx) as fh:
                for _ in range(self._skip):
                    fh.readline()
                reader = pd.read_csv(fh, sep=r"\s+", header=None, names=names, usecols=range(len(names)),
                                     dtype=np.float64, chunksize=self.chunk_lines)
                for chunk in reader:
                    yield chunk.to_numpy()
        except pd.errors.EmptyDataError:
            return
        except (*_CORRUPT, ValueError) as err:  # ValueError: a field that is not a number
            raise _corrupt(mtx, err) from None

    def _mtx_stream(self) -> Iterator[Triples]:
        """Entries of the MatrixMarket file as (cell, kept gene, value) chunks."""
        mtx, n_features = self._files["matrix"], self._all_shape[1]
        seen, integral = 0, True
        for arr in self._mtx_lines():
            if np.isnan(arr).any():
                raise ValueError(f"{mtx}: an entry after line {self._skip + seen} has missing fields; "
                                 "the file looks truncated or corrupt")
            genes, cells = arr[:, 0].astype(np.int64) - 1, arr[:, 1].astype(np.int64) - 1
            if len(genes) and (genes.min() < 0 or genes.max() >= n_features):
                raise ValueError(f"{mtx}: gene index outside 1..{n_features}; the file looks truncated or corrupt")
            values = np.ones(len(arr)) if self._field == "pattern" else arr[:, 2]
            big = np.abs(values).max(initial=0) > _INT32_MAX
            if self._field != "real" and big:
                raise ValueError(f"{mtx}: values beyond the int32 range; these are not counts")
            integral = integral and not big and bool(np.all(np.mod(values, 1) == 0))
            seen += len(arr)
            cols = self._map[genes]
            kept = cols >= 0
            yield cells[kept], cols[kept], values[kept]
        if seen != self._nnz:
            raise ValueError(f"{mtx}: the header announces {self._nnz} entries but the file holds {seen}; it "
                             "looks truncated or corrupt — re-copy or re-download it")
        self._integral = integral

    # -- DataSource --------------------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return str(self.path)

    @property
    def shape(self) -> tuple[int, int]:
        return self._all_shape[0], len(self._var)

    @property
    def dtype(self) -> np.dtype[Any]:
        if self._spill is not None and self._field == "real":
            self._spill.build()  # whether a 'real' file holds integers is known after the pass
            return np.dtype(np.int32 if self._integral else np.float32)
        return np.dtype(self._dtype)

    def nnz_hint(self) -> int | None:
        return self._nnz

    def obs(self) -> pd.DataFrame:
        return self._obs

    def var(self) -> pd.DataFrame:
        return self._var

    def fingerprint_paths(self) -> dict[str, Path]:
        return dict(self._files)

    def identity(self) -> dict[str, Any]:
        return {"source": "10x", "path": str(self.path.resolve()), "feature_type": self.feature_type}

    def close(self) -> None:
        """Remove the MatrixMarket row spill, if one was built (a later read rebuilds it)."""
        if self._spill is not None:
            self._spill.close()

    def read_rows(self, start: int, stop: int) -> sp.csr_matrix:
        n_cells, n_genes = self.shape
        if not 0 <= start <= stop <= n_cells:
            raise IndexError(f"rows [{start}, {stop}) outside 0..{n_cells}")
        if self._spill is not None:
            m = self._spill.read_rows(start, stop)
            return m if m.dtype == self.dtype else m.astype(self.dtype)
        with _h5(self.path) as f:
            g = f[self._group]
            indptr = g["indptr"][start : stop + 1].astype(np.int64)
            a, b = int(indptr[0]), int(indptr[-1])
            data, indices = g["data"][a:b], g["indices"][a:b]
        try:
            m = sp.csr_matrix((data, indices, indptr - a), shape=(stop - start, self._all_shape[1]))
        except ValueError as err:  # indices beyond the shape, indptr out of order
            raise _corrupt(self.path, err) from None
        if self._keep is not None:
            m = m[:, self._keep]
        m = sp.csr_matrix(m)
        m.sort_indices()
        return m
