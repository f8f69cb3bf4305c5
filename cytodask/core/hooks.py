"""What a stage tells the rest of cytodask, and what it is told back.

Value types of the stage declarations (:class:`cytodask.core.stage.Stage`):
the tables a stage exports (:class:`ExportTable`, read with
:class:`ExportOptions`), what a spec gives a stage type while it builds one
(:class:`SpecContext`), and what ``Pipeline`` knows when it asks a stage type
for its stage (:class:`PipelinePlan`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cytodask.core.config import Config

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class ExportOptions:
    """What the export stage tells each table reader.

    Attributes
    ----------
    cell_type
        obs column naming the cell type of activity samples (by-cell-type tables);
        ``None``: each stage's own (its first grouping column, :meth:`Stage.groups`).
    signature_type
        Label replacing the stages' own signature name in the tables (``None``: keep).
    """

    cell_type: str | None = None
    signature_type: str | None = None


@dataclass(frozen=True)
class ExportTable:
    """A table a stage offers to the export stage.

    Attributes
    ----------
    name
        File stem in the export directory (``differential`` → ``differential.parquet``).
    read
        ``read(data_path, options) -> DataFrame``: a picklable module-level function
        (it runs on a worker) reading the stage's result store.
    columns
        The documented schema: these columns come first, in this order.
    description
        One line for the README/CONTRIBUTING schema list and the export manifest.
    json_view
        ``(file stem, make)``: the JSON export is ``make(table)`` written as
        ``<stem>.json`` (a view shaped for the web atlas) instead of the default
        ``{columns, records}`` document named after the table.
    """

    name: str
    read: Callable[[Path, ExportOptions], pd.DataFrame]
    columns: tuple[str, ...] = ()
    description: str = ""
    json_view: tuple[str, Callable[[pd.DataFrame], Any]] | None = None


@dataclass(frozen=True)
class SpecContext:
    """What a spec gives a stage type while it builds an instance (see :meth:`Stage.from_spec`)."""

    spec_path: Path
    config: Config
    source: Callable[[], Any]  # opens the spec's source on first use


@dataclass
class PipelinePlan:
    """What ``Pipeline.process`` knows when it adds analysis stages for one activity stage.

    Attributes
    ----------
    activity
        Name of the activity stage the analysis reads.
    signature
        Signature tag (``CytoSig``, ``SecAct``, a file stem).
    level
        obs column of the aggregation level (``None``: whole samples).
    sample
        obs column of the independent unit (sample/donor).
    columns
        Atlas obs columns.
    obs
        ``obs()`` of the source (loaded on first use).
    options
        The keyword options of ``Pipeline.process`` (``condition``, ``case``,
        ``control``, ``variables``, …) and analysis-specific ones.
    """

    activity: str
    signature: str
    level: str | None
    sample: str
    columns: list[str]
    obs: Callable[[], pd.DataFrame]
    options: Mapping[str, Any]
    carry: list[str] = field(default_factory=list)

    def column(self, key: str, candidates: tuple[str, ...], what: str) -> str:
        """The obs column named by option ``key``, else the first of ``candidates`` present (:func:`find_column`)."""
        return find_column(self.columns, self.options.get(key), candidates, what=what, key=key)

    def needs(self, *columns: str) -> None:
        """Ask ``Pipeline`` to carry these per-sample atlas columns through the pseudobulk."""
        self.carry.extend(c for c in columns if c and c not in self.carry)


def find_column(columns: list[str], wanted: str | None, candidates: tuple[str, ...], *, what: str, key: str) -> str:
    """``wanted`` if given (it must be a column), else the first of ``candidates`` in ``columns``.

    Errors name the missing column, the columns available and the option ``key`` to pass.
    """
    if wanted is not None:
        if wanted not in columns:
            raise ValueError(f"{what} column {wanted!r} is not in obs; available: {columns}")
        return str(wanted)
    for c in candidates:
        if c in columns:
            return c
    raise ValueError(f"no {what} column found (looked for {list(candidates)}); pass {key}=... "
                     f"naming one of {columns}")
