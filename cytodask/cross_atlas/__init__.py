"""Cross-atlas integration (ANALYSES.md §6) over the result stores of several atlas rebuilds.

- :func:`map_cell_types`: atlas labels → the common vocabulary (crosswalk, token rules, rapidfuzz);
- :func:`harmonize`: per-signature ComBat across atlases with the common cell type kept (scanpy);
- :func:`kendall_w`, :func:`conserved_signatures`, :func:`sign_consistency`: agreement of cell-type
  rankings and of significant effects;
- :func:`meta_analysis`: fixed and DerSimonian–Laird random effects with Q, I², τ², CI, p, q, of
  correlation effects (:func:`fisher_z`) and male − female differences (:func:`mean_difference_effects`);
- :func:`consistency`, :func:`pairwise_correlations`: profile correlations and the combined score;
- :func:`long_activities`, :func:`correlation_effects`: reading the rebuilds;
- :class:`CrossAtlasStage`: all of it as the ``cross_atlas`` stage;
- :func:`nightly`: the atlas rebuilds, then a cross-atlas spec, as one resumable chain
  (``python -m cytodask.cross_atlas SPEC --rebuild ATLAS_SPEC ...``; ``--schedule HH:MM``).
"""

from __future__ import annotations

from cytodask.core.vocabulary.mapping import map_cell_types
from cytodask.cross_atlas.api import cross_atlas_tables
from cytodask.cross_atlas.conserved import conserved_signatures, kendall_w, sign_consistency
from cytodask.cross_atlas.consistency import consistency, pairwise_correlations
from cytodask.cross_atlas.harmonize import harmonize
from cytodask.cross_atlas.inputs import correlation_effects, long_activities
from cytodask.cross_atlas.meta import fisher_z, mean_difference_effects, meta_analysis
from cytodask.cross_atlas.nightly import nightly
from cytodask.cross_atlas.profiles import cell_type_means
from cytodask.cross_atlas.stage import CrossAtlasStage

__all__ = [
    "CrossAtlasStage",
    "cell_type_means",
    "conserved_signatures",
    "consistency",
    "correlation_effects",
    "cross_atlas_tables",
    "fisher_z",
    "harmonize",
    "kendall_w",
    "long_activities",
    "map_cell_types",
    "mean_difference_effects",
    "meta_analysis",
    "nightly",
    "pairwise_correlations",
    "sign_consistency",
]
