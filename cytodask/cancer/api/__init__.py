"""Public functions of the cancer family (ANALYSES.md §4).

- :mod:`.paired`: :func:`tumor_vs_adjacent` (and :func:`paired_tests`, the paired-test table);
- :mod:`.infiltration`: :func:`immune_infiltration`, :func:`infiltration_summary`,
  :func:`infiltration_correlation`;
- :mod:`.scoring`: :func:`score_cells`, :func:`control_genes` (scanpy's ``score_genes``, streamed);
- :mod:`.exhaustion`: :func:`exhaustion_scores`, :func:`exhausted_vs_other`;
- :mod:`.caf`: :func:`caf_subtypes`, :func:`caf_proportions`, :func:`caf_activity`;
- :mod:`.cancer_type`: :func:`cancer_type_specificity`;
- :mod:`.labels`: atlas labels → the common vocabulary (exact matches).
"""

from __future__ import annotations

from cytodask.cancer.api.caf import CAF_MARKERS, CAF_THRESHOLD, caf_activity, caf_proportions, caf_subtypes
from cytodask.cancer.api.cancer_type import cancer_type_specificity
from cytodask.cancer.api.exhaustion import (
    EXHAUSTION_MARKERS,
    EXHAUSTION_THRESHOLD,
    exhausted_vs_other,
    exhaustion_scores,
)
from cytodask.cancer.api.infiltration import (
    INFILTRATION_SUBTYPES,
    immune_infiltration,
    infiltration_correlation,
    infiltration_summary,
)
from cytodask.cancer.api.labels import common_labels
from cytodask.cancer.api.paired import paired_tests, tumor_vs_adjacent
from cytodask.cancer.api.scoring import control_genes, score_cells

__all__ = [
    "CAF_MARKERS",
    "CAF_THRESHOLD",
    "EXHAUSTION_MARKERS",
    "EXHAUSTION_THRESHOLD",
    "INFILTRATION_SUBTYPES",
    "caf_activity",
    "caf_proportions",
    "caf_subtypes",
    "cancer_type_specificity",
    "common_labels",
    "control_genes",
    "exhausted_vs_other",
    "exhaustion_scores",
    "immune_infiltration",
    "infiltration_correlation",
    "infiltration_summary",
    "paired_tests",
    "score_cells",
    "tumor_vs_adjacent",
]
