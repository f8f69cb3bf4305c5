"""Cell-type hierarchies: levels (L1 coarse … L4 fine) from atlas columns or a mapping table.

A :class:`CellTypeHierarchy` names its levels coarse → fine, the obs column of
each level, optionally the parent of every type (from a mapping table) and
labels to exclude. :meth:`CellTypeHierarchy.check` verifies on the cells that
each fine type belongs to exactly one coarse type and reports *all*
conflicts (fine type, the coarse types it meets, cells of each); roll-up of a
fine pseudobulk to a coarse level is in :mod:`cytodask.aggregation.rollup`.

Mapping tables (one lineage per row, level names as header, coarse → fine)::

    # CSV                                  # TOML
    L1,L2,L3                               levels = ["L1", "L2", "L3"]
    Lymphoid,T cell,CD4 T                  columns = {L1 = "cell_type_l1", L2 = "cell_type_l2"}
    Lymphoid,T cell,CD8 T                  exclude = {L3 = ["Doublet"]}
                                           [[map]]
                                           L1 = "Lymphoid"
                                           L2 = "T cell"
                                           L3 = "CD4 T"
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

#: obs columns of the cell-type levels of the CytoAtlas atlases.
ATLAS_LEVELS: dict[str, dict[str, str]] = {
    "cima": {"L1": "cell_type_l1", "L2": "cell_type_l2", "L3": "cell_type_l3", "L4": "cell_type_l4"},
    "inflammation": {"L1": "Level1", "L2": "Level2"},
    "scatlas": {"L1": "cellType1", "L2": "cellType2"},
}


@dataclass(frozen=True)
class Conflict:
    """A fine type met under more than one coarse type (or not under its mapped parent)."""

    fine_level: str
    fine_type: str
    coarse_level: str
    coarse: dict[str, int]  # coarse type -> cells (or table rows) seen with it
    unit: str = "cells"
    table: str | None = None  # the parent the mapping table gives, if any
    columns: tuple[str, str] | None = None  # obs columns of (fine, coarse) levels, when checked on cells

    def __str__(self) -> str:
        seen = ", ".join(f"{c!r} ({n:,} {self.unit})" for c, n in self.coarse.items())
        note = f" [mapping table says {self.table!r}]" if self.table is not None else ""
        f, c = (f" ({self.columns[0]})", f" ({self.columns[1]})") if self.columns else ("", "")
        return f"{self.fine_level}{f} {self.fine_type!r} -> {self.coarse_level}{c}: {seen}{note}"


class HierarchyConflictError(ValueError):
    """Raised with every conflict of a hierarchy (``.conflicts``)."""

    def __init__(self, conflicts: Sequence[Conflict], where: str = "hierarchy") -> None:
        self.conflicts = list(conflicts)
        lines = "\n  ".join(map(str, self.conflicts))
        super().__init__(
            f"{where}: {len(self.conflicts)} cell type(s) do not belong to exactly one coarser type:\n  {lines}\n"
            "Fix the labels or the mapping table so each fine type has one parent, or exclude the offending "
            "labels (exclude={level: [labels]})")


def _trailing_int(name: str) -> int | None:
    m = re.search(r"(\d+)$", name)
    return int(m.group(1)) if m else None


@dataclass(frozen=True)
class CellTypeHierarchy:
    """Cell-type levels, coarse → fine.

    Parameters
    ----------
    levels
        Level names, coarsest first (e.g. ``("L1", "L2", "L3")``).
    columns
        obs column of each level (default: the level name itself).
    parents
        ``{level: {type: parent type one level up}}`` (from a mapping table or
        :meth:`validate`).
    exclude
        ``{level: labels}`` dropped before checks and aggregation.
    """

    levels: tuple[str, ...]
    columns: Mapping[str, str] = field(default_factory=dict)
    parents: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    exclude: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.levels) < 2 or len(set(self.levels)) != len(self.levels):
            raise ValueError(f"levels={self.levels!r}: need at least two distinct level names, coarse -> fine")
        unknown = sorted((set(self.columns) | set(self.parents) | set(self.exclude)) - set(self.levels))
        if unknown:
            raise ValueError(f"unknown level(s) {unknown}; the levels are {list(self.levels)}")
        object.__setattr__(self, "exclude", {k: tuple(map(str, v)) for k, v in self.exclude.items()})

    # -- construction -----------------------------------------------------
    @classmethod
    def from_columns(cls, columns: Mapping[str, str] | Sequence[str], *,
                     exclude: Mapping[str, Iterable[str]] | None = None) -> CellTypeHierarchy:
        """Levels from obs columns: ``{"L1": "Level1", ...}`` or a list coarse → fine (named L1, L2, …)."""
        cols = dict(columns) if isinstance(columns, Mapping) else {f"L{i + 1}": c for i, c in enumerate(columns)}
        return cls(tuple(cols), columns=cols, exclude={k: tuple(v) for k, v in (exclude or {}).items()})

    @classmethod
    def from_atlas(cls, name: str, *, exclude: Mapping[str, Iterable[str]] | None = None) -> CellTypeHierarchy:
        """The levels of a known atlas: ``"cima"``, ``"inflammation"``, ``"scatlas"``."""
        if name.lower() not in ATLAS_LEVELS:
            raise ValueError(f"unknown atlas {name!r}; known: {sorted(ATLAS_LEVELS)}. "
                             "Use CellTypeHierarchy.from_columns({...}) for another atlas")
        return cls.from_columns(ATLAS_LEVELS[name.lower()], exclude=exclude)

    @classmethod
    def detect(cls, obs: pd.DataFrame, *, exclude: Mapping[str, Iterable[str]] | None = None) -> CellTypeHierarchy:
        """The known atlas whose level columns ``obs`` has (at least two of them)."""
        for cols in ATLAS_LEVELS.values():
            present = {lvl: c for lvl, c in cols.items() if c in obs.columns}
            if len(present) >= 2:
                return cls.from_columns(present, exclude=exclude)
        raise ValueError(f"obs has the level columns of no known atlas ({ATLAS_LEVELS}); available columns: "
                         f"{list(obs.columns)}. Use CellTypeHierarchy.from_columns")

    @classmethod
    def from_lineages(cls, levels: Sequence[str], rows: Iterable[Mapping[str, Any]], *,
                      columns: Mapping[str, str] | None = None, exclude: Mapping[str, Iterable[str]] | None = None,
                      where: str = "mapping table") -> CellTypeHierarchy:
        """Parents from lineages (one ``{level: type}`` per row); all conflicts raise together."""
        frame = pd.DataFrame([{lvl: r.get(lvl) for lvl in levels} for r in rows], columns=list(levels))
        frame = frame.replace("", np.nan)
        parents: dict[str, dict[str, str]] = {}
        conflicts = []
        for coarse, fine in pairwise(levels):
            pairs = frame[[fine, coarse]].dropna().astype(str)
            sizes = pairs.groupby([fine, coarse], sort=True).size()
            for ftype, sub in sizes.groupby(level=0, sort=True):
                seen = {str(c): int(n) for (_, c), n in sub.items()}
                if len(seen) > 1:
                    conflicts.append(Conflict(fine, str(ftype), coarse, seen, unit="rows"))
            parents[fine] = dict(pairs.drop_duplicates(fine).itertuples(index=False, name=None))
        if conflicts:
            raise HierarchyConflictError(conflicts, where)
        return cls(tuple(levels), columns=dict(columns or {}), parents=parents,
                   exclude={k: tuple(v) for k, v in (exclude or {}).items()})

    @classmethod
    def from_table(cls, path: str | os.PathLike[str], *, levels: Sequence[str] | None = None,
                   columns: Mapping[str, str] | None = None,
                   exclude: Mapping[str, Iterable[str]] | None = None) -> CellTypeHierarchy:
        """A mapping table, ``.toml`` or ``.csv`` (see the module docstring)."""
        path = Path(path)
        if path.suffix.lower() == ".toml":
            raw = tomllib.loads(path.read_text())
            rows = raw.get("map", [])
            levels = levels or raw.get("levels")
            columns = {**raw.get("columns", {}), **(columns or {})}
            exclude = {**raw.get("exclude", {}), **(exclude or {})}
            names = list(dict.fromkeys(k for r in rows for k in r))
        elif path.suffix.lower() in (".csv", ".tsv"):
            frame = pd.read_csv(path, dtype=str, sep="\t" if path.suffix.lower() == ".tsv" else ",")
            rows, names = frame.to_dict(orient="records"), list(frame.columns)
        else:
            raise ValueError(f"{path}: mapping tables are .toml or .csv/.tsv files")
        if levels is None:
            order = [_trailing_int(n) for n in names]
            if any(o is None for o in order):
                raise ValueError(f"{path}: cannot order levels {names} coarse -> fine; pass levels=[coarse, ..., fine]")
            levels = [n for _, n in sorted(zip(order, names, strict=True))]
        return cls.from_lineages(levels, rows, columns=columns, exclude=exclude, where=str(path))

    # -- lookups ----------------------------------------------------------
    def column(self, level: str) -> str:
        """obs column of ``level``."""
        return self.columns.get(level, level)

    def level_of(self, name: str) -> str | None:
        """The level named ``name`` or stored in column ``name``; None if neither."""
        if name in self.levels:
            return name
        return next((lvl for lvl in self.levels if self.column(lvl) == name), None)

    def resolve_by(self, by: Sequence[str]) -> list[str]:
        """``by`` with level names replaced by their obs columns."""
        return [self.column(b) if b in self.levels else b for b in by]

    def exclude_columns(self) -> dict[str, list[str]]:
        """Exclusions as ``{obs column: labels}``."""
        return {self.column(lvl): list(v) for lvl, v in self.exclude.items() if v}

    def mapping(self, fine: str, coarse: str) -> dict[str, str]:
        """``{fine type: coarse type}`` composed through the levels in between."""
        i, j = self.levels.index(fine), self.levels.index(coarse)
        if j >= i:
            raise ValueError(f"level {coarse!r} is not coarser than {fine!r} (levels, coarse -> fine: {self.levels})")
        out = {t: t for t in self.parents.get(fine, {})}
        for lvl in self.levels[j + 1:i + 1][::-1]:
            if lvl not in self.parents:
                raise ValueError(f"no parents known for level {lvl!r}; give a mapping table or resolve the "
                                 "hierarchy on the cells: hierarchy.validate(adata.obs)")
            out = {t: self.parents[lvl].get(p) for t, p in out.items()}
        return {t: p for t, p in out.items() if p is not None}

    # -- checks -----------------------------------------------------------
    def _cells(self, obs: pd.DataFrame) -> tuple[list[str], pd.DataFrame]:
        present = [lvl for lvl in self.levels if self.column(lvl) in obs.columns]
        frame = obs[[self.column(lvl) for lvl in present]].astype(str).where(
            obs[[self.column(lvl) for lvl in present]].notna().to_numpy())
        frame.columns = present
        drop = np.zeros(len(frame), dtype=bool)
        for lvl, labels in self.exclude.items():
            if lvl in present:
                drop |= frame[lvl].isin(labels).to_numpy()
        return present, frame[~drop]

    def check(self, obs: pd.DataFrame) -> list[Conflict]:
        """Every fine type met with more than one coarse type (adjacent present levels), with cell counts.

        Where a mapping table gives the parent, cells labelled with another
        coarse type are conflicts too.
        """
        present, frame = self._cells(obs)
        conflicts = []
        for coarse, fine in pairwise(present):
            try:
                table = self.mapping(fine, coarse)
            except ValueError:
                table = {}
            sizes = frame[[fine, coarse]].dropna().groupby([fine, coarse], sort=True).size()
            for ftype, sub in sizes.groupby(level=0, sort=True):
                seen = {str(c): int(n) for (_, c), n in sub.items()}
                parent = table.get(str(ftype))
                if len(seen) > 1 or (parent is not None and set(seen) != {parent}):
                    conflicts.append(Conflict(fine, str(ftype), coarse, seen, table=parent,
                                              columns=(self.column(fine), self.column(coarse))))
        return conflicts

    def validate(self, obs: pd.DataFrame, *, where: str = "hierarchy") -> CellTypeHierarchy:
        """Raise :class:`HierarchyConflictError` listing all conflicts; else return the
        hierarchy with parents filled in from the cells where no table gave them."""
        conflicts = self.check(obs)
        if conflicts:
            raise HierarchyConflictError(conflicts, where)
        present, frame = self._cells(obs)
        parents = {k: dict(v) for k, v in self.parents.items()}
        for lvl in present:
            known = parents.get(lvl)
            if known is not None:
                unmapped = sorted(set(frame[lvl].dropna()) - set(known))
                if unmapped:
                    raise ValueError(f"{where}: {lvl} type(s) {unmapped} are not in the mapping table; add them "
                                     f"or exclude them (exclude={{{lvl!r}: [...]}})")
        for coarse, fine in zip(self.levels[:-1], self.levels[1:], strict=True):
            if fine not in parents and fine in present and coarse in present:
                pairs = frame[[fine, coarse]].dropna().drop_duplicates(fine)
                parents[fine] = dict(pairs.itertuples(index=False, name=None))
        return replace(self, parents=parents)


def as_hierarchy(h: CellTypeHierarchy | str | os.PathLike[str], obs: pd.DataFrame | None = None) -> CellTypeHierarchy:
    """A hierarchy from an object, an atlas name (``"cima"``, ``"auto"`` = detect from obs) or a table path."""
    if isinstance(h, CellTypeHierarchy):
        return h
    if isinstance(h, str) and h.lower() == "auto":
        if obs is None:
            raise ValueError("hierarchy='auto' needs obs to detect the level columns")
        return CellTypeHierarchy.detect(obs)
    if isinstance(h, str) and h.lower() in ATLAS_LEVELS:
        return CellTypeHierarchy.from_atlas(h)
    if isinstance(h, (str, os.PathLike)):
        return CellTypeHierarchy.from_table(h)
    raise TypeError(f"hierarchy must be a CellTypeHierarchy, an atlas name ({sorted(ATLAS_LEVELS)}, 'auto') "
                    f"or a mapping table path; got {type(h).__name__}")
