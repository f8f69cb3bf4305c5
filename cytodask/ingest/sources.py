"""One entry point for every source: a path, a URL, or a ``census:`` query.

:func:`open_source` is what ``cytodask convert`` and the rebuild specs'
``[source] path`` use. It recognises

- an ``.h5ad`` file (X, or ``layer``);
- a 10x Cell Ranger matrix directory (``matrix.mtx[.gz]`` + ``features.tsv.gz``
  or ``genes.tsv`` + ``barcodes.tsv[.gz]``) or its ``.h5`` file;
- a ``.loom`` file;
- a remote ``.h5ad`` at an ``http(s)://``, ``s3://`` or ``gs://`` URL (read by
  byte ranges, never downloaded whole);
- ``census:[VERSION][?QUERY]``: CELLxGENE Census, e.g.
  ``census:stable?tissue=blood&cell_type=T cell&cell_type=B cell&disease=COVID-19&max_cells=50000``.
  Query keys: ``uri`` (a local or remote SOMA store instead of a release),
  ``organism``, ``tissue``, ``cell_type``, ``disease``, ``obs_value_filter``,
  ``genes``, ``max_cells``, ``seed``, ``is_primary_data``, ``layer``,
  ``obs_columns``. Repeat a key for several values (cell type names may
  contain commas, so commas never split).
- ``synthetic:<atlas>[?size=unit&cells=N&seed=S&dir=DIR]``: an atlas of the
  synthetic world (:mod:`cytodask.demo.world.source`), generated on first use.

HDF5 files with an unexpected suffix are recognised by their content.
"""

from __future__ import annotations

import os
import urllib.parse
from pathlib import Path
from typing import Any

import h5py

from cytodask.ingest.base import DataSource
from cytodask.ingest.formats import SUPPORTED

REMOTE_SCHEMES = ("http", "https", "s3", "gs", "gcs")
_MULTI = {"cell_type", "tissue", "disease", "genes", "obs_columns"}
_INT = {"max_cells", "seed"}
_CENSUS_KEYS = {"uri", "organism", "tissue", "cell_type", "disease", "obs_value_filter", "genes", "max_cells",
                "seed", "is_primary_data", "layer", "obs_columns"}


def is_local_path(spec: str) -> bool:
    """True when ``spec`` names a local file or directory (not a URL or ``census:`` query)."""
    return not (spec.startswith(("census:", "synthetic:")) or "://" in spec)


def open_source(spec: str | os.PathLike[str], *, layer: str | None = None,
                storage_options: dict[str, Any] | None = None) -> DataSource:
    """Open ``spec`` as a :class:`DataSource` (see the module docstring for the forms).

    Raises
    ------
    FileNotFoundError
        A local path that does not exist.
    ValueError
        An unsupported format (the message lists the supported ones), or a
        ``layer`` given for a source without layers.
    """
    text = os.fspath(spec)
    if text.startswith("synthetic:"):
        if layer is not None:
            raise ValueError(f"{text}: synthetic atlases have their counts in X; drop layer={layer!r}")
        from cytodask.demo.world.source import open_synthetic

        return open_synthetic(text)
    if text.startswith("census:"):
        if layer is not None:
            raise ValueError(f"{text}: for Census sources give the X layer in the query (…&layer=raw), not --layer")
        return parse_census(text)
    scheme = urllib.parse.urlsplit(text).scheme.lower()
    if "://" in text and scheme != "file":
        if scheme not in REMOTE_SCHEMES:
            raise ValueError(f"{text}: unsupported URL scheme {scheme!r}; supported: {SUPPORTED}")
        if not urllib.parse.urlsplit(text).path.endswith(".h5ad"):
            raise ValueError(f"{text}: only .h5ad files are read from URLs; supported: {SUPPORTED}")
        from cytodask.ingest.remote import RemoteH5ADSource

        return RemoteH5ADSource(text, layer=layer, storage_options=storage_options)
    path = Path(urllib.parse.urlsplit(text).path if scheme == "file" else text).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"input {path} does not exist (supported: {SUPPORTED})")
    kind = _sniff(path)
    if kind == "h5ad":
        from cytodask.ingest.h5ad import LocalH5ADSource

        return LocalH5ADSource(path, layer=layer)
    if kind == "loom":
        from cytodask.ingest.loom import LoomSource

        return LoomSource(path, layer=layer)
    if layer is not None:
        raise ValueError(f"{path}: 10x matrices have no layers; drop --layer {layer}")
    from cytodask.ingest.tenx import TenXSource

    return TenXSource(path)


