"""Result tables: tidy DataFrames stored as AnnData-encoded dataframes in a stage's Zarr group.

Every family writes its tables with :func:`write_table` and every reader (the
family, the export, the report) reads them with :func:`read_table`, so a
table's on-disk form is defined once: an ``anndata`` dataframe element (named
``table`` unless told otherwise) whose index is the row number. The table's
``attrs`` (JSON-able metadata such as the family of its FDR correction) travel
with it in the element's Zarr attributes under ``cytodask``.
"""

from __future__ import annotations

import json
import os
from typing import Any

import anndata
import pandas as pd
import zarr

from cytodask.core.anndata_zarr import write_elem

TABLE = "table"
ATTRS = "cytodask"  # the Zarr attribute holding a table's DataFrame.attrs


def write_table(target: str | os.PathLike[str] | zarr.Group, df: pd.DataFrame, *, name: str = TABLE) -> zarr.Group:
    """Write ``df`` (its columns; the index becomes the row number) as element ``name`` of a Zarr group.

    Parameters
    ----------
    target
        A Zarr group, or the path of a stage's data directory: a path is
        opened as a new Zarr v3 group (replacing what is there, as a stage
        writes its result afresh); a group keeps its other elements, so
        several tables can share one.
    df
        The table.
    name
        Element name within the group (default ``"table"``).

    Returns
    -------
    The group written to.
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"write_table needs a pandas DataFrame; got {type(df).__name__} for table {name!r}")
    root = target if isinstance(target, zarr.Group) else zarr.open_group(str(target), mode="w", zarr_format=3)
    write_elem(root, name, df.reset_index(drop=True))
    if df.attrs:
        try:
            json.dumps(df.attrs)
        except TypeError as e:
            raise TypeError(f"table {name!r}: attrs must be JSON-able (strings, numbers, lists, dicts): {e}") from None
        root[name].attrs[ATTRS] = dict(df.attrs)
    return root


def read_table(path: str | os.PathLike[str] | zarr.Group, name: str = TABLE) -> pd.DataFrame:
    """The table ``name`` written by :func:`write_table` into ``path`` (a stage's data path or a group)."""
    root: Any = path if isinstance(path, zarr.Group) else zarr.open_group(str(path), mode="r")
    if name not in root:
        raise FileNotFoundError(f"{path} holds no table {name!r} (elements: {sorted(root)}); "
                                "run the stage that writes it first")  # fmt: skip
    df = anndata.io.read_elem(root[name])
    df.attrs.update(root[name].attrs.get(ATTRS, {}))
    return df
