"""Write AnnData's on-disk Zarr layout piece by piece (so stages can fill X block by block).

``anndata.read_zarr`` opens any group written with these helpers.
"""

from __future__ import annotations

import warnings
from typing import Any

import anndata
import numpy as np
import pandas as pd
import zarr

_EMPTY = ("obsm", "varm", "obsp", "varp")


def write_elem(group: zarr.Group, key: str, value: Any) -> None:
    """``anndata.io.write_elem`` without zarr's advisory warnings about future defaults."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*autosharding.*")
        warnings.filterwarnings("ignore", message=".*Consolidated metadata.*")
        anndata.io.write_elem(group, key, value)


def write_frame_parts(root: zarr.Group, *, obs: pd.DataFrame, var: pd.DataFrame,
                      uns: dict[str, Any] | None = None) -> None:
    """obs, var, uns and empty obsm/varm/obsp/varp, plus the root's AnnData attributes.

    X and layers are left to the caller (they are written block by block).
    """
    write_elem(root, "obs", obs)
    write_elem(root, "var", var)
    write_elem(root, "uns", uns or {})
    for key in _EMPTY:
        write_elem(root, key, {})
    root.attrs.update({"encoding-type": "anndata", "encoding-version": "0.1.0"})


def layers_group(root: zarr.Group) -> zarr.Group:
    """The ``layers`` group (created empty, with its AnnData encoding)."""
    layers = root.require_group("layers")
    layers.attrs.update({"encoding-type": "dict", "encoding-version": "0.1.0"})
    return layers


def dense_array(parent: zarr.Group, name: str, *, shape: tuple[int, ...], chunks: tuple[int, ...],
                dtype: Any = np.float64) -> zarr.Array:
    """A dense AnnData array (X or a layer) to be filled by region."""
    arr = parent.create_array(name, shape=shape, chunks=chunks, dtype=dtype, overwrite=True)
    arr.attrs.update({"encoding-type": "array", "encoding-version": "0.2.0"})
    return arr
