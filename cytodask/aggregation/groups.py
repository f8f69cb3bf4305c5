"""Groups of cells from obs columns: codes, the group table, drops by ``min_cells``, the output obs.

Input handling shared by the pseudobulk function (:mod:`~cytodask.aggregation.api`),
the stage (:mod:`~cytodask.aggregation.stage`), bootstrap and roll-up. Eager and
on obs only: codes come from the categories, never from one string per cell.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from cytodask.aggregation.hierarchy import CellTypeHierarchy


def missing_columns_error(missing: list[str], available: list[str], where: str) -> ValueError:
    """The error for obs columns that do not exist, listing the available ones."""
    return ValueError(
        f"{where}: obs column(s) {missing} do not exist; available columns: {available}. "
        "Fix the column names in the spec"
    )


def _labels(col: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Code of each cell into the sorted distinct labels of ``col`` as strings (``-1`` = missing).

    Works on the categories, never on one string per cell (an atlas has millions of cells).
    """
    cat = col if isinstance(col.dtype, pd.CategoricalDtype) else col.astype("category")
    names = np.asarray(cat.cat.categories.astype(str)).astype(str)
    uniq, inv = np.unique(names, return_inverse=True)
    raw = cat.cat.codes.to_numpy().astype(np.int64)
    codes = np.where(raw >= 0, inv.ravel()[np.maximum(raw, 0)] if names.size else -1, -1)
    return codes, uniq.astype(object)


def group_codes(obs: pd.DataFrame, by: list[str], exclude: dict[str, list[str]] | None = None,
                *, where: str = "pseudobulk") -> tuple[np.ndarray, pd.DataFrame, dict[str, int]]:
    """Group index of every cell (``-1`` = dropped) and the table of group keys.

    Cells with a missing label in any ``by`` column are dropped and counted;
    so are cells whose label is in ``exclude[column]``. Groups are sorted by
    their keys (as strings), so codes do not depend on cell order within the atlas.
    """
    missing = [c for c in by if c not in obs.columns]
    if missing:
        raise missing_columns_error(missing, list(obs.columns), where)
    exclude = exclude or {}
    bad = [c for c in exclude if c not in obs.columns]
    if bad:
        raise missing_columns_error(bad, list(obs.columns), f"{where} exclude")
    cols = [_labels(obs[c]) for c in by]
    nan_mask = np.zeros(len(obs), dtype=bool)
    for c, _ in cols:
        nan_mask |= c < 0
    excl_mask = np.zeros(len(obs), dtype=bool)
    for col, values in exclude.items():
        c, names = _labels(obs[col])
        values = [str(v) for v in values]
        if names.size:
            excl_mask |= (c >= 0) & np.isin(names.astype(str), values)[np.maximum(c, 0)]
        na = np.nonzero(c < 0)[0]  # missing labels match as their string ("nan", "None")
        excl_mask[na] |= obs[col].iloc[na].astype(str).isin(values).to_numpy()
    keep = ~(nan_mask | excl_mask)
    radix = [max(1, n.size) for _, n in cols]
    kept = np.stack([c[keep] for c, _ in cols], axis=1)
    if float(np.prod(radix, dtype=np.float64)) < 2.0**62:  # one mixed-radix key per cell, first column major
        combined = np.zeros(kept.shape[0], dtype=np.int64)
        for j, r in enumerate(radix):
            combined = combined * r + kept[:, j]
        uniq, inv = np.unique(combined, return_inverse=True)
        rows = np.empty((uniq.size, len(cols)), dtype=np.int64)
        for j in range(len(cols) - 1, -1, -1):
            uniq, rows[:, j] = np.divmod(uniq, radix[j])
    else:
        rows, inv = np.unique(kept, axis=0, return_inverse=True)
    table = pd.DataFrame({col: names[rows[:, j]] for j, (col, (_, names)) in enumerate(zip(by, cols, strict=True))},
                         columns=by)
    codes = np.full(len(obs), -1, dtype=np.int64)
    codes[keep] = inv.ravel()
    report = {"dropped_missing_label": int(nan_mask.sum()), "dropped_excluded": int((excl_mask & ~nan_mask).sum())}
    return codes, table, report


