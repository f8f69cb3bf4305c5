"""Deterministic synthetic single-cell atlas: the embedded demo atlas and test truth.

The atlas has donors (one sample each) that are healthy or diseased, with age,
BMI and sex; a three-level cell-type hierarchy (L1 ⊃ L2 ⊃ L3) whose proportions
vary per donor; and negative-binomial UMI counts in which chosen cytokine
responses, built from the real CytoSig signature, are planted in disease
samples. Everything is a pure function of :class:`SyntheticAtlasSpec`: any block
of cells comes out the same whatever block boundaries are asked for, on any
machine.

Expression model
----------------
For cell ``c`` of L3 type ``k`` (L2 type ``l``) in sample/donor ``d`` and gene
``g`` the count is ``X_cg ~ NB(mean mu_cg, inverse dispersion r_g)`` with

.. math::

    \\mu_{cg} = L \\, \\lambda_l \\, s_c \\, \\pi_{kg} \\, e^{\\delta_{dg}}
               \\, 2^{\\beta_{dlg}}, \\qquad
    \\pi_{kg} = \\frac{w_g \\, 2^{\\,m_{kg}}}{\\sum_h w_h \\, 2^{\\,m_{kh}}}

- ``log w_g ~ N(0, 1.5²) + 1{g in CytoSig}``: log-normal baseline over genes,
  CytoSig (response) genes e-fold higher; at 20,000 genes this gives ~92 %
  zeros, ~1,600 detected genes and a median ~2,400 UMIs per cell (fewer
  zeros with fewer genes: ~81 % at 6,000);
- ``m_kg``: cell-type programmes, the sum of the log2 fold changes of the
  L1, L2 and L3 types of ``k``; each type up-regulates ``N_MARKERS[level]``
  random genes by ``Uniform(0.5, 3)`` log2 units;
- ``L = 2,300`` UMIs, ``lambda_l`` a per-L2 depth multiplier (monocytes deeper
  than lymphocytes), ``s_c = exp(0.25 z)`` a per-cell library size factor;
- ``delta_dg ~ N(0, DONOR_SD²)``: per-donor gene noise;
- ``r_g = exp(Uniform(log 1, log 20))``: gene-wise inverse dispersion;
- planted responses: for each ``(cytokine, cell_type_l2, strength)`` in
  ``spec.planted`` and each *disease* donor ``d``,
  ``beta_dlg = strength * a_d * 2 * S_g / max_h |S_h|`` for cells of that L2
  type, where ``S`` is the CytoSig column of the cytokine (0 for non-CytoSig
  genes) and ``a_d ~ Uniform(0.6, 1.4)`` the donor's response magnitude. The
  strongest responder gene moves by ``2 * strength`` log2 units on average;
  healthy donors and other cell types get ``beta = 0``.

Counts are drawn tile by tile (``spec.tile_cells`` cells) with the exact sparse
NB sampler of :mod:`cytodask.demo._nb`.

Random streams
--------------
Every stream is ``np.random.default_rng(np.random.SeedSequence(spec.seed,
spawn_key=(stream, index)))``: genes, donors, per-donor gene noise
(index = donor), cell labels per tile and counts per tile (index = tile). A tile
is always generated whole, so a block's values never depend on how it was cut.
"""

from __future__ import annotations

import importlib.resources
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import scipy.sparse as sp
from numpy.typing import NDArray

from cytodask.demo._nb import Workspace, sample_nb_csr

__all__ = [
    "SyntheticAtlasSpec",
    "cell_metadata",
    "donor_table",
    "gene_table",
    "generate_block",
    "iter_blocks",
    "planted_truth",
    "write_h5ad",
]

