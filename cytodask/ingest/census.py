"""CELLxGENE Census queries as a :class:`~cytodask.ingest.base.DataSource`, streamed in blocks of cells.

``CellxgeneCensusSource().query(tissue="blood", disease="COVID-19", cell_type=["T cell", "B cell"],
max_cells=500_000)`` selects cells with one SOMA ``value_filter``, reads only their ``soma_joinid``
column, subsamples deterministically, and then reads X one block of cells at a time (never
``get_anndata`` on the whole result).
"""

from __future__ import annotations

import copy
import hashlib
import os
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import cellxgene_census
import numpy as np
import pandas as pd
import scipy.sparse as sp
import tiledbsoma as soma

from cytodask.ingest.base import DataSource

MEASUREMENT = "RNA"
DEFAULT_OBS_COLUMNS = (
    "soma_joinid", "dataset_id", "assay", "cell_type", "cell_type_ontology_term_id", "tissue", "tissue_general",
    "disease", "donor_id", "sex", "development_stage", "suspension_type", "is_primary_data",
)
VAR_COLUMNS = ("feature_name", "feature_length")
Values = str | Sequence[str] | None


def _values(v: Values) -> tuple[str, ...] | None:
    if v is None:
        return None
    out = (str(v),) if isinstance(v, str) else tuple(str(x) for x in v)
    if not out:
        raise ValueError("an empty list of values selects no cells; pass None to leave the column unfiltered")
    return out


def _experiment_name(organism: str) -> str:
    """``"Homo sapiens"`` → ``homo_sapiens`` (the experiment's name in ``census_data``)."""
    if not isinstance(organism, str) or not organism.strip():
        raise ValueError(f"organism={organism!r}: give a species name, e.g. 'Homo sapiens' or 'Mus musculus'")
    return re.sub(r"[ ]+", "_", organism.strip()).lower()


def _clause(column: str, values: tuple[str, ...]) -> str:
    """``column == 'v'`` or ``column in ['a', 'b']``; values are quoted as Python literals (``repr``)."""
    if len(values) == 1:
        return f"{column} == {values[0]!r}"
    return f"{column} in [{', '.join(repr(v) for v in values)}]"


