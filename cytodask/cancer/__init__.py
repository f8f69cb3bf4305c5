"""Cancer analyses (scAtlas shape): paired tumour vs adjacent, immune infiltration, T-cell exhaustion and
CAF subtypes from expression, cancer-type specificity.

Definitions: ANALYSES.md §1 and §4. Layout (``CONTRIBUTING.md``):

- :mod:`~cytodask.cancer.kernels`: pure kernels of one block of cells and ``xp`` (gene sums, gene-set
  scores, group sums), NumPy or CuPy;
- :mod:`~cytodask.cancer.graph`: lazy builders mapping them over the row blocks of the atlas store and
  of single-cell activity;
- :mod:`~cytodask.cancer.api`: the public functions (below);
- :mod:`~cytodask.cancer.stage`: one stage type per analysis; :mod:`~cytodask.cancer.export`,
  :mod:`~cytodask.cancer.report`.
"""

from __future__ import annotations

from cytodask.cancer.api import *  # noqa: F403  (the family's public functions)
from cytodask.cancer.api import __all__ as _API
from cytodask.cancer.stage import CafStage, CancerTypeStage, ExhaustionStage, InfiltrationStage, TumorVsAdjacentStage

__all__ = [*_API, "CafStage", "CancerTypeStage", "ExhaustionStage", "InfiltrationStage", "TumorVsAdjacentStage"]
