"""What the disease stages share: reading their inputs, persisting one-block tables, checking columns."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anndata
import dask
import pandas as pd
import zarr

from cytodask.core.atomic import fsync_tree
from cytodask.core.integrity import tree_files
from cytodask.core.stage import Stage, StageContext
from cytodask.core.store import StageState
from cytodask.core.tables import write_table


def read_obs(src: str | Path) -> pd.DataFrame:
    """obs of an upstream activity stage's AnnData (without reading X)."""
    return anndata.io.read_elem(zarr.open_group(str(src), mode="r")["obs"])


def check_obs(stage: str, upstream: str, obs: pd.DataFrame, columns: list[str | None]) -> None:
    """A ValueError naming the stage, the upstream stage and the columns missing from its samples."""
    missing = [c for c in columns if c is not None and c not in obs.columns]
    if missing:
        raise ValueError(f"stage {stage!r}: column(s) {missing} are not in the samples of {upstream!r}; available: "
                         f"{list(obs.columns)} (carry per-sample columns through the pseudobulk stage with carry=)")


def persist_tables(state: StageState, fingerprint: str, tables: Mapping[str, pd.DataFrame]) -> dict[str, Any]:
    """A one-block stage's tables (``table`` first, then named ones) into its group: write, make durable, record."""
    names = list(tables)
    root = write_table(state.path, tables[names[0]])
    for name in names[1:]:
        write_table(root, tables[name], name=name)
    files = fsync_tree(state.path) if state.fsync else sorted(tree_files(state.path))
    state.record_block(0, fingerprint, {"block": 0, "rows": int(len(tables[names[0]]))}, files=files)
    return {"block": 0}


def _one_block(compute: Any, state: StageState, fingerprint: str, src: str, params: dict[str, Any]
               ) -> dict[str, Any]:
    return persist_tables(state, fingerprint, compute(src, **params))


class TableStage(Stage):
    """A one-block stage whose module-level ``compute(src, **params) -> {name: DataFrame}`` makes its tables.

    Subclasses set :attr:`compute` (a picklable module-level function), ``params()`` and
    ``needed_columns()`` (obs columns of an activity input; empty for a table input).
    """

    compute: Any = None

    def needed_columns(self) -> list[str | None]:
        return []

    def obs_columns(self) -> list[str]:
        return [c for c in self.needed_columns() if c is not None]

    def plan(self, ctx: StageContext) -> int:
        if self.needed_columns():
            check_obs(self.name, self.inputs[0], read_obs(ctx.input(self.inputs[0])), self.needed_columns())
        return 1

    def task_params(self) -> dict[str, Any]:
        """Keywords of ``compute``: :meth:`params` plus settings that do not change the outputs."""
        return self.params()

    def block_tasks(self, ctx: StageContext, blocks: list[int]) -> list[Any]:
        return [dask.delayed(_one_block, pure=True)(
            type(self).compute, ctx.state, ctx.fingerprint, str(ctx.input(self.inputs[0])), self.task_params(),
            dask_key_name=f"{self.type_name}-{ctx.name}-{ctx.fingerprint[:8]}")]
