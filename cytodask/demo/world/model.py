"""The expression model shared by the three atlases: an :class:`AtlasDesign` becomes a :class:`WorldModel`.

An atlas module describes its *design*: internal cell types (each with its
labels, common cell type, depth and hidden state), samples (their obs
metadata), expected compositions and planted effects. This module draws from
it, with the demo atlas's streams and sampler (:mod:`cytodask.demo`), the
model of the counts:

.. math::

    \\mu_{cg} = L\\,\\lambda_k\\,s_c\\,\\pi_{kg}\\,e^{\\delta_{dg}}
                \\exp\\Big(\\sum_e a_{e,d,k}\\,\\sigma_{e,g}\\Big)

for a cell ``c`` of internal type ``k`` in sample ``d``: ``pi_kg`` the type's
programme (baseline over genes as in the demo, random label programmes per
label level, named producer / marker genes up by fixed log2 amounts,
:func:`cytodask.demo.world.genes.named_boost`), ``delta_dg`` sample noise,
``sigma_e`` an effect's natural-log shift (a CytoSig response at strength 1,
:func:`cytodask.demo.truth.signature_shift`) and ``a_{e,d,k}`` its amplitude in
sample ``d`` and type ``k`` (0 where the effect is not planted). Compositions:
``Dirichlet(DIRICHLET_CONCENTRATION * p_d)`` over the types present in the
sample's expected composition ``p_d``. Producer genes follow the activity:
in producer types, the producer gene of a planted signature moves by
``PRODUCER_FOLLOW * max_k a_{e,d,k}`` log2 units.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from cytodask.core.vocabulary import ancestors
from cytodask.demo.spec import (
    BASELINE_SD,
    CYTOSIG_LOG_BOOST,
    DIRICHLET_CONCENTRATION,
    DONOR_SD,
    MEAN_UMIS,
    N_CYTOSIG_GENES,
    STREAM_DONOR_NOISE,
    STREAM_DONORS,
    STREAM_GENES,
    stream_rng,
)
from cytodask.demo.truth import _allocate, signature_shift
from cytodask.demo.world.genes import NAMED_LOG_W, PRODUCERS, gene_index, named_boost, named_genes, producer_gene
from cytodask.demo.world.spec import TileSpec, WorldSpec, tile_spec

N_PROGRAMME_GENES = 100  # random marker genes per label (per label column)
PRODUCER_FOLLOW = 1.0  # log2 of producer-gene change per unit amplitude of its signature's effect


@dataclass
class Effect:
    """One planted effect: a CytoSig response with an amplitude per (sample, internal type).

    ``amp[d, k] * signature_shift(signature, strength)`` is added to the log
    mean of type ``k`` in sample ``d``; ``truth`` is its row in truth.json.
    """

    id: str
    kind: str
    signature: str
    strength: float
    amp: NDArray[np.float64]  # (n_samples, n_types)
    truth: dict[str, Any]


@dataclass
class AtlasDesign:
    """What an atlas module declares (see the module docstring)."""

    atlas: str
    types: pd.DataFrame  # index: internal type; label columns, common, depth, exhausted, caf_subtype
    label_columns: tuple[str, ...]  # coarse -> fine
    samples: pd.DataFrame  # one row per sample: the sample-level obs columns (exact names)
    props: NDArray[np.float64]  # (n_samples, n_types) expected composition, rows sum to 1
    weights: NDArray[np.float64]  # (n_samples,) relative number of cells
    effects: list[Effect]
    columns: dict[str, str]  # roles -> obs column ("sample", "donor", "cell_type", ...)
    tables: dict[str, pd.DataFrame]  # sample tables (CSV name without suffix -> frame)
    extra: dict[str, Any] = field(default_factory=dict)  # atlas-specific truth entries
    ensembl_index: bool = False
    crosswalk_columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class WorldModel:
    """Everything drawn once per atlas; tiles are drawn from it (``spec`` is what the demo tiles read)."""

    world: WorldSpec
    spec: TileSpec
    design: AtlasDesign
    sample_stops: NDArray[np.int64]
    cum_props: NDArray[np.float64]  # (n_samples, n_types)
    log_pi: NDArray[np.float64]  # (n_types, n_genes)
    r: NDArray[np.float64]
    depth: NDArray[np.float64]  # (n_types,) MEAN_UMIS * depth
    shifts: NDArray[np.float64]  # (n_effects, n_genes) natural log at amplitude 1
    amps: NDArray[np.float64]  # (n_effects, n_samples, n_types)


def design_rng(spec: WorldSpec) -> np.random.Generator:
    """The stream the atlas designs draw their samples and amplitudes from."""
    return stream_rng(tile_spec(spec), STREAM_DONORS)


@lru_cache(maxsize=6)
def world_model(spec: WorldSpec) -> WorldModel:
    """The model of ``spec`` (cached)."""
    from cytodask.demo.world.atlases import design

    ts = tile_spec(spec)
    d = design(spec)
    types = d.types
    commons = list(types["common"])
    chains = [ancestors(c) if c else [] for c in commons]
    hidden = types[["exhausted", "caf_subtype"]].to_dict("records")
    log_pi, r = _programmes(stream_rng(ts, STREAM_GENES), spec.n_genes, types, d.label_columns)
    log_pi += np.log(2.0) * named_boost(spec.n_genes, commons, chains, hidden)
    log_pi -= np.log(np.exp(log_pi).sum(axis=1, keepdims=True))
    rng = stream_rng(ts, STREAM_DONORS, 1)
    props = np.zeros_like(d.props)
    for s in range(d.props.shape[0]):
        present = d.props[s] > 0
        g = rng.standard_gamma(DIRICHLET_CONCENTRATION * d.props[s, present])
        props[s, present] = g / g.sum()
    effects = d.effects + producer_effects(d, commons)
    shifts = np.stack([_producer_shift(e.signature, spec.n_genes) if e.kind == "producer_follow"
                       else signature_shift(e.signature, e.strength, spec.n_genes) for e in effects])
    amps = np.stack([e.amp for e in effects])
    return WorldModel(world=spec, spec=ts, design=d, sample_stops=np.cumsum(_allocate(d.weights, spec.n_cells)),
                      cum_props=np.cumsum(props, axis=1), log_pi=log_pi, r=r,
                      depth=MEAN_UMIS * types["depth"].to_numpy(dtype=np.float64), shifts=shifts, amps=amps)


def _producer_shift(signature: str, n_genes: int) -> NDArray[np.float64]:
    shift = np.zeros(n_genes)
    shift[gene_index(n_genes)[producer_gene(signature)]] = np.log(2.0) * PRODUCER_FOLLOW
    return shift


def producer_effects(d: AtlasDesign, commons: list[str]) -> list[Effect]:
    """Producer genes follow their signature's planted amplitude in producer types (one per planted signature)."""
    out = []
    for signature in dict.fromkeys(e.signature for e in d.effects):
        if signature not in PRODUCERS:
            continue
        level = np.max([np.abs(e.amp).max(axis=1) for e in d.effects if e.signature == signature], axis=0)
        mask = np.array([c in PRODUCERS[signature] for c in commons], dtype=np.float64)
        out.append(Effect(f"producer_follow_{signature}", "producer_follow", signature, 0.0,
                          level[:, None] * mask[None, :], {}))
    return out


