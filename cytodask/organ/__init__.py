"""Organ analyses (scAtlas normal shape): activity profiles, specificity suited to z-scores, composition.

Definitions: ANALYSES.md §5. Layout (``CONTRIBUTING.md``):

- :mod:`~cytodask.organ.kernels`: pure block kernels (rows = signatures, columns = samples, ``xp``):
  group moments, Kruskal–Wallis, z-specificity and gap;
- :mod:`~cytodask.organ.api`: :func:`organ_profiles`, :func:`profile_correlation`, :func:`specificity`,
  :func:`composition`;
- :mod:`~cytodask.organ.stage`: the stage types ``organ_specificity`` (profiles + specificity) and
  ``organ_composition``; :mod:`~cytodask.organ.export` and :mod:`~cytodask.organ.report`.
"""

from __future__ import annotations

from cytodask.organ.api import composition, group_specificity, organ_profiles, profile_correlation, specificity
from cytodask.organ.stage import OrganCompositionStage, OrganSpecificityStage

__all__ = ["OrganCompositionStage", "OrganSpecificityStage", "composition", "group_specificity",
           "organ_profiles", "profile_correlation", "specificity"]
