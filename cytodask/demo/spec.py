"""Shape, seed and planted truth of a synthetic atlas: :class:`SyntheticAtlasSpec` and the model constants.

Also the shared pieces of the generator: the CytoSig signature the planted
responses come from (:func:`cytosig`) and the random streams (:func:`stream_rng`),
one ``SeedSequence(spec.seed, spawn_key=(stream, index))`` per stream tag below.
"""

from __future__ import annotations

import importlib.resources
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

#: L3 type -> (L2 type, L1 type, typical PBMC proportion before normalizing).
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
STREAM_GENES, STREAM_DONORS, STREAM_DONOR_NOISE, STREAM_LABELS, STREAM_COUNTS = 1, 2, 3, 4, 5


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
        check_int("n_cells", self.n_cells, 1, "a positive number of cells")
        check_int(
            "n_genes", self.n_genes, N_CYTOSIG_GENES, f">= {N_CYTOSIG_GENES} (all CytoSig genes are included)"
        )
        check_int("n_donors", self.n_donors, 1, "a positive number of donors")
        check_int("seed", self.seed, 0, "a non-negative integer")
        check_int("tile_cells", self.tile_cells, 1, "a positive number of cells per tile")
        if not (isinstance(self.disease_fraction, (int, float)) and 0.0 <= self.disease_fraction <= 1.0):
            raise ValueError(f"disease_fraction={self.disease_fraction!r} must be a number in [0, 1]")
        _check_planted(self.planted)


def check_int(name: str, value: object, low: int, allowed: str) -> None:
    """Raise ``ValueError`` unless ``value`` is an integer (not a bool) ``>= low``; ``allowed`` says what is."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name}={value!r} is not allowed: {name} must be {allowed}")


def _check_planted(planted: object) -> None:
    if not isinstance(planted, tuple):
        raise ValueError(f"planted={planted!r} must be a tuple of (cytokine, cell_type_l2, strength) tuples")
    cytokines = list(cytosig().columns)
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
def cytosig() -> pd.DataFrame:
    """The CytoSig signature shipped in ``cytodask.activity`` (genes x cytokines)."""
    resource = importlib.resources.files("cytodask.activity") / "data" / "CytoSig.tsv.gz"
    with importlib.resources.as_file(resource) as path:
        return pd.read_csv(path, sep="\t", index_col=0)


def stream_rng(spec: SyntheticAtlasSpec, stream: int, index: int = 0) -> np.random.Generator:
    """The random stream ``(stream, index)`` of ``spec`` (see the random streams in :mod:`cytodask.demo`)."""
    return np.random.default_rng(np.random.SeedSequence(spec.seed, spawn_key=(stream, index)))