#: L3 type -> (L2 type, L1 type, typical PBMC proportion before normalising).
HIERARCHY: dict[str, tuple[str, str, float]] = {
    "CD4 T": ("T cell", "Lymphoid", 0.30),
    "CD8 T": ("T cell", "Lymphoid", 0.15),
    "Treg": ("T cell", "Lymphoid", 0.04),
    "Naive B": ("B cell", "Lymphoid", 0.07),
    "Memory B": ("B cell", "Lymphoid", 0.04),
    "CD56dim NK": ("NK cell", "Lymphoid", 0.09),
    "CD56bright NK": ("NK cell", "Lymphoid", 0.01),
    "CD14 Monocyte": ("Monocyte", "Myeloid", 0.18),
    "CD16 Monocyte": ("Monocyte", "Myeloid", 0.04),
    "cDC2": ("Dendritic cell", "Myeloid", 0.02),
    "pDC": ("Dendritic cell", "Myeloid", 0.006),
}
L3_TYPES = tuple(HIERARCHY)
L2_TYPES = tuple(dict.fromkeys(v[0] for v in HIERARCHY.values()))
L1_TYPES = tuple(dict.fromkeys(v[1] for v in HIERARCHY.values()))
#: Sequencing depth multiplier per L2 type.
DEPTH = {"T cell": 0.9, "B cell": 1.0, "NK cell": 1.0, "Monocyte": 1.4, "Dendritic cell": 1.3}
#: Marker genes up-regulated per type, by level.
N_MARKERS = {"l1": 150, "l2": 200, "l3": 100}
MEAN_UMIS = 2300.0
BASELINE_SD = 1.5
CYTOSIG_LOG_BOOST = 1.0
LIBRARY_SD = 0.25
DONOR_SD = 0.1
DIRICHLET_CONCENTRATION = 100.0
MAX_PLANTED_LOG2 = 2.0
N_CYTOSIG_GENES = 4881
# Stream tags for SeedSequence spawn keys.
_GENES, _DONORS, _DONOR_NOISE, _LABELS, _COUNTS = 1, 2, 3, 4, 5


@dataclass(frozen=True)
class SyntheticAtlasSpec:
    """Shape, seed and planted truth of a synthetic atlas (validated on creation).

    Parameters
    ----------
    n_cells
        Number of cells (> 0), ordered by sample.
    n_genes
        Number of genes: the 4,881 CytoSig genes followed by synthetic genes
        ``SYN00001``...; at least 4,881.
    n_donors
        Number of donors, one sample each (``S01``/``D01``...).
    disease_fraction
        Fraction of donors with ``disease == "disease"`` (rounded to a count).
    seed
        Non-negative integer seed of every random stream.
    planted
        ``(cytokine, cell_type_l2, strength)`` responses applied in disease
        samples only; the cytokine is a CytoSig column, the type an L2 type.
    tile_cells
        Cells per generation tile, the unit of randomness: the counts depend on
        it (never on how callers cut blocks). One tile's CSR is held at a time;
        dense work is done 32 rows at a time whatever the tile size.
    """

    n_cells: int = 50_000
    n_genes: int = 20_000
    n_donors: int = 24
    disease_fraction: float = 0.5
    seed: int = 0
    planted: tuple[tuple[str, str, float], ...] = (("IFNG", "Monocyte", 1.0), ("IL4", "B cell", 1.0))
    tile_cells: int = 1024

    def __post_init__(self) -> None:
        _check_int("n_cells", self.n_cells, 1, "a positive number of cells")
        _check_int(
            "n_genes", self.n_genes, N_CYTOSIG_GENES, f">= {N_CYTOSIG_GENES} (all CytoSig genes are included)"
        )
        _check_int("n_donors", self.n_donors, 1, "a positive number of donors")
        _check_int("seed", self.seed, 0, "a non-negative integer")
        _check_int("tile_cells", self.tile_cells, 1, "a positive number of cells per tile")
        if not (isinstance(self.disease_fraction, (int, float)) and 0.0 <= self.disease_fraction <= 1.0):
            raise ValueError(f"disease_fraction={self.disease_fraction!r} must be a number in [0, 1]")
        _check_planted(self.planted)


def _check_int(name: str, value: object, low: int, allowed: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name}={value!r} is not allowed: {name} must be {allowed}")


