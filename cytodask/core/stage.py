"""Stages: named, fingerprinted computations over blocks.

A stage turns its inputs (upstream stage outputs, files) into outputs in its
own Zarr group, block by block. Subclasses implement four verbs:

``plan(ctx) -> int``
    Validate inputs, create the output arrays (idempotently) and return the
    number of blocks. Called on every run, before any block.
``block_tasks(ctx, blocks) -> list[Delayed]``
    For ``where = "cluster"`` stages: one lazy task per missing block. Each
    task computes the block, writes it, makes it durable, then calls
    ``ctx.record(i, ...)`` and returns a small dict. Nothing is computed here.
``run_block(ctx, i) -> dict``
    For ``where = "client"`` stages (e.g. streaming a source file in order):
    compute, write and record block ``i`` in this process.
``finalize(ctx) -> dict``
    After all blocks: merge partials, write summaries. Must be idempotent —
    a run killed inside it simply runs it again.

The fingerprint of a stage is a hash of its registered type (or class),
code ``version``, ``params()``, the fingerprints of its upstream stages and
of its external input files; the runner (:mod:`cytodask.core.runner`)
decides from it what is complete, partial or stale.

A stage also *declares* what the rest of cytodask needs to know about it, so
that orchestration, the export and the report loop over the registry
(:mod:`cytodask.core.registry`) instead of naming families:

``obs_columns()``
    Atlas obs columns it reads (checked before anything runs).
``path_params``
    Constructor keys that are file paths: resolved against the spec's
    directory and fingerprinted as external inputs.
``export_tables()`` / ``exports_anndata``
    The tables (name → reader, documented columns) and whether its AnnData
    output is exported.
``report_sections(data, options)``
    Figures and tables it contributes to the run report.
``analysis`` / ``pipeline_stage(plan)``
    The analysis name ``Pipeline`` accepts for it and the stage declaration
    ``Pipeline`` adds for one activity stage.
``from_spec(name, options, ctx)``
    How a spec's ``[[stages]]`` table becomes an instance (default: keyword
    arguments).
"""

from __future__ import annotations

import abc
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import dask

from cytodask.core.config import Config
from cytodask.core.fingerprint import file_fingerprint, hash_obj
from cytodask.core.hooks import ExportOptions, ExportTable, PipelinePlan, SpecContext
from cytodask.core.store import StageState

__all__ = ["ExportOptions", "ExportTable", "PipelinePlan", "SpecContext", "Stage", "StageContext"]

if TYPE_CHECKING:

    from cytodask.core.report import ReportSection


@dataclass
class StageContext:
    """What a stage sees while it runs (picklable: it travels to workers)."""

    name: str
    state: StageState
    fingerprint: str
    config: Config
    inputs: dict[str, Path] = field(default_factory=dict)
    client: Any = field(default=None, repr=False, compare=False)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["client"] = None  # a Client never travels to workers
        return state

    def compute(self, *tasks: Any) -> tuple[Any, ...]:
        """Compute Dask collections on the run's cluster (or in-process without one).

        For a stage's preparatory passes (e.g. gene means) inside ``plan``.
        """
        if self.client is not None:
            return tuple(self.client.compute(list(tasks), sync=True))
        return dask.compute(*tasks, scheduler="sync")

    @property
    def path(self) -> Path:
        """The stage's output directory (a Zarr group)."""
        return self.state.path

    @property
    def fsync(self) -> bool:
        return self.state.fsync

    def record(self, index: int, info: dict[str, Any] | None = None, *,
               files: Iterable[str | os.PathLike[str]] = ()) -> dict[str, Any]:
        """Write block ``index``'s completion record; returns ``info`` with the block index.

        ``files``: chunk files this block alone wrote; their sizes and checksums go into the
        record, so a later run (and ``cytodask verify``) recomputes just a damaged block.
        """
        info = {"block": index, **(info or {})}
        self.state.record_block(index, self.fingerprint, info, files=files)
        return info

    def input(self, name: str) -> Path:
        """Directory of upstream stage ``name``; error naming the missing dependency."""
        try:
            return self.inputs[name]
        except KeyError:
            raise KeyError(
                f"stage {self.name!r} needs the output of stage {name!r}, which is not among its inputs "
                f"({sorted(self.inputs)}); add it to the stage's inputs"
            ) from None


