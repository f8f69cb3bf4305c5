"""Disease analyses of an inflammation atlas (``ANALYSES.md`` §3): profiles, every disease vs matched
healthy controls, driving populations, conserved programs, treatment response and longitudinal change.

Layout (``CONTRIBUTING.md``): :mod:`~cytodask.disease.kernels` (pure block kernels, NumPy or CuPy, reusing
the shared rank kernels), :mod:`~cytodask.disease.api` (public functions), :mod:`~cytodask.disease.graph`
(the (disease × cell type) blocks as Dask tasks), :mod:`~cytodask.disease.stage` (registered stage types),
:mod:`~cytodask.disease.export` (table schemas) and :mod:`~cytodask.disease.report` (report sections).
"""

from __future__ import annotations

from cytodask.disease.api import (
    CONTRAST_COLUMNS,
    HEALTHY,
    ResponseResult,
    conserved_programs,
    disease_profiles,
    disease_vs_healthy,
    driving_populations,
    longitudinal_change,
    treatment_response,
)
from cytodask.disease.stage import (
    DiseaseConservedStage,
    DiseaseDriversStage,
    DiseaseLongitudinalStage,
    DiseaseProfilesStage,
    DiseaseVsHealthyStage,
    TreatmentResponseStage,
)

__all__ = [
    "CONTRAST_COLUMNS",
    "HEALTHY",
    "DiseaseConservedStage",
    "DiseaseDriversStage",
    "DiseaseLongitudinalStage",
    "DiseaseProfilesStage",
    "DiseaseVsHealthyStage",
    "ResponseResult",
    "TreatmentResponseStage",
    "conserved_programs",
    "disease_profiles",
    "disease_vs_healthy",
    "driving_populations",
    "longitudinal_change",
    "treatment_response",
]
