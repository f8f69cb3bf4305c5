"""The truth of a synthetic atlas: gene and donor parameters, planted responses and their tables.

:func:`atlas_model` draws once per atlas, from the gene and donor streams, all
the parameters of the expression model of :mod:`cytodask.demo` except the
per-tile draws (cell labels in :mod:`cytodask.demo.cells`, counts in
:mod:`cytodask.demo.counts`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from cytodask.demo.spec import (
    BASELINE_SD,
    CYTOSIG_LOG_BOOST,
    DIRICHLET_CONCENTRATION,
    HIERARCHY,
    L1_TYPES,
    L2_TYPES,
    L3_TYPES,
    MAX_PLANTED_LOG2,
    N_CYTOSIG_GENES,
    N_MARKERS,
    STREAM_DONORS,
    STREAM_GENES,
    SyntheticAtlasSpec,
    cytosig,
    stream_rng,
)


def gene_table(spec: SyntheticAtlasSpec) -> pd.DataFrame:
    """``var``: index = gene symbol; ``feature_name`` (symbol) and ``gene_ids`` (fake Ensembl ids).

    The first 4,881 genes are the CytoSig genes in signature order, then
    ``SYN00001``, ``SYN00002``... up to ``spec.n_genes``.
    """
    symbols = list(cytosig().index) + [f"SYN{i:05d}" for i in range(1, spec.n_genes - N_CYTOSIG_GENES + 1)]
    ids = [f"ENSG{i:011d}" for i in range(1, spec.n_genes + 1)]
    return pd.DataFrame({"feature_name": symbols, "gene_ids": ids}, index=pd.Index(symbols))


def donor_table(spec: SyntheticAtlasSpec) -> pd.DataFrame:
    """One row per sample: ``sample``, ``donor``, ``disease``, ``age``, ``BMI``, ``sex``.

    ``round(disease_fraction * n_donors)`` random donors are diseased; age
    ``~ Uniform(20, 80)``, BMI ``~ N(25, 4²)`` clipped to [17, 40], sex 50/50,
    all independent of disease.
    """
    return atlas_model(spec).donors.copy()


def planted_truth(spec: SyntheticAtlasSpec) -> pd.DataFrame:
    """The planted responses: ``cytokine``, ``cell_type_l2``, ``condition`` (``"disease"``), ``strength``."""
    rows = [(c, t, "disease", float(s)) for c, t, s in spec.planted]
    return pd.DataFrame(rows, columns=["cytokine", "cell_type_l2", "condition", "strength"])


@dataclass(frozen=True)
class AtlasModel:
    """Everything drawn once per atlas (genes, donors, proportions, planted shifts); tiles are drawn from it."""

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
def atlas_model(spec: SyntheticAtlasSpec) -> AtlasModel:
    """The model of ``spec`` (cached: a few atlases are in use at a time)."""
    rng_genes = stream_rng(spec, STREAM_GENES)
    log_pi, r = _gene_parameters(rng_genes, spec.n_genes)
    rng_donors = stream_rng(spec, STREAM_DONORS)
    donors = _donor_frame(rng_donors, spec)
    props = rng_donors.dirichlet(DIRICHLET_CONCENTRATION * _base_proportions(), size=spec.n_donors)
    sizes = _allocate(rng_donors.lognormal(0.0, 0.3, spec.n_donors), spec.n_cells)
    magnitudes = rng_donors.uniform(0.6, 1.4, size=(len(spec.planted), spec.n_donors))
    diseased = (donors["disease"] == "disease").to_numpy()
    return AtlasModel(
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
    for i, (cytokine, _, strength) in enumerate(spec.planted):
        shifts[i] = signature_shift(cytokine, strength, spec.n_genes)
    return shifts


def signature_shift(cytokine: str, strength: float, n_genes: int) -> NDArray[np.float64]:
    """Natural-log mean shift ``(n_genes,)`` of a response to ``cytokine`` at ``strength`` (CytoSig genes first).

    The strongest responder gene moves by ``strength * MAX_PLANTED_LOG2`` log2
    units, the others in proportion to their CytoSig weight; the planted
    responses of the demo atlas and of the synthetic world (:mod:`cytodask.demo.world`).
    """
    shift = np.zeros(n_genes)
    column = cytosig()[cytokine].to_numpy()
    log2_shift = strength * MAX_PLANTED_LOG2 * column / np.abs(column).max()
    shift[:N_CYTOSIG_GENES] = np.log(2.0) * log2_shift
    return shift