def group_table(obs: pd.DataFrame, by: Sequence[str], *, min_cells: int, exclude: dict[str, list[str]] | None,
                hierarchy: CellTypeHierarchy | None = None, where: str = "pseudobulk"
                ) -> tuple[np.ndarray, pd.DataFrame, np.ndarray, np.ndarray, dict[str, Any]]:
    """Codes, group table, cells per group, kept group ids and the drop report (eager; obs only).

    Raises ``ValueError`` for a missing column (listing the available ones), a
    hierarchy conflict (all of them), or when every group is below ``min_cells``.
    """
    if min_cells < 1:
        raise ValueError(f"{where}: min_cells={min_cells} must be ≥ 1")
    by = [by] if isinstance(by, str) else list(by)
    if not by:
        raise ValueError(f"{where}: 'by' needs at least one obs column, e.g. by=['cell_type', 'sample']")
    exclude = {k: list(v) for k, v in (exclude or {}).items()}
    if hierarchy is not None:
        by = hierarchy.resolve_by(by)
        hierarchy.validate(obs, where=where)
        for col, labels in hierarchy.exclude_columns().items():
            exclude[col] = [*exclude.get(col, []), *labels]
    codes, table, dropped = group_codes(obs, by, exclude, where=where)
    if not len(table):
        raise ValueError(f"{where}: no cells left to aggregate after dropping {dropped}; check exclude= and "
                         "missing labels")
    n_cells = np.bincount(codes[codes >= 0], minlength=len(table))
    kept = np.nonzero(n_cells >= min_cells)[0]
    if kept.size == 0:
        raise ValueError(f"{where}: all {len(table)} groups have fewer than min_cells={min_cells} cells "
                         f"(largest has {int(n_cells.max())}); lower min_cells or aggregate at a coarser level")
    small = table.assign(n_cells=n_cells).iloc[np.nonzero(n_cells < min_cells)[0]].reset_index(drop=True)
    small.index = small.index.astype(str)
    report = {"n_groups_dropped_min_cells": len(small), "dropped_groups": small, **dropped}
    return codes, table, n_cells, kept, {"by": by, **report}


def carry_column(col: pd.Series, codes: np.ndarray, kept: np.ndarray, name: str, stage: str) -> pd.Series:
    """Value of obs column ``col`` in each kept group; ``ValueError`` when it varies within a group."""
    valid = codes >= 0
    frame = pd.DataFrame({"g": codes[valid], "v": col.to_numpy()[valid]})
    n_unique = frame.groupby("g", sort=True)["v"].nunique(dropna=False)
    varying = n_unique[n_unique > 1]
    if len(varying):
        raise ValueError(
            f"stage {stage!r}: carry column {name!r} varies within {len(varying)} group(s); carry only "
            "columns constant per group (per-sample metadata such as disease, donor, age)"
        )
    first = frame.groupby("g", sort=True)["v"].first()
    return pd.Series(first.reindex(kept).to_numpy()).astype(col.dtype)


def group_obs(obs: pd.DataFrame, codes: np.ndarray, table: pd.DataFrame, n_cells: np.ndarray, kept: np.ndarray,
              by: list[str], carry: list[str], stage: str) -> pd.DataFrame:
    """The output ``obs``: one row per kept group (index ``key1|key2``), its keys, ``carry`` columns and ``n_cells``.

    Key columns become categoricals; ``carry`` columns keep their dtype (see :func:`carry_column`;
    ``stage`` names the caller in its error).
    """
    out = table.iloc[kept].reset_index(drop=True)
    for col in carry:
        out[col] = carry_column(obs[col], codes, kept, col, stage)
    out["n_cells"] = n_cells[kept].astype(np.int64)
    out.index = ["|".join(map(str, r)) for r in out[by].itertuples(index=False)]
    for col in by:
        out[col] = pd.Categorical(out[col])
    return out
