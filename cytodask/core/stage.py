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

The fingerprint of a stage is a hash of its class, code ``version``,
``params()``, the fingerprints of its upstream stages and of its external
input files; the runner (:mod:`cytodask.core.runner`) decides from it what
is complete, partial or stale.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import dask

from cytodask.core.config import Config
from cytodask.core.fingerprint import file_fingerprint, hash_obj
from cytodask.core.store import StageState


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

    def record(self, index: int, info: dict[str, Any] | None = None) -> dict[str, Any]:
        """Write block ``index``'s completion record; returns ``info`` with the block index."""
        info = {"block": index, **(info or {})}
        self.state.record_block(index, self.fingerprint, info)
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

    def __init__(self, name: str, *, inputs: tuple[str, ...] | list[str] = ()) -> None:
        self.name = name
        self.inputs = tuple(inputs)

    # -- identity ---------------------------------------------------------
    def params(self) -> dict[str, Any]:
        """Parameters that change the outputs (JSON-able)."""
        return {}

    def external_inputs(self) -> dict[str, Path]:
        """Files outside the result store that the outputs depend on."""
        return {}

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
                "stage": f"{type(self).__module__}.{type(self).__qualname__}",
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

    def cleanup(self, ctx: StageContext) -> None:  # noqa: B027 (an optional hook, a no-op by default)
        """Drop intermediates once the stage is complete (also called on skipped stages)."""

    def describe(self) -> str:
        return f"{self.name} ({type(self).__name__})"
