"""Helpers on cell metadata (``obs``) shared by the families and the orchestration."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd


def constant_columns(obs: pd.DataFrame, by: Sequence[str], candidates: Sequence[str]) -> list[str]:
    """Those of ``candidates`` (obs columns) that are constant within every group of ``by``: the ``carry`` a
    pseudobulk can keep (e.g. the donor of a sample, the level-1 cell type of a level-2 one).

    Rows with a missing key are ignored (the pseudobulk leaves them out); a missing value counts as a value.
    """
    keys = obs[list(by)]
    keep = keys.notna().all(axis=1).to_numpy()
    out = []
    for c in candidates:
        if c in obs.columns and c not in by:
            values = obs.loc[keep, [*by, c]].astype({c: "object"}).fillna({c: "\0missing"})
            if (values.groupby(list(by), observed=True, sort=False)[c].nunique() <= 1).all():
                out.append(c)
    return out