def _programmes(rng: np.random.Generator, n_genes: int, types: pd.DataFrame,
                label_columns: tuple[str, ...]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Baseline log weights plus random label programmes ``(n_types, n_genes)``, and ``r_g``."""
    log_w = rng.normal(0.0, BASELINE_SD, n_genes)
    log_w[:N_CYTOSIG_GENES] += CYTOSIG_LOG_BOOST
    index = gene_index(n_genes)
    named = np.array(sorted(index[g] for g in named_genes()))
    log_w[named] = NAMED_LOG_W
    r = np.exp(rng.uniform(0.0, np.log(20.0), n_genes))
    free = np.setdiff1d(np.arange(n_genes), named)
    log2_fc = np.zeros((len(types), n_genes))
    for column in label_columns:
        for label in dict.fromkeys(types[column]):
            genes = rng.choice(free, size=N_PROGRAMME_GENES, replace=False)
            fc = rng.uniform(0.5, 3.0, N_PROGRAMME_GENES)
            members = np.flatnonzero((types[column] == label).to_numpy())
            log2_fc[np.ix_(members, genes)] += fc
    return log_w + np.log(2.0) * log2_fc, r


def group_means(model: WorldModel, samples: NDArray[np.intp], kinds: NDArray[np.intp]) -> NDArray[np.float64]:
    """Mean per unit size factor of each (sample, internal type) pair (the demo tiles' ``group_means``)."""
    n_genes = model.spec.n_genes
    means = np.empty((samples.shape[0], n_genes))
    for s in np.unique(samples):
        noise = stream_rng(model.spec, STREAM_DONOR_NOISE, int(s)).normal(0.0, DONOR_SD, n_genes)
        for i in np.flatnonzero(samples == s):
            k = kinds[i]
            log_mu = model.log_pi[k] + noise
            for e in np.flatnonzero(model.amps[:, s, k] != 0):
                log_mu += model.amps[e, s, k] * model.shifts[e]
            means[i] = np.exp(log_mu, out=log_mu) * model.depth[k]
    return means