def _positions(keys: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Positions of ``values`` among ``keys`` (int64 ``soma_joinid``\\ s), with :class:`tiledbsoma.IntIndexer`."""
    # .view(np.int64): IntIndexer refuses int64 arrays whose dtype object came from unpickling
    keys, values = (np.ascontiguousarray(a, dtype=np.int64).view(np.int64) for a in (keys, values))
    return soma.IntIndexer(keys).get_indexer(values)


@dataclass(frozen=True)
class CensusQuery:
    """The arguments of :meth:`CellxgeneCensusSource.query` (normalized to tuples)."""

    tissue: tuple[str, ...] | None = None
    cell_type: tuple[str, ...] | None = None
    disease: tuple[str, ...] | None = None
    obs_value_filter: str | None = None
    genes: tuple[str, ...] | None = None
    max_cells: int | None = None
    seed: int = 0
    is_primary_data: bool | None = True
    obs_columns: tuple[str, ...] | None = None
    layer: str = "raw"

    def value_filter(self, columns: Sequence[str]) -> str | None:
        """The SOMA obs ``value_filter`` (clauses joined with ``and``), checked against ``columns``.

        ``tissue`` matches ``tissue_general`` (the coarse tissue Census users mean by "blood" or
        "lung") when the experiment has it, else ``tissue``; use ``obs_value_filter="tissue == '…'"``
        for a fine tissue term. ``is_primary_data=True`` adds ``is_primary_data == True`` (each cell
        once, not its copies in other datasets); ``None`` leaves it out.
        """
        tissue_col = "tissue_general" if "tissue_general" in columns else "tissue"
        clauses = []
        for column, values in ((tissue_col, self.tissue), ("cell_type", self.cell_type), ("disease", self.disease)):
            if values is not None:
                if column not in columns:
                    raise ValueError(f"the Census obs has no column {column!r}; obs columns: {sorted(columns)}")
                clauses.append(_clause(column, values))
        if self.is_primary_data is not None:
            if "is_primary_data" not in columns:
                raise ValueError(f"the Census obs has no column 'is_primary_data' (pass is_primary_data=None); "
                                 f"obs columns: {sorted(columns)}")
            clauses.append(f"is_primary_data == {bool(self.is_primary_data)}")
        if self.obs_value_filter:
            clauses.append(f"({self.obs_value_filter})")
        return " and ".join(clauses) or None


class CellxgeneCensusSource(DataSource):
    """Cells of a CELLxGENE Census experiment, selected by :meth:`query` and read in blocks.

    Parameters
    ----------
    census_version
        Census release (``"stable"``, ``"latest"`` or a build date) opened with
        :func:`cellxgene_census.open_soma`; ignored when ``uri`` is given.
    uri
        Location of a Census copy (a local directory or ``s3://…``).
    organism
        Experiment in ``census_data`` (``"Homo sapiens"`` → ``homo_sapiens``).

    Without :meth:`query` the source is every primary cell of the organism. Cells are ordered by
    ``soma_joinid``; obs is indexed by the ``soma_joinid`` (as strings) and var by ``feature_id``.
    The open Census handle is not pickled; a copy reopens it.
    """

    def __init__(self, census_version: str = "stable", *, uri: str | os.PathLike[str] | None = None,
                 organism: str = "Homo sapiens") -> None:
        self.census_version, self.uri, self.organism = census_version, None if uri is None else str(uri), organism
        self._exp_name = _experiment_name(organism)
        self._q, self._census, self._build = CensusQuery(), None, None
        self._resolved: dict[str, Any] | None = None
        self._obs: pd.DataFrame | None = None
        self._nnz: int | None = None
        self._experiment()  # fails early on an unknown organism

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_census": None}

    def _experiment(self) -> soma.Experiment:
        if self._census is None or self._census.closed:
            self._census = cellxgene_census.open_soma(census_version=self.census_version, uri=self.uri)
        data = self._census["census_data"]
        if self._exp_name not in data:
            raise ValueError(f"unknown organism {self.organism!r} in {self._where}; available: {sorted(data.keys())}")
        return data[self._exp_name]

    @property
    def _where(self) -> str:
        return f"Census {self.uri}" if self.uri else f"Census {self.census_version!r}"

    def close(self) -> None:
        """Close the Census handle (reopened on next use)."""
        if self._census is not None:
            self._census.close()
            self._census = None

    def query(self, *, tissue: Values = None, cell_type: Values = None, disease: Values = None,
              obs_value_filter: str | None = None, genes: Sequence[str] | str | None = None,
              max_cells: int | None = None, seed: int = 0, is_primary_data: bool | None = True,
              obs_columns: Sequence[str] | None = None, layer: str = "raw",
              organism: str | None = None) -> CellxgeneCensusSource:
        """A new source over the cells matching the query (resolved now, so bad queries fail here).

        Parameters
        ----------
        organism
            ``"Homo sapiens"``, ``"Mus musculus"`` (as in ``cellxgene_census.get_anndata``); default: the
            constructor's.
        tissue, cell_type, disease
            Value or list of values; ``tissue`` matches ``tissue_general`` (see :meth:`CensusQuery.value_filter`).
        obs_value_filter
            Extra SOMA filter, e.g. ``"sex == 'female'"`` (and-ed with the rest).
        genes
            Symbols (``feature_name``) or Ensembl ids (``feature_id``), kept in var-table order; ``None``: all.
        max_cells
            Keep this many cells: ``numpy.random.default_rng(seed).choice`` of the sorted matching
            ``soma_joinid``\\ s, without replacement, sorted again (independent of block size).
        is_primary_data
            ``True`` (default): only primary cells, so cells in several datasets count once;
            ``False``: only the duplicates; ``None``: no filter.
        obs_columns
            obs columns to keep; default :data:`DEFAULT_OBS_COLUMNS` that exist.
        layer
            X layer (``"raw"`` counts; ``"normalized"`` exists too but is not counts).
        """
        if max_cells is not None and (int(max_cells) != max_cells or max_cells < 1):
            raise ValueError(f"max_cells={max_cells!r}: must be a positive integer or None")
        new = copy.copy(self)
        if organism is not None:
            new.organism, new._exp_name = organism, _experiment_name(organism)
            new._experiment()  # an unknown organism fails here, naming the available ones
        new._q = CensusQuery(
            tissue=_values(tissue), cell_type=_values(cell_type), disease=_values(disease),
            obs_value_filter=obs_value_filter or None, genes=_values(genes),
            max_cells=None if max_cells is None else int(max_cells), seed=int(seed),
            is_primary_data=None if is_primary_data is None else bool(is_primary_data),
            obs_columns=None if obs_columns is None else tuple(obs_columns), layer=layer,
        )
        new._resolved, new._obs, new._nnz = None, None, None
        new._resolve()
        return new

    def _resolve(self) -> dict[str, Any]:
        if self._resolved is not None:
            return self._resolved
        q, exp = self._q, self._experiment()
        obs_names = list(exp.obs.schema.names)
        flt = q.value_filter(obs_names)
        try:
            ids = exp.obs.read(column_names=["soma_joinid"], value_filter=flt).concat()["soma_joinid"].to_numpy()
        except soma.SOMAError as err:
            raise ValueError(f"{self._where}: cannot apply obs filter `{flt}`: {str(err).splitlines()[0]}; "
                             f"obs columns: {obs_names}") from None
        if ids.size == 0:
            raise ValueError(f"no cells of {self.organism} in {self._where} match the obs filter `{flt}`")
        ids = np.sort(ids.astype(np.int64))
        if q.max_cells is not None and ids.size > q.max_cells:
            ids = np.sort(np.random.default_rng(q.seed).choice(ids, q.max_cells, replace=False))
        ms = exp.ms[MEASUREMENT]
        if q.layer not in ms.X:
            raise ValueError(f"{self._where}: no X layer {q.layer!r}; layers: {sorted(ms.X.keys())}")
        var_names = list(ms.var.schema.names)
        if "feature_id" not in var_names:
            raise ValueError(f"{self._where}: the var table has no 'feature_id' column; var columns: {var_names}")
        cols = ["soma_joinid", "feature_id", *(c for c in VAR_COLUMNS if c in var_names)]
        var = ms.var.read(column_names=cols).concat().to_pandas().sort_values("soma_joinid")
        var_ids = None
        if q.genes is not None:
            names = var["feature_name"] if "feature_name" in var else var["feature_id"]
            hit = var["feature_id"].isin(q.genes) | names.isin(q.genes)
            found = set(var.loc[hit, "feature_id"]) | set(names[hit])
            missing = [g for g in q.genes if g not in found]
            if missing:
                raise ValueError(f"{len(missing)} of {len(q.genes)} genes are not in the {self._where} var table "
                                 f"(feature_id or feature_name), e.g. {missing[:5]}")
            var = var[hit]
            var_ids = var["soma_joinid"].to_numpy(np.int64)
        self._resolved = {
            "filter": flt, "ids": ids, "var_ids": var_ids,
            "var_joinids": var["soma_joinid"].to_numpy(np.int64),  # column order (IntIndexer cannot pickle)
            "var": var.drop(columns="soma_joinid").set_index("feature_id").rename_axis(None),
            "obs_available": obs_names,
            "dtype": np.dtype(ms.X[q.layer].schema.field("soma_data").type.to_pandas_dtype()),
        }
        return self._resolved

    @property
    def value_filter(self) -> str | None:
        """The SOMA obs filter this source selects cells with."""
        return self._resolve()["filter"]

    @property
    def soma_joinids(self) -> np.ndarray:
        """The selected cells' ``soma_joinid`` (sorted; row ``i`` is ``soma_joinids[i]``)."""
        return self._resolve()["ids"]

    @property
    def name(self) -> str:
        return f"{self._where} {self.organism} [{self.value_filter or 'all cells'}]"

    @property
    def shape(self) -> tuple[int, int]:
        return int(self._resolve()["ids"].size), len(self._resolve()["var"])

    @property
    def dtype(self) -> np.dtype[Any]:
        return self._resolve()["dtype"]

    def layers(self) -> list[str]:
        """X layers of the experiment."""
        return sorted(self._experiment().ms[MEASUREMENT].X.keys())

    def var(self) -> pd.DataFrame:
        return self._resolve()["var"]

    def obs_columns(self) -> list[str]:
        available = self._resolve()["obs_available"]
        if self._q.obs_columns is None:
            return [c for c in DEFAULT_OBS_COLUMNS if c in available]
        unknown = [c for c in self._q.obs_columns if c not in available]
        if unknown:
            raise ValueError(f"obs columns {unknown} are not in the {self._where} obs; available: {available}")
        return list(dict.fromkeys(self._q.obs_columns))

    def obs(self) -> pd.DataFrame:
        """obs of the selected cells (read once; string columns as categoricals)."""
        if self._obs is None:
            r, columns = self._resolve(), self.obs_columns()
            extra = ["soma_joinid"] + (["nnz"] if self._q.genes is None and "nnz" in r["obs_available"] else [])
            read = list(dict.fromkeys(columns + extra))
            df = self._experiment().obs.read(coords=(r["ids"],), column_names=read).concat().to_pandas()
            df = df.iloc[_positions(df["soma_joinid"].to_numpy(), r["ids"])]
            if "nnz" in extra:
                self._nnz = int(df["nnz"].sum())
            df = df[columns].reset_index(drop=True)
            for c in df.columns:
                if df[c].dtype == object or pd.api.types.is_string_dtype(df[c].dtype):
                    df[c] = df[c].astype("category")
            df.index = pd.Index(r["ids"].astype(str))
            self._obs = df
        return self._obs

    def nnz_hint(self) -> int | None:
        """Sum of the Census ``nnz`` obs column over the cells (all genes only), if present."""
        self.obs()
        return self._nnz

    def read_rows(self, start: int, stop: int) -> sp.csr_matrix:
        """Counts of cells ``[start, stop)``: one X read of exactly those cells' ``soma_joinid``\\ s."""
        r = self._resolve()
        n_obs, n_vars = self.shape
        if not 0 <= start <= stop <= n_obs:
            raise IndexError(f"rows [{start}, {stop}) outside 0..{n_obs}")
        ids = r["ids"][start:stop]
        if ids.size == 0:
            return sp.csr_matrix((0, n_vars), dtype=self.dtype)
        x = self._experiment().ms[MEASUREMENT].X[self._q.layer]
        parts = list(x.read((ids, r["var_ids"])).tables())
        dim0, dim1, data = (np.concatenate([t[k].to_numpy() for t in parts]) if parts else np.zeros(0)
                            for k in ("soma_dim_0", "soma_dim_1", "soma_data"))
        rows, cols = _positions(ids, dim0), _positions(r["var_joinids"], dim1)
        m = sp.csr_matrix((data.astype(self.dtype, copy=False), (rows, cols)), shape=(stop - start, n_vars))
        m.sort_indices()
        return m

    def _store_build(self) -> dict[str, Any]:
        """The resolved release (by version) or ``census_info/summary`` build date plus, for a local
        directory, a hash of its file listing (paths, sizes, mtimes)."""
        if self._build is None:
            if self.uri is None:
                d = cellxgene_census.get_census_version_description(self.census_version)
                self._build = {"release_build": d.get("release_build"), "soma": d.get("soma", {}).get("uri")}
                return self._build
            self._experiment()
            info = self._census["census_info"] if "census_info" in self._census else {}
            date = None
            if "summary" in info:
                df = info["summary"].read().concat().to_pandas()
                date = next(iter(df.loc[df["label"] == "census_build_date", "value"].astype(str)), None)
            self._build = {"census_build_date": date}
            url = urlparse(self.uri)
            if url.scheme in ("", "file"):
                root = Path(url.path if url.scheme else self.uri)
                h = hashlib.blake2b(digest_size=16)
                for f in sorted(p for p in root.rglob("*") if p.is_file()):
                    st = f.stat()
                    h.update(f"{f.relative_to(root)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
                self._build["listing"] = h.hexdigest()
        return self._build

    def identity(self) -> dict[str, Any]:
        """Census version or uri, the resolved build (or a local store's listing), organism, query."""
        return {
            "source": "cellxgene_census", "census_version": None if self.uri else self.census_version,
            "uri": self.uri, "build": self._store_build(), "organism": self._exp_name,
            "measurement": MEASUREMENT, "query": asdict(self._q), "value_filter": self.value_filter,
        }
