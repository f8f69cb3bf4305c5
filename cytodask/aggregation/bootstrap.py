"""Bootstrap pseudobulk: B replicates resampling donors, or cells within groups, lazily.

Draws depend only on the seed, the replicate number and the labels — never
on how the atlas is cut into blocks — so the same seed gives the same
replicates at any block size, worker count or order of computation.

``resample="donor"``
    Replicate ``b`` draws ``D`` donors with replacement from the ``D`` donor
    labels (sorted), RNG ``SeedSequence([seed, h(donors)], spawn_key=(b,))``.
    With ``w_bd`` the times donor ``d`` was drawn, the replicate of group ``g``
    is ``R_bg = Σ_d w_bd S_gd``: the sums per (group, donor) are computed once
    (one pass over the cells) and recombined — the same as summing the cells of
    the drawn donors, repeats included.
``resample="cell"``
    Replicate ``b`` draws ``n_g`` cells with replacement among the ``n_g``
    cells of group ``g`` (cells ranked by their order in the atlas). The ranks
    are cut in segments of :data:`SEGMENT`; the draws per segment are
    multinomial, ``SeedSequence([seed, h(label)], spawn_key=(b, 0))``, then
    uniform within segment ``s``, ``spawn_key=(b, s + 1)``: an exact
    resampling with replacement whose draws for any cell range are computed
    from the segments it touches only (:func:`cell_draws` gives the whole draw).

``h`` is the first 8 bytes of SHA-256 of the label(s). Percentile intervals
(Efron & Tibshirani 1993, ch. 13) are :meth:`BootstrapReplicates.interval`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import dask
import dask.array as da
import numpy as np
import pandas as pd

from cytodask.aggregation.graph import aggregate_layers, block_codes, tree_reduce
from cytodask.aggregation.groups import group_codes, group_table, missing_columns_error
from cytodask.aggregation.inputs import as_blocks
from cytodask.aggregation.kernels import Normalize, normalize_sums, weighted_group_sums
from cytodask.core.backend import array_module
from cytodask.core.compat import renamed_kwargs
from cytodask.core.xp import nanquantile

SEGMENT = 1024  #: cells per draw segment (part of the draw contract: changing it changes replicates)
_CHUNK_BYTES = 256 * 2**20


def _key(labels: Sequence[str]) -> int:
    return int.from_bytes(hashlib.sha256("\x1f".join(labels).encode()).digest()[:8], "little")


def donor_draws(seed: int, donors: Sequence[str], b: int) -> np.ndarray:
    """Donor labels drawn (with replacement) for replicate ``b``: ``len(set(donors))`` draws."""
    labels = sorted(set(map(str, donors)))
    rng = np.random.default_rng(np.random.SeedSequence([seed, _key(labels)], spawn_key=(b,)))
    return np.asarray(labels)[rng.integers(0, len(labels), len(labels))]


def _segment_counts(seed: int, key: int, b: int, n: int) -> np.ndarray:
    sizes = np.minimum(SEGMENT, n - np.arange(0, n, SEGMENT))
    rng = np.random.default_rng(np.random.SeedSequence([seed, key], spawn_key=(b, 0)))
    return rng.multinomial(n, sizes / n)


def _segment_draws(seed: int, key: int, b: int, s: int, count: int, n: int) -> np.ndarray:
    rng = np.random.default_rng(np.random.SeedSequence([seed, key], spawn_key=(b, s + 1)))
    return rng.integers(0, min(SEGMENT, n - s * SEGMENT), count)


def cell_draws(seed: int, label: Sequence[str] | str, b: int, n: int) -> np.ndarray:
    """Ranks (0 … n−1, order of the group's cells in the atlas) drawn for replicate ``b``: ``n`` draws.

    ``label`` is the group's key: its values in the ``by`` columns, as strings, in ``by`` order.
    """
    key = _key([label] if isinstance(label, str) else list(label))
    counts = _segment_counts(seed, key, b, n)
    return np.concatenate([s * SEGMENT + _segment_draws(seed, key, b, s, int(c), n) for s, c in enumerate(counts)])


def _cell_weights(codes: np.ndarray, ranks: np.ndarray, keys: np.ndarray, sizes: np.ndarray,
                  seg_counts: dict[int, np.ndarray], seed: int, reps: range) -> np.ndarray:
    """Multiplicity of each cell of a block in replicates ``reps`` (from the segments the block touches)."""
    w = np.zeros((len(reps), codes.size))
    for g in np.unique(codes[codes >= 0]):
        rows = np.nonzero(codes == g)[0]
        r = ranks[rows]
        for s in range(int(r.min()) // SEGMENT, int(r.max()) // SEGMENT + 1):
            sel = (r >= s * SEGMENT) & (r < (s + 1) * SEGMENT)
            for j, b in enumerate(reps):
                draws = _segment_draws(seed, int(keys[g]), b, s, int(seg_counts[g][b, s]), int(sizes[g]))
                w[j, rows[sel]] = np.bincount(draws, minlength=SEGMENT)[r[sel] - s * SEGMENT]
    return w


def _cell_part(x: Any, codes: np.ndarray, ranks: np.ndarray, keys: np.ndarray, sizes: np.ndarray,
               seg_counts: dict[int, np.ndarray], seed: int, reps: range) -> dict[str, Any]:
    present = np.unique(codes[codes >= 0])
    local = np.where(codes >= 0, np.searchsorted(present, codes), -1)
    w = _cell_weights(codes, ranks, keys, sizes, {g: seg_counts[g] for g in present}, seed, reps)
    xp = array_module(x)
    return {"groups": present, "sum": weighted_group_sums(x, xp.asarray(local), w, present.size, xp)}


def _sum_merge(*parts: dict[str, Any]) -> dict[str, Any]:
    groups = np.unique(np.concatenate([p["groups"] for p in parts]))
    xp = array_module(parts[0]["sum"])
    out = xp.zeros((parts[0]["sum"].shape[0], groups.size, parts[0]["sum"].shape[2]))
    for p in parts:  # groups unique within a part: fancy-index addition is exact
        out[:, xp.asarray(np.searchsorted(groups, p["groups"]))] += p["sum"]
    return {"groups": groups, "sum": out}


def _dense(root: dict[str, Any], n_groups: int) -> Any:
    xp = array_module(root["sum"])
    out = xp.zeros((root["sum"].shape[0], n_groups, root["sum"].shape[2]))
    out[:, xp.asarray(root["groups"])] = root["sum"]
    return out


def _divide(c: Any, n: Any) -> Any:
    return c / array_module(c).asarray(n)


def _quantiles(a: Any, q: list[float]) -> Any:
    return nanquantile(a, q, array_module(a), axis=0)  # CuPy has no nanquantile: core.xp's sort-based one


def _donor_reps(base: Any, pair_group: np.ndarray, w: np.ndarray, n_groups: int) -> Any:
    return weighted_group_sums(base, pair_group, w, n_groups, array_module(base))


def _donor_replicates(src: Any, codes: np.ndarray, groups: pd.DataFrame, donor: str, seed: int, n_boot: int,
                      chunks: list[range]) -> tuple[da.Array, np.ndarray]:
    """``R_bg = Σ_d w_bd S_gd`` from the (group, donor) sums, one pass over the cells; and cells per replicate."""
    by_cols = list(groups.columns)
    pcodes, pairs, _ = group_codes(src.obs, [*by_cols, donor], where="bootstrap")
    pcodes = np.where(codes >= 0, pcodes, -1)
    used = np.unique(pcodes[pcodes >= 0])
    pairs = pairs.iloc[used].reset_index(drop=True)
    pcodes = np.where(pcodes >= 0, np.searchsorted(used, pcodes), -1)
    lookup = pd.MultiIndex.from_frame(groups.reset_index(drop=True))
    pair_group = lookup.get_indexer(pd.MultiIndex.from_frame(pairs[by_cols]))
    donors = sorted(set(src.obs[donor][codes >= 0].dropna().astype(str)))
    pair_donor = np.searchsorted(donors, pairs[donor].astype(str).to_numpy())
    w = np.stack([np.bincount(np.searchsorted(donors, donor_draws(seed, donors, b)), minlength=len(donors))
                  for b in range(n_boot)]).astype(np.float64)
    n_pair = np.bincount(pcodes[pcodes >= 0], minlength=len(pairs))
    n_groups = len(groups)
    n_cells = np.stack([np.bincount(pair_group, weights=w[b, pair_donor] * n_pair, minlength=n_groups)
                        for b in range(n_boot)]).astype(np.int64)
    base = aggregate_layers(src.x, pcodes, np.arange(len(pairs)), ("sum",))["counts"].rechunk({0: -1})
    meta = array_module(base).empty((0, 0, 0), dtype=np.float64)
    rows = []
    for reps in chunks:
        wr = w[reps.start:reps.stop][:, pair_donor]
        rows.append(da.concatenate([
            da.from_delayed(dask.delayed(_donor_reps, pure=True)(blk, pair_group, wr, n_groups),
                            shape=(len(reps), n_groups, width), dtype=np.float64, meta=meta)
            for blk, width in zip(base.to_delayed().ravel(), base.chunks[1], strict=True)], axis=2))
    return da.concatenate(rows, axis=0), n_cells


def _cell_replicates(x: da.Array, codes: np.ndarray, groups: pd.DataFrame, sizes: np.ndarray, seed: int,
                     n_boot: int, chunks: list[range]) -> da.Array:
    """Per replicate chunk: weighted sums of each block (multiplicities from the segments it touches), summed."""
    n_groups = len(groups)
    ranks = pd.Series(codes).groupby(codes).cumcount().to_numpy()  # order of each cell within its group
    keys = np.array([_key(list(r)) for r in groups.astype(str).itertuples(index=False)], dtype=np.uint64)
    seg_counts = {g: np.stack([_segment_counts(seed, int(keys[g]), b, int(sizes[g])) for b in range(n_boot)])
                  for g in range(n_groups)}
    bounds = np.cumsum((0, *x.chunks[0]))
    meta = array_module(x).empty((0, 0, 0), dtype=np.float64)
    out = []
    for reps in chunks:
        parts = []
        for i, (blk, c) in enumerate(zip(x.to_delayed().ravel(), block_codes(x, codes), strict=True)):
            mine = {g: seg_counts[g] for g in np.unique(c[c >= 0])}
            parts.append(dask.delayed(_cell_part, pure=True)(blk, c, ranks[bounds[i]:bounds[i + 1]], keys, sizes,
                                                             mine, seed, reps))
        root = dask.delayed(_dense, pure=True)(tree_reduce(parts, _sum_merge), n_groups)
        out.append(da.from_delayed(root, shape=(len(reps), n_groups, x.shape[1]), dtype=np.float64, meta=meta))
    return da.concatenate(out, axis=0)


@dataclass
class BootstrapReplicates:
    """Lazy bootstrap replicates of a pseudobulk.

    Attributes
    ----------
    counts
        Dask array (B × groups × genes) of summed counts per replicate.
    n_cells
        (B × groups) cells per replicate group (repeats counted).
    obs, var
        Group keys with the observed ``n_cells``; genes.
    """

    counts: da.Array
    n_cells: np.ndarray
    obs: pd.DataFrame
    var: pd.DataFrame
    resample: str
    seed: int

    def normalized(self, method: Normalize = "log2cp1e5") -> da.Array:
        """Replicates normalized like the pseudobulk X (totals over all genes of each replicate group)."""
        totals = self.counts.sum(axis=2, keepdims=True)

        def norm(c: Any, t: Any) -> Any:
            xp = array_module(c)
            flat = normalize_sums(c.reshape(-1, c.shape[2]), t.reshape(-1), method, xp)
            return flat.reshape(c.shape)

        return da.map_blocks(norm, self.counts, totals, dtype=np.float64, meta=self.counts._meta)

    def mean(self) -> da.Array:
        """Mean counts per cell of each replicate group (``S / n``; NaN where a replicate drew no cell)."""
        n = da.from_array(np.where(self.n_cells > 0, self.n_cells, np.nan)[:, :, None],
                          chunks=(self.counts.chunks[0], -1, -1))
        return da.map_blocks(_divide, self.counts, n, dtype=np.float64, meta=self.counts._meta)

    def interval(self, level: float = 0.95, *, statistic: Literal["normalized", "mean"] = "normalized",
                 normalize: Normalize = "log2cp1e5") -> tuple[da.Array, da.Array]:
        """Percentile interval ``[q_{α/2}, q_{1−α/2}]`` over replicates (lazy; groups × genes each)."""
        if not 0 < level < 1:
            raise ValueError(f"level={level} must be in (0, 1), e.g. 0.95")
        stat = self.normalized(normalize) if statistic == "normalized" else self.mean()
        stat = stat.rechunk({0: -1})
        q = [(1 - level) / 2, (1 + level) / 2]
        qs = da.map_blocks(_quantiles, stat, q, dtype=np.float64, chunks=((2,), *stat.chunks[1:]), meta=stat._meta)
        return qs[0], qs[1]


@renamed_kwargs(block_cells="batch_size")
def bootstrap_pseudobulk(
    data: Any, by: Sequence[str] | str, *, n_boot: int = 100, seed: int = 0,
    resample: Literal["donor", "cell"] = "donor", donor: str = "donor", layer: str | None = None,
    min_cells: int = 10, exclude: dict[str, list[str]] | None = None, batch_size: int = 10_000,
    chunk_replicates: int | None = None,
) -> BootstrapReplicates:
    """``n_boot`` bootstrap replicates of the pseudobulk sums of ``data`` per group of ``by``, lazily.

    Parameters
    ----------
    data
        As for :func:`~cytodask.aggregation.api.pseudobulk`.
    resample
        ``"donor"`` (donors with replacement, column ``donor``) or ``"cell"``
        (cells with replacement within each group).
    n_boot, seed
        Replicates and seed; replicate ``b`` depends on ``(seed, b, labels)`` only.
    min_cells
        Groups with fewer observed cells are left out.
    chunk_replicates
        Replicates per Dask chunk (default: ~256 MiB chunks).
    """
    if n_boot < 1:
        raise ValueError(f"n_boot={n_boot} must be ≥ 1")
    if resample not in ("donor", "cell"):
        raise ValueError(f"resample={resample!r} is not 'donor' or 'cell'")
    src = as_blocks(data, layer=layer, batch_size=batch_size)
    codes, table, n_obs, kept, report = group_table(src.obs, by, min_cells=min_cells, exclude=exclude,
                                                    where="bootstrap")
    by_cols = report["by"]
    if resample == "donor" and donor not in src.obs.columns:
        raise missing_columns_error([donor], list(src.obs.columns), "bootstrap donor")
    if resample == "donor" and donor in by_cols:
        raise ValueError(f"resampling donors needs groups that pool donors; remove {donor!r} from by")
    remap = np.full(len(table), -1, dtype=np.int64)
    remap[kept] = np.arange(kept.size)
    codes = np.where(codes >= 0, remap[np.maximum(codes, 0)], -1)
    n_groups, n_vars = kept.size, src.x.shape[1]
    step = chunk_replicates or max(1, min(n_boot, _CHUNK_BYTES // (16 * n_groups * n_vars)))
    chunks = [range(b, min(n_boot, b + step)) for b in range(0, n_boot, step)]
    if resample == "donor":
        counts, n_cells = _donor_replicates(src, codes, table.iloc[kept][by_cols], donor, seed, n_boot, chunks)
    else:
        counts = _cell_replicates(src.x, codes, table.iloc[kept][by_cols], n_obs[kept], seed, n_boot, chunks)
        n_cells = np.broadcast_to(n_obs[kept], (n_boot, n_groups)).astype(np.int64)
    obs = table.iloc[kept].reset_index(drop=True)
    obs["n_cells"] = n_obs[kept].astype(np.int64)
    obs.index = ["|".join(map(str, r)) for r in obs[by_cols].itertuples(index=False)]
    return BootstrapReplicates(counts, n_cells, obs, src.var.copy(), resample, seed)