def _check_planted(planted: object) -> None:
    if not isinstance(planted, tuple):
        raise ValueError(f"planted={planted!r} must be a tuple of (cytokine, cell_type_l2, strength) tuples")
    cytokines = list(_cytosig().columns)
    for entry in planted:
        if not (isinstance(entry, tuple) and len(entry) == 3):
            raise ValueError(f"planted entry {entry!r} must be a (cytokine, cell_type_l2, strength) tuple")
        cytokine, cell_type, strength = entry
        if cytokine not in cytokines:
            raise ValueError(f"planted cytokine {cytokine!r} is not a CytoSig column; allowed: {cytokines}")
        if cell_type not in L2_TYPES:
            raise ValueError(f"planted cell_type_l2 {cell_type!r} is unknown; allowed: {list(L2_TYPES)}")
        if not (isinstance(strength, (int, float)) and np.isfinite(strength)):
            raise ValueError(f"planted strength {strength!r} for {cytokine!r} must be a finite number")


@lru_cache(maxsize=1)
def _cytosig() -> pd.DataFrame:
    """The CytoSig signature shipped in ``cytodask.activity`` (genes x cytokines)."""
    resource = importlib.resources.files("cytodask.activity") / "data" / "CytoSig.tsv.gz"
    with importlib.resources.as_file(resource) as path:
        return pd.read_csv(path, sep="\t", index_col=0)


def _rng(spec: SyntheticAtlasSpec, stream: int, index: int = 0) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(spec.seed, spawn_key=(stream, index)))


# --------------------------------------------------------------------------- tables


def gene_table(spec: SyntheticAtlasSpec) -> pd.DataFrame:
    """``var``: index = gene symbol; ``feature_name`` (symbol) and ``gene_ids`` (fake Ensembl ids).

    The first 4,881 genes are the CytoSig genes in signature order, then
    ``SYN00001``, ``SYN00002``... up to ``spec.n_genes``.
    """
    symbols = list(_cytosig().index) + [f"SYN{i:05d}" for i in range(1, spec.n_genes - N_CYTOSIG_GENES + 1)]
    ids = [f"ENSG{i:011d}" for i in range(1, spec.n_genes + 1)]
    return pd.DataFrame({"feature_name": symbols, "gene_ids": ids}, index=pd.Index(symbols))


def donor_table(spec: SyntheticAtlasSpec) -> pd.DataFrame:
    """One row per sample: ``sample``, ``donor``, ``disease``, ``age``, ``BMI``, ``sex``.

    ``round(disease_fraction * n_donors)`` random donors are diseased; age
    ``~ Uniform(20, 80)``, BMI ``~ N(25, 4²)`` clipped to [17, 40], sex 50/50,
    all independent of disease.
    """
    return _model(spec).donors.copy()


def planted_truth(spec: SyntheticAtlasSpec) -> pd.DataFrame:
    """The planted responses: ``cytokine``, ``cell_type_l2``, ``condition`` (``"disease"``), ``strength``."""
    rows = [(c, t, "disease", float(s)) for c, t, s in spec.planted]
    return pd.DataFrame(rows, columns=["cytokine", "cell_type_l2", "condition", "strength"])


def cell_metadata(spec: SyntheticAtlasSpec) -> pd.DataFrame:
    """``obs`` of all cells (index ``cell_000000001``...), ordered by sample.

    Columns: ``sample``, ``donor``, ``disease``, ``age``, ``BMI``, ``sex``,
    ``cell_type_l1``, ``cell_type_l2``, ``cell_type_l3``; string columns are
    categoricals with every level listed.
    """
    return _obs_frame(_model(spec), 0, spec.n_cells)


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class _Model:
    spec: SyntheticAtlasSpec
    donors: pd.DataFrame
    sample_stops: NDArray[np.int64]  # cumulative cell counts per sample
    cum_props: NDArray[np.float64]  # (n_samples, n_l3) cumulative type proportions
    log_pi: NDArray[np.float64]  # (n_l3, n_genes) log relative expression per L3 type
    r: NDArray[np.float64]  # (n_genes,) inverse dispersion
    planted_l2: NDArray[np.intp]  # (n_planted,) L2 index of each planted response
    planted_log: NDArray[np.float64]  # (n_planted, n_genes) natural-log shift at magnitude 1
    planted_amp: NDArray[np.float64]  # (n_planted, n_samples) donor magnitude a_d; 0 if healthy