class Stage(abc.ABC):
    """Base class of every pipeline stage.

    Parameters
    ----------
    name
        Unique name in the rebuild (also the directory name in the result store).
    inputs
        Names of upstream stages whose outputs this stage reads.
    """

    version: ClassVar[str] = "1"
    where: ClassVar[Literal["cluster", "client"]] = "cluster"
    #: Set by :func:`cytodask.core.registry.register_stage`: the spec ``type``.
    type_name: ClassVar[str | None] = None
    #: Analysis name ``Pipeline(analyses=[...])`` accepts for this stage type, and aliases.
    analysis: ClassVar[str | None] = None
    analysis_aliases: ClassVar[tuple[str, ...]] = ()
    #: Constructor keys that are file paths (resolved against the spec, fingerprinted).
    path_params: ClassVar[tuple[str, ...]] = ()
    #: Whether the export stage writes this stage's AnnData output (.h5ad / .zarr).
    exports_anndata: ClassVar[bool] = False
    #: Keys a spec may set (``None``: every keyword of ``__init__`` but ``name``).
    spec_keys: ClassVar[tuple[str, ...] | None] = None

    def __init__(self, name: str, *, inputs: tuple[str, ...] | list[str] = ()) -> None:
        self.name = name
        self.inputs = tuple(inputs)
        self.upstream: dict[str, Stage] = {}

    # -- declarations -------------------------------------------------------
    @classmethod
    def from_spec(cls, name: str, options: dict[str, Any], ctx: SpecContext) -> Stage:
        """Build an instance from a spec's ``[[stages]]`` table (``options`` = its keys but name/type)."""
        return cls(name, **options)

    @classmethod
    def pipeline_stage(cls, plan: PipelinePlan) -> dict[str, Any] | None:
        """The stage declaration ``Pipeline`` adds for ``plan.activity`` (``None``: nothing to add)."""
        raise NotImplementedError(f"stage type {cls.type_name or cls.__name__} has no Pipeline analysis")

    def obs_columns(self) -> list[str]:
        """Atlas obs columns this stage reads (checked before a rebuild starts)."""
        return []

    def export_tables(self) -> list[ExportTable]:
        """Tables this stage offers to the export stage."""
        return []

    def report_sections(self, data: Path, options: Mapping[str, Any]) -> list[ReportSection]:
        """Figures and tables for the run report, from the stage's complete output at ``data``."""
        return []

    def groups(self) -> list[str]:
        """obs columns whose values define the rows of the output (default: those of the first input)."""
        first = self.upstream.get(self.inputs[0]) if self.inputs else None
        return first.groups() if first is not None else []

    def bind(self, upstream: Mapping[str, Stage]) -> None:
        """Receive the upstream stage objects (called once the rebuild's stages are known)."""
        self.upstream = {k: upstream[k] for k in self.inputs if k in upstream}

    # -- identity ---------------------------------------------------------
    def params(self) -> dict[str, Any]:
        """Parameters that change the outputs (JSON-able)."""
        return {}

    def external_inputs(self) -> dict[str, Path]:
        """Files outside the result store that the outputs depend on (default: the ``path_params`` set)."""
        return {k: Path(getattr(self, k)) for k in self.path_params if getattr(self, k, None)}

    @classmethod
    def identity(cls) -> str:
        """What fingerprints call this stage type: its registered name (stable when code moves)."""
        return f"cytodask.stages:{cls.type_name}" if cls.type_name else f"{cls.__module__}.{cls.__qualname__}"

    def fingerprint(self, upstream: dict[str, str], *, full_hash: bool = False) -> str:
        """Hash of code version, parameters, upstream fingerprints and input files."""
        files = {}
        for key, path in self.external_inputs().items():
            try:
                files[key] = file_fingerprint(path, full=full_hash)
            except FileNotFoundError:
                raise FileNotFoundError(f"stage {self.name!r}: {key} file {path} does not exist") from None
        return hash_obj(
            {
                "stage": self.identity(),
                "version": self.version,
                "params": self.params(),
                "upstream": {k: upstream[k] for k in self.inputs},
                "files": files,
            }
        )

    # -- verbs ------------------------------------------------------------
    @abc.abstractmethod
    def plan(self, ctx: StageContext) -> int:
        """Prepare outputs and return the number of blocks."""

    def block_tasks(self, ctx: StageContext, blocks: list[int]) -> list[Any]:
        """Lazy tasks (``dask.delayed``) computing, writing and recording ``blocks``."""
        raise NotImplementedError(f"stage {type(self).__name__} runs on the client; use run_block")

    def run_block(self, ctx: StageContext, index: int) -> dict[str, Any]:
        """Compute, write and record block ``index`` in this process."""
        raise NotImplementedError(f"stage {type(self).__name__} runs on the cluster; use block_tasks")

    def finalize(self, ctx: StageContext) -> dict[str, Any]:
        """Merge after all blocks are done; idempotent. Returns a summary for the manifest."""
        return {}

    def prepare(self) -> None:  # noqa: B027 (an optional hook, a no-op by default)
        """Fetch or check what the stage reads from outside the result store, before any stage of the run
        starts (e.g. download a named signature), so a missing input fails the run before any work."""

    def cleanup(self, ctx: StageContext) -> None:  # noqa: B027 (an optional hook, a no-op by default)
        """Drop intermediates once the stage is complete (also called on skipped stages)."""

    def describe(self) -> str:
        return f"{self.name} ({type(self).__name__})"
