"""The pseudobulk stage: per-block partials persisted, merged by gene chunks (resumable).

Each block of cells contributes the partials of the groups present in it
(:func:`~cytodask.aggregation.kernels.partials.block_partial`: sums by a sparse
indicator product and, with ``stats``, counts, centred and raw sums of
squares, per-group "all integers" flags and non-zero counts), persisted under
``partials.zarr`` before its completion record (an integer block's ``M2`` is
not stored: it is rebuilt bit for bit from its ``(n, S, Σx²)``). The merge reads the partials
gene chunk by gene chunk (memory: groups × chunk), in block order — sums
added, moments merged with Chan, Golub & LeVeque (1979) — so the result is
identical for any worker count and scheduling; sums, means, non-zero counts
and, for integer data, variances (exact ``(n Q − S²) / (n (n − 1))`` from
``(n, S, Q = Σx²)``, see :mod:`cytodask.aggregation.kernels.exact`) are identical
for any block size too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dask
import numpy as np
import zarr

from cytodask.aggregation.groups import group_codes, group_obs, group_table, missing_columns_error
from cytodask.aggregation.inputs import read_obs
from cytodask.aggregation.kernels import Normalize, check_stats, integer_m2, normalize_sums
from cytodask.aggregation.kernels.partials import (
    ROW_FLAGS,
    block_partial,
    finish_layers,
    fold,
    merge_width,
    zeros_like,
)
from cytodask.core.anndata_zarr import dense_array, layers_group, write_frame_parts
from cytodask.core.atomic import remove_tree
from cytodask.core.backend import array_module, run_backend, to_numpy
from cytodask.core.registry import register_stage
from cytodask.core.stage import Stage, StageContext
from cytodask.core.store import StageState, fsync_zarr_region
from cytodask.ingest.atlas import device_block, open_atlas

_MOMENTS = ("n", "m2", "sq", "integral", "nnz")  # persisted per block besides groups and sum, as present
_PER_GROUP = ("n", *ROW_FLAGS)  # 1-D partials (one value per group), read whole by the merge


def _partials(state: StageState) -> Path:
    """Per-block partial sums live with the bookkeeping, outside the output store."""
    return state.meta_dir / "partials.zarr"


def _block(x_block: Any, state: StageState, index: int, start: int, stop: int, fingerprint: str,
           stats: tuple[str, ...] = ("sum",), backend: str = "numpy") -> dict[str, Any]:
    x_block = device_block(x_block, backend)  # the run's backend: segment sums on the GPU for "cupy"
    xp = array_module(x_block)
    part = zarr.open_group(str(_partials(state)), mode="r+")
    codes = part["cell_group"][start:stop]
    p = block_partial(x_block, codes, stats, xp)
    present = p["groups"]
    grp = part.require_group(f"b{index:06d}")
    arrays = {"groups": present, "sum": to_numpy(p["sum"])}
    if stats != ("sum",):  # moments: per-block counts and, as needed, M2, Σx², integral flags, non-zero counts
        derived = bool(p.get("m2_derived"))  # M2 = integer_m2(n, S, Q) exactly: rebuilt by the merge, not stored
        arrays.update({k: to_numpy(p[k]) for k in _MOMENTS if k in p and not (k == "m2" and derived)})
    written = []
    for key, value in arrays.items():
        chunks = value.shape if value.ndim == 1 else (max(1, value.shape[0]), min(max(1, value.shape[1]), 4096))
        arr = grp.create_array(key, shape=value.shape, dtype=value.dtype, overwrite=True,
                               chunks=tuple(max(1, c) for c in chunks))
        if present.size:
            arr[...] = value
            written.append(arr)
    if state.fsync:
        for arr in written:
            fsync_zarr_region(arr, tuple(slice(None) for _ in arr.shape))
    state.record_block(index, fingerprint, {"block": index, "groups": int(present.size)})
    return {"block": index, "groups": int(present.size)}


@register_stage("pseudobulk")
class PseudobulkStage(Stage):
    """Sum counts per group of obs columns; normalize; keep raw sums in ``layers/counts``.

    Output (AnnData Zarr): obs = group keys + ``n_cells`` (+ ``carry`` columns),
    var = atlas var, X = normalized sums (float32), ``layers/counts`` = sums.

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
    stats
        Any of ``"sum"``, ``"mean"``, ``"var"``, ``"count_nonzero"``: extra layers
        ``mean``, ``var`` (ddof = 1, as ``scanpy.get.aggregate``: for integer
        counts exact from ``(n, S, Σx²)``, identical for any block size; else
        per-block ``(n, S, M2)`` partials merged with Chan, Golub & LeVeque
        1979) and ``count_nonzero``. The default ``("sum",)`` writes ``counts`` only.
    """

    version = "1"
    #: Version of the variance partials (``sq`` and ``integral`` persisted, exact integer variance);
    #: in ``params()`` only when ``var`` is asked for, so other stages keep their fingerprints.
    var_version = 2

    def __init__(self, name: str, *, inputs: tuple[str, ...], by: list[str], carry: list[str] | None = None,
                 min_cells: int = 10, normalize: Normalize = "log2cp1e5",
                 exclude: dict[str, list[str]] | None = None,
                 stats: tuple[str, ...] | list[str] = ("sum",)) -> None:
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
        self.stats = check_stats(("sum", *([stats] if isinstance(stats, str) else stats)))
        normalize_sums(np.zeros((1, 1)), np.ones(1), normalize, np)  # validate the method name early

    def obs_columns(self) -> list[str]:
        """Atlas obs columns this stage reads (checked before a rebuild starts)."""
        return [*self.by, *self.carry, *self.exclude]

    def groups(self) -> list[str]:
        """The grouping columns: each output row is one combination of their values."""
        return list(self.by)

    def params(self) -> dict[str, Any]:
        return {"by": self.by, "carry": self.carry, "min_cells": self.min_cells,
                "normalize": self.normalize, "exclude": self.exclude,
                # only when not the default, so existing stages keep their fingerprints
                **({"stats": list(self.stats)} if self.stats != ("sum",) else {}),
                # var partials changed layout (sq, integral): a var run made by older code is stale
                **({"var_version": self.var_version} if "var" in self.stats else {})}

    def _atlas(self, ctx: StageContext) -> Any:
        return open_atlas(ctx.input(self.inputs[0]))

    def plan(self, ctx: StageContext) -> int:
        atlas = self._atlas(ctx)
        obs = read_obs(atlas.path)  # label columns only: cell names are never needed
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
            task(xb[i], ctx.state, i, *atlas.block_bounds(i), ctx.fingerprint, self.stats, run_backend(),
                 dask_key_name=f"pseudobulk-{ctx.name}-{i}-{ctx.fingerprint[:8]}")
            for i in blocks
        ]

    def finalize(self, ctx: StageContext) -> dict[str, Any]:
        atlas = self._atlas(ctx)
        obs = read_obs(atlas.path)
        root = zarr.open_group(str(ctx.path), mode="a", zarr_format=3)
        part = zarr.open_group(str(_partials(ctx.state)), mode="r")
        codes, table, n_cells, kept, report = group_table(obs, self.by, min_cells=self.min_cells,
                                                          exclude=self.exclude, where=f"stage {self.name!r}")
        out_obs = group_obs(obs, codes, table, n_cells, kept, self.by, self.carry, self.name)
        n_vars = atlas.n_vars
        extra = [k for k in ("mean", "var", "count_nonzero") if k in self.stats]
        chunk = merge_width(n_vars, len(table), self.stats)
        for key in ("X", "layers"):
            if key in root:
                del root[key]
        layers = layers_group(root)
        shape, chunks = (kept.size, n_vars), (kept.size, chunk)
        out = {"counts": dense_array(layers, "counts", shape=shape, chunks=chunks)}
        for key in extra:
            out[key] = dense_array(layers, key, shape=shape, chunks=chunks,
                                   dtype=np.int64 if key == "count_nonzero" else np.float64)
        xarr = dense_array(root, "X", shape=shape, chunks=chunks, dtype=np.float32)
        blocks = sorted(part.group_keys())
        totals = np.zeros(kept.size, dtype=np.float64)
        for g0 in range(0, n_vars, chunk):
            g1 = min(n_vars, g0 + chunk)
            if extra:
                acc = self._merge_moments(part, blocks, len(table), g0, g1)
                for key, value in finish_layers(acc, kept, self.stats, np).items():
                    out[key][:, g0:g1] = value
                sums = acc["sum"]
            else:
                sums = np.zeros((len(table), g1 - g0), dtype=np.float64)
                for b in blocks:
                    groups = part[b]["groups"][:]
                    if groups.size:  # unique within a block, so fancy-index addition is exact
                        sums[groups] += part[b]["sum"][:, g0:g1]
                out["counts"][:, g0:g1] = sums[kept]
            totals += sums[kept].sum(axis=1)
        counts = out["counts"]
        for g0 in range(0, n_vars, chunk):
            g1 = min(n_vars, g0 + chunk)
            xarr[:, g0:g1] = normalize_sums(counts[:, g0:g1], totals, self.normalize, np).astype(np.float32)
        write_frame_parts(root, obs=out_obs, var=atlas.var)
        if ctx.fsync:
            for arr in (*out.values(), xarr):
                fsync_zarr_region(arr, (slice(None), slice(None)))
        notices = []
        if report["dropped_missing_label"]:
            notices.append(f"{report['dropped_missing_label']} cells with a missing label in {self.by} were left "
                           f"out; give them a label (e.g. 'unknown') in the atlas to keep them")
        if report["n_groups_dropped_min_cells"]:
            notices.append(f"{report['n_groups_dropped_min_cells']} groups with fewer than {self.min_cells} cells "
                           f"were left out (min_cells; listed in the stage summary)")
        return {
            "notices": notices,
            "n_groups": int(kept.size),
            "n_groups_dropped_min_cells": report["n_groups_dropped_min_cells"],
            "dropped_groups": report["dropped_groups"].head(50).to_dict(orient="records"),
            "normalize": self.normalize,
            "dropped_missing_label": report["dropped_missing_label"],
            "dropped_excluded": report["dropped_excluded"],
        }

    @staticmethod
    def _merge_moments(part: zarr.Group, blocks: list[str], n_groups: int, g0: int, g1: int) -> dict[str, Any]:
        """Genes ``[g0, g1)`` of every group: block partials folded in block order (:func:`fold`)."""
        acc: dict[str, Any] | None = None
        for b in blocks:
            groups = part[b]["groups"][:]
            if not groups.size:
                continue
            p = {k: (part[b][k][:] if k in _PER_GROUP else part[b][k][:, g0:g1]) for k in ("sum", *_MOMENTS)
                 if k in part[b]}
            if "sq" in p and "m2" not in p:  # an integer block: its M2 was derived from (n, S, Q), see _block
                p["m2"] = integer_m2(p["n"], p["sum"], p["sq"], np)
            if acc is None:
                acc = zeros_like(p, n_groups, np)
            fold(acc, p, groups, np)
        if acc is None:  # plan() guarantees at least one cell in one group
            raise RuntimeError("no block partials to merge; the stage partials are missing or empty")
        return acc

    def cleanup(self, ctx: StageContext) -> None:
        if not ctx.config.checkpoint.keep_partials:
            remove_tree(_partials(ctx.state))
