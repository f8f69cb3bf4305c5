"""Cell-type mean profiles per atlas: the unit every cross-atlas comparison starts from.

The input is one long table of activities with a row per atlas × sample × cell type × signature
(``atlas, sample, common, signature, value``): pseudobulk columns of one atlas's activity stage, their
labels mapped to the common vocabulary. A profile is the mean over samples of one (atlas, common type,
signature); samples, not cells, are the unit (ANALYSES.md §1 rule 2).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

LONG_COLUMNS = ["atlas", "sample", "common", "signature", "value"]
SAMPLE_COLUMNS = ("sex",)  # per-sample columns kept through roll_up


def check_long(data: pd.DataFrame, *, columns: Sequence[str] = LONG_COLUMNS, what: str = "activities") -> None:
    """Refuse a table without the long columns or with fewer than two atlases (the fix in the message)."""
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"{what} must be a pandas DataFrame with columns {list(columns)}; got {type(data).__name__}")
    missing = [c for c in columns if c not in data.columns]
    if missing:
        raise ValueError(f"{what} lack column(s) {missing}; it has {list(data.columns)}. Build it with "
                         f"cytodask.cross_atlas.long_activities(...) or name the columns {list(columns)}")
    atlases = sorted(data["atlas"].dropna().astype(str).unique())
    if len(atlases) < 2:
        raise ValueError(f"cross-atlas analysis needs at least two atlases; {what} hold {atlases or 'none'}. "
                         f"Add the result stores of the other atlases")


def cell_type_means(data: pd.DataFrame, *, min_samples: int = 1) -> pd.DataFrame:
    """Mean activity per atlas × common type × signature over samples: ``atlas, common, signature, mean, n``.

    Unmapped labels (``common`` missing) are left out; so are cells with fewer than ``min_samples`` samples.
    """
    check_long(data)
    d = data.dropna(subset=["common", "value"])
    g = d.groupby(["atlas", "common", "signature"], sort=True, observed=True)["value"]
    out = pd.DataFrame({"mean": g.mean(), "n": g.size()}).reset_index()
    return out[out["n"] >= min_samples].reset_index(drop=True)


def shared_matrix(means: pd.DataFrame, signature: str) -> pd.DataFrame:
    """atlases × common types of ``signature``'s means, restricted to types present in every atlas."""
    m = means[means["signature"] == signature].pivot(index="atlas", columns="common", values="mean")
    return m.dropna(axis=1, how="any")


def check_shared(types_by_atlas: dict[str, set[str]]) -> None:
    """Refuse an atlas whose mapped cell types (with their ancestors) meet none of the other atlases'.

    Such an atlas empties every comparison (W and profile correlations use the types all atlases share), so
    it is named with its types and the fix rather than leaving every signature NaN."""
    from cytodask.core.vocabulary import ancestors

    known = {a: set().union(*(ancestors(t) for t in types)) if types else set() for a, types in types_by_atlas.items()}
    for atlas, mine in known.items():
        others = set().union(*(k for a, k in known.items() if a != atlas))
        if not mine & others:
            theirs = sorted(set().union(*(t for a, t in types_by_atlas.items() if a != atlas)))
            raise ValueError(f"atlas {atlas!r} shares no cell type with the other atlases (its common types: "
                             f"{sorted(types_by_atlas[atlas]) or 'none: every label unmapped'}; theirs: {theirs}). "
                             f"Check its cell_type column and its mapping (cytodask.cross_atlas.map_cell_types, a "
                             f"crosswalk CSV), or leave it out of the atlases compared")


def shared_level(types_by_atlas: dict[str, set[str]]) -> dict[str, str]:
    """Each common type → its most specific ancestor (itself included) known in every atlas.

    An atlas knows a type when one of its labels maps to it or to a descendant of it. ``cDC2`` of one
    atlas meets ``DC`` of another as ``DC``; ``Memory CD8 T`` meets a bare ``CD8 T`` as ``CD8 T``. A type
    with no ancestor known everywhere stays itself (and is compared with nothing).
    """
    from cytodask.core.vocabulary import ancestors

    known = [set().union(*(ancestors(t) for t in types)) if types else set() for types in types_by_atlas.values()]
    everywhere = set.intersection(*known) if known else set()
    out = {}
    for t in set().union(*types_by_atlas.values()):
        out[t] = next((a for a in ancestors(t) if a in everywhere), t)
    return out


def roll_up(data: pd.DataFrame, *, level: str = "shared") -> pd.DataFrame:
    """Long activities at the common level the atlases share (``level="shared"``) or as mapped (``"fine"``).

    Labels of one sample that reach one type (rolled up, or several pseudobulk columns of one sample such
    as scAtlas's tissues) are merged: their activities are averaged, weighted by ``n_cells`` when the table
    has it (the pseudobulk's cell counts), so a sample keeps one value per type and signature.
    """
    if level not in ("shared", "fine"):
        raise ValueError(f"level={level!r}: use 'shared' (the deepest types every atlas has) or 'fine'")
    d = data.dropna(subset=["common"])
    if level == "shared":
        types = {a: set(g["common"]) for a, g in d.groupby("atlas", observed=True)}
        d = d.assign(common=d["common"].map(shared_level(types)))
    w = d["n_cells"].astype(float) if "n_cells" in d.columns else pd.Series(1.0, index=d.index)
    d = d.assign(_w=w, _wv=w * d["value"])
    keys = ["atlas", "sample", *[c for c in SAMPLE_COLUMNS if c in d.columns], "common", "signature"]
    g = d.groupby(keys, sort=True, observed=True, dropna=False)
    out = pd.DataFrame({"value": g["_wv"].sum() / g["_w"].sum(), "n_cells": g["_w"].sum()}).reset_index()
    return out