@lru_cache(maxsize=4)
def _model(spec: SyntheticAtlasSpec) -> _Model:
    rng_genes = _rng(spec, _GENES)
    log_pi, r = _gene_parameters(rng_genes, spec.n_genes)
    rng_donors = _rng(spec, _DONORS)
    donors = _donor_frame(rng_donors, spec)
    props = rng_donors.dirichlet(DIRICHLET_CONCENTRATION * _base_proportions(), size=spec.n_donors)
    sizes = _allocate(rng_donors.lognormal(0.0, 0.3, spec.n_donors), spec.n_cells)
    magnitudes = rng_donors.uniform(0.6, 1.4, size=(len(spec.planted), spec.n_donors))
    diseased = (donors["disease"] == "disease").to_numpy()
    return _Model(
        spec=spec,
        donors=donors,
        sample_stops=np.cumsum(sizes),
        cum_props=np.cumsum(props, axis=1),
        log_pi=log_pi,
        r=r,
        planted_l2=np.array([L2_TYPES.index(t) for _, t, _ in spec.planted], dtype=np.intp),
        planted_log=_planted_shifts(spec),
        planted_amp=magnitudes * diseased,
    )


def _base_proportions() -> NDArray[np.float64]:
    p = np.array([v[2] for v in HIERARCHY.values()])
    return p / p.sum()


