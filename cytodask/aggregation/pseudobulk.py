"""Pseudobulk as a resumable stage: per-block partial sums, merged by gene chunks.

Each block of cells contributes the sums of the groups present in it (a
sparse indicator product, :func:`~cytodask.aggregation.kernels.group_sums`),
persisted under ``_partials/`` before its completion record. The merge reads
the partials gene chunk by gene chunk (memory: groups × chunk), in block
order, so the result is identical for any worker count and scheduling.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dask
import numpy as np
import pandas as pd
import zarr

from cytodask.aggregation.kernels import Normalize, group_sums, normalize_sums
from cytodask.core.anndata_zarr import dense_array, layers_group, write_frame_parts
from cytodask.core.atomic import remove_tree
from cytodask.core.stage import Stage, StageContext
from cytodask.core.backend import array_module, to_numpy
from cytodask.core.store import StageState, fsync_zarr_region
from cytodask.ingest.atlas import open_atlas

_MERGE_BYTES = 256 * 2**20


def _partials(state: StageState) -> Path:
    """Per-block partial sums live with the bookkeeping, outside the output store."""
    return state.meta_dir / "partials.zarr"


def missing_columns_error(missing: list[str], available: list[str], where: str) -> ValueError:
    return ValueError(
        f"{where}: obs column(s) {missing} do not exist; available columns: {available}. "
        "Fix the column names in the spec"
    )


def group_codes(obs: pd.DataFrame, by: list[str], exclude: dict[str, list[str]] | None = None,
                *, where: str = "pseudobulk") -> tuple[np.ndarray, pd.DataFrame, dict[str, int]]:
    """Group index of every cell (``-1`` = dropped) and the table of group keys.

    Cells with a missing label in any ``by`` column are dropped and counted;
    so are cells whose label is in ``exclude[column]``. Groups are sorted by
    their keys, so codes do not depend on cell order within the atlas.
    """
    missing = [c for c in by if c not in obs.columns]
    if missing:
        raise missing_columns_error(missing, list(obs.columns), where)
    exclude = exclude or {}
    bad = [c for c in exclude if c not in obs.columns]
    if bad:
        raise missing_columns_error(bad, list(obs.columns), f"{where} exclude")
    keys = obs[by].astype(str).where(obs[by].notna().values)
    nan_mask = keys.isna().any(axis=1).to_numpy()
    excl_mask = np.zeros(len(obs), dtype=bool)
    for col, values in exclude.items():
        excl_mask |= obs[col].astype(str).isin([str(v) for v in values]).to_numpy()
    keep = ~(nan_mask | excl_mask)
    table = keys[keep].drop_duplicates().sort_values(by).reset_index(drop=True)
    codes = np.full(len(obs), -1, dtype=np.int64)
    if len(table):
        lookup = pd.MultiIndex.from_frame(table)
        codes[keep] = lookup.get_indexer(pd.MultiIndex.from_frame(keys[keep]))
    return codes, table, {"dropped_missing_label": int(nan_mask.sum()), "dropped_excluded": int((excl_mask & ~nan_mask).sum())}


def _block(x_block: Any, state: StageState, index: int, start: int, stop: int, fingerprint: str) -> dict[str, Any]:
    xp = array_module(x_block)
    part = zarr.open_group(str(_partials(state)), mode="r+")
    codes = part["cell_group"][start:stop]
    present = np.unique(codes[codes >= 0])
    local = np.searchsorted(present, codes)
    local[codes < 0] = -1
    sums = to_numpy(group_sums(x_block, local, present.size, xp))
    grp = part.require_group(f"b{index:06d}")
    g = grp.create_array("groups", shape=present.shape, dtype=np.int64, overwrite=True)
    s = grp.create_array("sum", shape=sums.shape, dtype=np.float64, overwrite=True,
                         chunks=(max(1, sums.shape[0]), min(max(1, sums.shape[1]), 4096)))
    if present.size:
        g[:] = present
        s[:] = sums
        if state.fsync:
            fsync_zarr_region(g, (slice(None),))
            fsync_zarr_region(s, (slice(None), slice(None)))
    state.record_block(index, fingerprint, {"block": index, "groups": int(present.size)})
    return {"block": index, "groups": int(present.size)}


class PseudobulkStage(Stage):
    """Sum counts per group of obs columns; normalise; keep raw sums in ``layers/counts``.

    Output (AnnData Zarr): obs = group keys + ``n_cells`` (+ ``carry`` columns),
    var = atlas var, X = normalised sums (float32), ``layers/counts`` = sums.

    Parameters
    ----------
    by
        obs columns defining groups (e.g. ``["cell_type_l2", "sample"]``).
    carry
        obs columns constant within each group to copy to the output (e.g.
        ``disease``, ``donor``, ``age``); a column that varies inside a group is an error.
    min_cells
        Groups with fewer cells are dropped (listed in the summary).
    normalize
        See :func:`~cytodask.aggregation.kernels.normalize_sums`.
    exclude
        ``{column: [labels]}`` of cells to leave out (e.g. doublets).
    """

    version = "1"

    def __init__(self, name: str, *, inputs: tuple[str, ...], by: list[str], carry: list[str] | None = None,
                 min_cells: int = 10, normalize: Normalize = "log2cp1e5",
                 exclude: dict[str, list[str]] | None = None) -> None:
        super().__init__(name, inputs=inputs)
        if not by:
            raise ValueError(f"stage {name!r}: 'by' needs at least one obs column")
        if min_cells < 1:
            raise ValueError(f"stage {name!r}: min_cells={min_cells} must be ≥ 1")
        self.by = list(by)
        self.carry = [c for c in (carry or []) if c not in self.by]
        self.min_cells = int(min_cells)
        self.normalize = normalize
        self.exclude = dict(exclude or {})
        normalize_sums(np.zeros((1, 1)), np.ones(1), normalize, np)  # validate the method name early

    def obs_columns(self) -> list[str]:
        """Atlas obs columns this stage reads (checked before a rebuild starts)."""
        return [*self.by, *self.carry, *self.exclude]

    def params(self) -> dict[str, Any]:
        return {"by": self.by, "carry": self.carry, "min_cells": self.min_cells,
                "normalize": self.normalize, "exclude": self.exclude}

    def _atlas(self, ctx: StageContext) -> Any:
        return open_atlas(ctx.input(self.inputs[0]))

    def plan(self, ctx: StageContext) -> int:
        atlas = self._atlas(ctx)
        obs = atlas.obs
        missing = [c for c in self.carry if c not in obs.columns]
        if missing:
            raise missing_columns_error(missing, list(obs.columns), f"stage {self.name!r} carry")
        codes, table, dropped = group_codes(obs, self.by, self.exclude, where=f"stage {self.name!r}")
        if not len(table):
            raise ValueError(f"stage {self.name!r}: no cells left to aggregate after dropping {dropped}")
        m = ctx.state.manifest() or {}
        if not m.get("prepared"):
            part = zarr.open_group(str(_partials(ctx.state)), mode="w", zarr_format=3)
            arr = part.create_array("cell_group", shape=codes.shape, dtype=np.int64,
                                    chunks=(atlas.block_cells,), overwrite=True)
            arr[:] = codes
            if ctx.fsync:
                fsync_zarr_region(arr, (slice(None),))
            ctx.state.update(prepared=True, n_groups=len(table), **dropped)
        return atlas.n_blocks

    def block_tasks(self, ctx: StageContext, blocks: list[int]) -> list[Any]:
        atlas = self._atlas(ctx)
        xb = atlas.X.to_delayed().ravel()
        task = dask.delayed(_block, pure=True)
        return [
            task(xb[i], ctx.state, i, *atlas.block_bounds(i), ctx.fingerprint,
                 dask_key_name=f"pseudobulk-{ctx.name}-{i}-{ctx.fingerprint[:8]}")
            for i in blocks
        ]

    def finalize(self, ctx: StageContext) -> dict[str, Any]:
        atlas = self._atlas(ctx)
        obs = atlas.obs
        root = zarr.open_group(str(ctx.path), mode="a", zarr_format=3)
        part = zarr.open_group(str(_partials(ctx.state)), mode="r")
        codes, table, dropped = group_codes(obs, self.by, self.exclude, where=f"stage {self.name!r}")
        n_cells = np.bincount(codes[codes >= 0], minlength=len(table))
        kept = np.nonzero(n_cells >= self.min_cells)[0]
        small = table.assign(n_cells=n_cells).iloc[np.nonzero(n_cells < self.min_cells)[0]]
        if kept.size == 0:
            raise ValueError(
                f"stage {self.name!r}: all {len(table)} groups have fewer than min_cells={self.min_cells} cells "
                f"(largest has {int(n_cells.max())}); lower min_cells or aggregate at a coarser level"
            )
        out_obs = table.iloc[kept].reset_index(drop=True)
        for col in self.carry:
            out_obs[col] = _carry(obs[col], codes, kept, col, self.name)
        out_obs["n_cells"] = n_cells[kept].astype(np.int64)
        out_obs.index = ["|".join(map(str, r)) for r in out_obs[self.by].itertuples(index=False)]
        for col in self.by:
            out_obs[col] = pd.Categorical(out_obs[col])
        remap = np.full(len(table), -1, dtype=np.int64)
        remap[kept] = np.arange(kept.size)
        n_vars = atlas.n_vars
        chunk = max(1, min(n_vars, _MERGE_BYTES // (8 * max(1, len(table)))))
        for key in ("X", "layers"):
            if key in root:
                del root[key]
        counts = dense_array(layers_group(root), "counts", shape=(kept.size, n_vars), chunks=(kept.size, chunk))
        xarr = dense_array(root, "X", shape=(kept.size, n_vars), chunks=(kept.size, chunk), dtype=np.float32)
        blocks = sorted(part.group_keys())
        totals = np.zeros(kept.size, dtype=np.float64)
        for g0 in range(0, n_vars, chunk):
            g1 = min(n_vars, g0 + chunk)
            acc = np.zeros((len(table), g1 - g0), dtype=np.float64)
            for b in blocks:
                groups = part[b]["groups"][:]
                if groups.size:  # unique within a block, so fancy-index addition is exact
                    acc[groups] += part[b]["sum"][:, g0:g1]
            counts[:, g0:g1] = acc[kept]
            totals += acc[kept].sum(axis=1)
        for g0 in range(0, n_vars, chunk):
            g1 = min(n_vars, g0 + chunk)
            xarr[:, g0:g1] = normalize_sums(counts[:, g0:g1], totals, self.normalize, np).astype(np.float32)
        write_frame_parts(root, obs=out_obs, var=atlas.var)
        if ctx.fsync:
            for arr in (counts, xarr):
                fsync_zarr_region(arr, (slice(None), slice(None)))
        return {
            "n_groups": int(kept.size),
            "n_groups_dropped_min_cells": int(len(small)),
            "dropped_groups": small.head(50).to_dict(orient="records"),
            "normalize": self.normalize,
            **dropped,
        }


    def cleanup(self, ctx: StageContext) -> None:
        if not ctx.config.checkpoint.keep_partials:
            remove_tree(_partials(ctx.state))


def _carry(col: pd.Series, codes: np.ndarray, kept: np.ndarray, name: str, stage: str) -> pd.Series:
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
