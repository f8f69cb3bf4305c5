"""Read a result directory: every stage's output, and the results object of the run that wrote it.

One reader for everything a rebuild or a :class:`~cytodask.Pipeline` call writes to ``DIR``:

>>> res = open_results("results/")                     # doctest: +SKIP
>>> res.stage("pseudobulk_cell_type_l2")              # AnnData (convert, pseudobulk, activity stages)
>>> res.stage("differential_CytoSig_cell_type_l2")   # DataFrame (differential, correlation, … stages)
>>> res.activity, res.differential, res.correlation   # as the Pipeline call returned them

Stage stores of AnnData (atlas, pseudobulk, activity) also open with ``anndata.read_zarr``;
table stores (differential, correlation and plugin tables) do not: read them here (or with
:func:`cytodask.core.tables.read_table`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anndata
import pandas as pd

from cytodask.core.atomic import read_json
from cytodask.core.runner import StageReport
from cytodask.core.store import ResultStore
from cytodask.core.tables import TABLE, read_table

_NOT_ANALYSES = ("convert", "pseudobulk", "activity", "export")


def read_stage(output: str | os.PathLike[str], name: str) -> anndata.AnnData | pd.DataFrame | Path:
    """The output of stage ``name`` of the result directory ``output``.

    Returns
    -------
    AnnData
        For stages that write an AnnData store (convert, pseudobulk, activity).
    DataFrame
        For stages that write a table (differential, correlation, plugin tables); its
        metadata (e.g. the FDR family) in ``.attrs``.
    Path
        For export stages: the directory of exported files (``DIR/exports/<name>``).

    Raises
    ------
    ValueError
        The stage is not complete (the message says how far it got and how to finish it).
    """
    root = Path(output)
    store = ResultStore(root)
    if name not in store.stage_names():
        raise ValueError(f"{root} has no stage {name!r}; its stages: {store.stage_names()}")
    st = store.stage(name).status()
    if st["state"] != "complete":
        raise ValueError(f"stage {name!r} in {root} is {st['state']} ({st['done']} of {st['n_blocks']} blocks); "
                         "run the rebuild (or the Pipeline call) again to finish it")
    data = store.stage_path(name)
    if (data / TABLE).exists():
        return read_table(data)
    if (data / "obs").exists():
        return anndata.read_zarr(data)
    exported = root / "exports" / name
    if exported.exists():
        return exported
    raise ValueError(f"stage {name!r} in {root} wrote neither an AnnData store nor a table; its files are in {data}")


@dataclass
class PipelineResults:
    """What a :class:`~cytodask.Pipeline` run (or a rebuild) produced, as :func:`open_results` reads it back.

    Attributes
    ----------
    output_dir
        The result directory.
    reports
        One :class:`~cytodask.core.runner.StageReport` per stage (reopened: every stage ``skipped``,
        as a repeated call reports it).
    activity
        Activity stage name → activity AnnData (samples × signatures, X = z).
    tables
        Analysis stage type (``differential``, ``correlation``, a plugin's type) → activity stage
        name → that analysis' table.
    """

    output_dir: Path
    reports: list[StageReport]
    activity: dict[str, anndata.AnnData] = field(default_factory=dict)
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def open(cls, output: str | os.PathLike[str], *, reports: list[StageReport] | None = None) -> PipelineResults:
        """The results held in the result directory ``output`` (see :func:`open_results`)."""
        root = Path(os.path.abspath(output))
        saved = read_json(root / "spec.json")
        if saved is None:
            raise ValueError(f"{root} is not a result directory of a finished run (no spec.json); pass the "
                             "output_dir of a Pipeline call or the --output of a rebuild")
        store = ResultStore(root)
        done = set(store.stage_names())
        decl = list(saved["stages"])
        if not any(s["type"] == "convert" for s in decl):  # as core.declarations.build_stages adds it
            decl.insert(0, {"name": "convert", "type": "convert"})
        if reports is None:
            reports = []
            for s in decl:
                m = store.stage(s["name"]).manifest() or {}
                n = int(m.get("n_blocks") or 0)
                reports.append(StageReport(s["name"], m.get("fingerprint", ""), "skipped", n_blocks=n, skipped=n,
                                           summary=m.get("summary", {})))
        res = cls(output_dir=root, reports=reports)
        types = {s["name"]: s["type"] for s in decl}
        for name, kind in types.items():
            if kind == "activity" and name in done:
                res.activity[name] = read_stage(root, name)
        for s in decl:
            acts = [i for i in s.get("inputs", ()) if types.get(i) == "activity"]
            if s["type"] not in _NOT_ANALYSES and acts and s["name"] in done:
                res.tables.setdefault(s["type"], {})[acts[0]] = read_stage(root, s["name"])
        return res

    @property
    def stages(self) -> list[str]:
        """Names of the stages of the run, in order (read any with :meth:`stage`)."""
        return [r.name for r in self.reports]

    def stage(self, name: str) -> anndata.AnnData | pd.DataFrame | Path:
        """The output of stage ``name`` (:func:`read_stage`)."""
        return read_stage(self.output_dir, name)

    @property
    def exports(self) -> Path:
        """``DIR/exports``: one directory of exported files per export stage."""
        return self.output_dir / "exports"

    @property
    def differential(self) -> dict[str, pd.DataFrame]:
        """Activity stage name → its differential table."""
        return self.tables.get("differential", {})

    @property
    def correlation(self) -> dict[str, pd.DataFrame]:
        """Activity stage name → its correlation table."""
        return self.tables.get("correlation", {})


def open_results(output: str | os.PathLike[str]) -> PipelineResults:
    """Open a finished result directory: the same results a ``Pipeline`` call returned for it.

    Parameters
    ----------
    output
        The ``output_dir`` of a :class:`~cytodask.Pipeline` call or the ``--output`` of a rebuild.
    """
    return PipelineResults.open(output)