def _gene_parameters(
    rng: np.random.Generator, n_genes: int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Log relative expression per L3 type (rows sum to 1 after exp) and ``r_g``."""
    log_w = rng.normal(0.0, BASELINE_SD, n_genes)
    log_w[:N_CYTOSIG_GENES] += CYTOSIG_LOG_BOOST
    r = np.exp(rng.uniform(0.0, np.log(20.0), n_genes))
    log2_fc = np.zeros((len(L3_TYPES), n_genes))
    for level, names in (("l1", L1_TYPES), ("l2", L2_TYPES), ("l3", L3_TYPES)):
        for name in names:
            genes = rng.choice(n_genes, size=N_MARKERS[level], replace=False)
            fc = rng.uniform(0.5, 3.0, N_MARKERS[level])
            members = [i for i, k in enumerate(L3_TYPES) if name in (k, *HIERARCHY[k][:2])]
            log2_fc[np.ix_(members, genes)] += fc
    log_pi = log_w + np.log(2.0) * log2_fc
    log_pi -= np.log(np.exp(log_pi).sum(axis=1, keepdims=True))
    return log_pi, r


def _donor_frame(rng: np.random.Generator, spec: SyntheticAtlasSpec) -> pd.DataFrame:
    n = spec.n_donors
    width = max(2, len(str(n)))
    n_disease = int(np.floor(spec.disease_fraction * n + 0.5))
    disease = np.full(n, "healthy", dtype=object)
    disease[rng.permutation(n)[:n_disease]] = "disease"
    return pd.DataFrame(
        {
            "sample": [f"S{i:0{width}d}" for i in range(1, n + 1)],
            "donor": [f"D{i:0{width}d}" for i in range(1, n + 1)],
            "disease": disease,
            "age": np.round(rng.uniform(20.0, 80.0, n), 1),
            "BMI": np.round(np.clip(rng.normal(25.0, 4.0, n), 17.0, 40.0), 1),
            "sex": np.where(rng.random(n) < 0.5, "F", "M").astype(object),
        }
    )


def _allocate(weights: NDArray[np.float64], total: int) -> NDArray[np.int64]:
    """Split ``total`` cells in proportion to ``weights`` (largest remainder, deterministic)."""
    exact = weights / weights.sum() * total
    sizes = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - sizes), kind="stable")
    sizes[order[: total - sizes.sum()]] += 1
    return sizes


def _planted_shifts(spec: SyntheticAtlasSpec) -> NDArray[np.float64]:
    """Natural-log mean shifts ``(n_planted, n_genes)`` of the planted responses at ``a_d = 1``."""
    shifts = np.zeros((len(spec.planted), spec.n_genes))
    signature = _cytosig()
    for i, (cytokine, _, strength) in enumerate(spec.planted):
        column = signature[cytokine].to_numpy()
        log2_shift = strength * MAX_PLANTED_LOG2 * column / np.abs(column).max()
        shifts[i, :N_CYTOSIG_GENES] = np.log(2.0) * log2_shift
    return shifts


# --------------------------------------------------------------------------- cells


def _labels(model: _Model, start: int, stop: int) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Sample and L3 type indices of cells ``[start, stop)``, drawn tile by tile."""
    t_cells = model.spec.tile_cells
    samples, types = [], []
    for tile in range(start // t_cells, (stop - 1) // t_cells + 1 if stop > start else 0):
        t0, t1 = tile * t_cells, min((tile + 1) * t_cells, model.spec.n_cells)
        sample = np.searchsorted(model.sample_stops, np.arange(t0, t1), side="right")
        u = _rng(model.spec, _LABELS, tile).random(t1 - t0)
        l3 = (model.cum_props[sample] < u[:, None]).sum(axis=1)
        lo, hi = max(start, t0) - t0, min(stop, t1) - t0
        samples.append(sample[lo:hi])
        types.append(np.minimum(l3, len(L3_TYPES) - 1)[lo:hi])
    if not samples:
        return np.zeros(0, np.intp), np.zeros(0, np.intp)
    return np.concatenate(samples), np.concatenate(types)


def _obs_frame(model: _Model, start: int, stop: int) -> pd.DataFrame:
    sample, l3 = _labels(model, start, stop)
    donors = model.donors
    l2_of = np.array([L2_TYPES.index(HIERARCHY[k][0]) for k in L3_TYPES])
    l1_of = np.array([L1_TYPES.index(HIERARCHY[k][1]) for k in L3_TYPES])

    def cat(codes: NDArray[np.intp], categories: list[str] | tuple[str, ...]) -> pd.Categorical:
        return pd.Categorical.from_codes(codes, categories=list(categories))

    def by_sample(column: str, categories: list[str]) -> pd.Categorical:
        codes = pd.Categorical(donors[column], categories=categories).codes
        return cat(codes[sample], categories)

    obs = pd.DataFrame(
        {
            "sample": cat(sample, list(donors["sample"])),
            "donor": cat(sample, list(donors["donor"])),
            "disease": by_sample("disease", ["healthy", "disease"]),
            "age": donors["age"].to_numpy()[sample],
            "BMI": donors["BMI"].to_numpy()[sample],
            "sex": by_sample("sex", ["F", "M"]),
            "cell_type_l1": cat(l1_of[l3], L1_TYPES),
            "cell_type_l2": cat(l2_of[l3], L2_TYPES),
            "cell_type_l3": cat(l3, L3_TYPES),
        },
        index=pd.Index([f"cell_{i:09d}" for i in range(start + 1, stop + 1)]),
    )
    return obs


# --------------------------------------------------------------------------- counts


def _tile_counts(model: _Model, tile: int, workspace: Workspace) -> sp.csr_matrix:
    """Counts of one whole tile (the unit of randomness)."""
    spec = model.spec
    t0, t1 = tile * spec.tile_cells, min((tile + 1) * spec.tile_cells, spec.n_cells)
    sample, l3 = _labels(model, t0, t1)
    groups, group_of_cell = np.unique(np.stack([sample, l3]), axis=1, return_inverse=True)
    means = _group_means(model, groups[0], groups[1])
    rng = _rng(spec, _COUNTS, tile)
    size_factors = np.exp(LIBRARY_SD * rng.standard_normal(t1 - t0))
    indptr, indices, data = sample_nb_csr(
        rng, means, group_of_cell.ravel(), size_factors, model.r, workspace=workspace
    )
    return sp.csr_matrix((data, indices, indptr), shape=(t1 - t0, spec.n_genes))


def _group_means(model: _Model, samples: NDArray[np.intp], l3s: NDArray[np.intp]) -> NDArray[np.float64]:
    """``mu / s_c = L * lambda_l * pi_k * exp(delta_d) * 2**beta_dl`` for each (sample, L3 type) pair."""
    spec = model.spec
    means = np.empty((samples.shape[0], spec.n_genes))
    for s in np.unique(samples):
        donor_log = _rng(spec, _DONOR_NOISE, int(s)).normal(0.0, DONOR_SD, spec.n_genes)
        for i in np.flatnonzero(samples == s):
            l2 = L2_TYPES.index(HIERARCHY[L3_TYPES[l3s[i]]][0])
            log_mu = model.log_pi[l3s[i]] + donor_log
            for j in np.flatnonzero((model.planted_l2 == l2) & (model.planted_amp[:, s] != 0)):
                log_mu += model.planted_amp[j, s] * model.planted_log[j]
            means[i] = np.exp(log_mu, out=log_mu) * (MEAN_UMIS * DEPTH[L2_TYPES[l2]])
    return means


def _check_range(spec: SyntheticAtlasSpec, start: int, stop: int) -> None:
    if not (0 <= start <= stop <= spec.n_cells):
        raise ValueError(
            f"cells [start={start}, stop={stop}) are out of range: "
            f"need 0 <= start <= stop <= n_cells={spec.n_cells}"
        )


class _TileCache:
    """Generates tiles on demand, keeping the last one (blocks often share it)."""

    def __init__(self, model: _Model) -> None:
        self.model = model
        self.workspace = Workspace(model.spec.n_genes)
        self.tile = -1
        self.counts: sp.csr_matrix | None = None

    def rows(self, start: int, stop: int) -> sp.csr_matrix:
        t_cells = self.model.spec.tile_cells
        parts = []
        for tile in range(start // t_cells, (stop - 1) // t_cells + 1 if stop > start else 0):
            if tile != self.tile:
                self.tile, self.counts = tile, _tile_counts(self.model, tile, self.workspace)
            t0 = tile * t_cells
            parts.append(self.counts[max(start, t0) - t0 : min(stop, t0 + t_cells) - t0])
        if not parts:
            return sp.csr_matrix((0, self.model.spec.n_genes), dtype=np.int32)
        return _vstack(parts, self.model.spec.n_genes)


def _vstack(parts: list[sp.csr_matrix], n_genes: int) -> sp.csr_matrix:
    """Row-stack CSR parts keeping int32 data and indices."""
    if len(parts) == 1:
        return parts[0]
    nnz = np.cumsum([0] + [p.nnz for p in parts])
    offsets = [p.indptr[1:].astype(np.int64, copy=False) + off for p, off in zip(parts, nnz[:-1], strict=False)]
    indptr = np.concatenate([np.zeros(1, np.int64), *offsets])
    data = np.concatenate([p.data for p in parts])
    indices = np.concatenate([p.indices.astype(np.int32, copy=False) for p in parts])
    return sp.csr_matrix((data, indices, indptr), shape=(len(indptr) - 1, n_genes))


def generate_block(spec: SyntheticAtlasSpec, start: int, stop: int) -> sp.csr_matrix:
    """int32 UMI counts of cells ``[start, stop)`` as CSR (independent of block boundaries)."""
    _check_range(spec, start, stop)
    return _TileCache(_model(spec)).rows(start, stop)


def iter_blocks(
    spec: SyntheticAtlasSpec, block_cells: int
) -> Iterator[tuple[int, int, pd.DataFrame, sp.csr_matrix]]:
    """Yield ``(start, stop, obs_slice, counts)`` for consecutive blocks of ``block_cells`` cells.

    ``counts`` equals ``generate_block(spec, start, stop)`` and ``obs_slice``
    equals ``cell_metadata(spec).iloc[start:stop]``. Memory stays flat: one
    tile and one block are held at a time.
    """
    _check_int("block_cells", block_cells, 1, "a positive number of cells per block")
    return _blocks(_model(spec), block_cells)


def _blocks(model: _Model, block_cells: int) -> Iterator[tuple[int, int, pd.DataFrame, sp.csr_matrix]]:
    cache = _TileCache(model)
    n_cells = model.spec.n_cells
    for start in range(0, n_cells, block_cells):
        stop = min(start + block_cells, n_cells)
        yield start, stop, _obs_frame(model, start, stop), cache.rows(start, stop)


# --------------------------------------------------------------------------- h5ad


def write_h5ad(
    spec: SyntheticAtlasSpec,
    path: str | os.PathLike[str],
    *,
    block_cells: int = 10_000,
    layer: str | None = None,
    progress: Callable[[int, int], object] | None = None,
    compression: str | None = None,
) -> Path:
    """Write the atlas to ``path`` as ``.h5ad``, block by block, at flat memory.

    Counts go to ``X`` (int32), or, when ``layer`` is given, to
    ``layers[layer]`` (int32) with ``X`` holding the same counts as float32.
    The file is written to a temporary name in the same directory and moved
    into place with :func:`os.replace` only when complete, so an interrupted
    write never leaves a file at ``path``.

    Parameters
    ----------
    spec
        The atlas.
    path
        Destination file.
    block_cells
        Cells generated and appended per step.
    layer
        Name of the layer holding the raw counts, or None for counts in ``X``.
    progress
        Called as ``progress(n_done, n_total)`` after each block.
    compression
        h5py compression of the sparse arrays (``"gzip"``, ``"lzf"``) or None.
    """
    path = Path(path)
    if layer is not None and (not isinstance(layer, str) or not layer or "/" in layer):
        raise ValueError(f"layer={layer!r} must be a non-empty name without '/', or None for counts in X")
    _check_int("block_cells", block_cells, 1, "a positive number of cells per block")
    if not path.parent.is_dir():
        raise ValueError(f"cannot write {path}: directory {path.parent} does not exist; create it first")
    blocks = iter_blocks(spec, block_cells)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with h5py.File(tmp, "w") as f:
            _write_frame_parts(f, spec)
            targets = [_CsrWriter(f, "X", spec, np.float32 if layer else np.int32, compression)]
            if layer is not None:
                targets.append(_CsrWriter(f["layers"], layer, spec, np.int32, compression))
            for _, stop, _, counts in blocks:
                for target in targets:
                    target.append(counts)
                if progress is not None:
                    progress(stop, spec.n_cells)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _write_frame_parts(f: h5py.File, spec: SyntheticAtlasSpec) -> None:
    from anndata.io import write_elem

    f.attrs["encoding-type"] = "anndata"
    f.attrs["encoding-version"] = "0.1.0"
    write_elem(f, "obs", cell_metadata(spec))
    write_elem(f, "var", gene_table(spec))
    for key in ("layers", "obsm", "varm", "obsp", "varp", "uns"):
        write_elem(f, key, {})


class _CsrWriter:
    """Appends CSR row blocks to an AnnData ``csr_matrix`` group in an HDF5 file."""

    def __init__(
        self, parent: h5py.Group, name: str, spec: SyntheticAtlasSpec, dtype: type, compression: str | None
    ) -> None:
        group = parent.create_group(name)
        group.attrs["encoding-type"] = "csr_matrix"
        group.attrs["encoding-version"] = "0.1.0"
        group.attrs["shape"] = (spec.n_cells, spec.n_genes)
        chunk = {"chunks": (1 << 18,), "maxshape": (None,), "compression": compression}
        self.data = group.create_dataset("data", shape=(0,), dtype=dtype, **chunk)
        self.indices = group.create_dataset("indices", shape=(0,), dtype=np.int32, **chunk)
        self.indptr = group.create_dataset("indptr", shape=(spec.n_cells + 1,), dtype=np.int64)
        self.indptr[0] = 0
        self.row = 0
        self.nnz = 0

    def append(self, block: sp.csr_matrix) -> None:
        n, nnz = block.shape[0], block.nnz
        for ds, values in ((self.data, block.data), (self.indices, block.indices)):
            ds.resize((self.nnz + nnz,))
            ds[self.nnz :] = values.astype(ds.dtype, copy=False)
        self.indptr[self.row + 1 : self.row + n + 1] = block.indptr[1:].astype(np.int64) + self.nnz
        self.row += n
        self.nnz += nnz