def _sniff(path: Path) -> str:
    """``"h5ad"``, ``"loom"`` or ``"10x"`` from the name, then the content."""
    if path.is_dir():
        names = {p.name for p in path.iterdir()}
        if names & {"matrix.mtx", "matrix.mtx.gz"}:
            return "10x"
        raise ValueError(f"{path} is a directory without matrix.mtx[.gz] (found: {sorted(names)[:10]}); "
                         f"supported: {SUPPORTED}")
    if path.stat().st_size == 0:
        raise ValueError(f"{path} is empty (0 bytes); supported: {SUPPORTED}")
    name = path.name.lower()
    if name.endswith((".mtx", ".mtx.gz")):
        return "10x"
    if not h5py.is_hdf5(path):
        if name.endswith((".h5ad", ".loom", ".h5")):
            raise ValueError(f"{path} is not a valid HDF5 file despite its suffix (corrupt, or another format); "
                             "re-copy or re-export it")
        raise ValueError(f"{path}: unsupported format (not HDF5 and no known suffix); supported: {SUPPORTED}")
    try:
        with h5py.File(path, "r") as f:
            keys = set(f.keys())
    except OSError as e:
        raise ValueError(f"{path} looks truncated or corrupt ({e}); re-copy or re-export it") from None
    if name.endswith(".h5ad"):
        return "h5ad"
    if name.endswith(".loom"):
        return "loom"
    if {"obs", "var"} <= keys:
        return "h5ad"
    if {"matrix", "row_attrs", "col_attrs"} <= keys:
        return "loom"
    if "matrix" in keys:
        return "10x"
    raise ValueError(f"{path} is HDF5 but none of the supported layouts (top-level keys: {sorted(keys)[:10]}); "
                     f"supported: {SUPPORTED}")


def parse_census(spec: str) -> DataSource:
    """``census:[VERSION][?QUERY]`` → a queried :class:`CellxgeneCensusSource`."""
    body = spec[len("census:"):]
    version, _, query = body.partition("?")
    args: dict[str, Any] = {}
    for key, value in urllib.parse.parse_qsl(query, keep_blank_values=True, strict_parsing=False):
        if key not in _CENSUS_KEYS:
            raise ValueError(f"{spec}: unknown Census query key {key!r}; known: {sorted(_CENSUS_KEYS)}")
        if key in _MULTI:
            args.setdefault(key, []).append(value)
        elif key in args:
            raise ValueError(f"{spec}: {key!r} given twice")
        elif key in _INT:
            try:
                args[key] = int(value)
            except ValueError:
                raise ValueError(f"{spec}: {key}={value!r} is not an integer") from None
        elif key == "is_primary_data":
            if value.lower() not in ("true", "false", "any"):
                raise ValueError(f"{spec}: is_primary_data={value!r}; use true, false or any")
            args[key] = {"true": True, "false": False, "any": None}[value.lower()]
        else:
            args[key] = value
    for key in ("tissue", "disease"):  # one value stays a scalar
        if key in args and len(args[key]) == 1:
            args[key] = args[key][0]
    from cytodask.ingest.census import CellxgeneCensusSource

    base_kw: dict[str, Any] = {"uri": args.pop("uri", None)}
    if "organism" in args:
        base_kw["organism"] = args.pop("organism")
    return CellxgeneCensusSource(version or "stable", **base_kw).query(**args)
