"""Public functions of the disease family (``ANALYSES.md`` §3).

- :mod:`.inputs`: activity to one value per sample × cell type, healthy labels;
- :mod:`.profiles`: :func:`disease_profiles`;
- :mod:`.contrast`: :func:`disease_vs_healthy` (every disease, one table, BH over all);
- :mod:`.summaries`: :func:`driving_populations`, :func:`conserved_programs`;
- :mod:`.response`: :func:`treatment_response` (:class:`ResponseResult`);
- :mod:`.longitudinal`: :func:`longitudinal_change`.
"""

from __future__ import annotations

from cytodask.disease.api.contrast import CONTRAST_COLUMNS, disease_vs_healthy
from cytodask.disease.api.inputs import HEALTHY
from cytodask.disease.api.longitudinal import longitudinal_change
from cytodask.disease.api.profiles import disease_profiles
from cytodask.disease.api.response import ResponseResult, treatment_response
from cytodask.disease.api.summaries import conserved_programs, driving_populations

__all__ = [
    "CONTRAST_COLUMNS",
    "HEALTHY",
    "ResponseResult",
    "conserved_programs",
    "disease_profiles",
    "disease_vs_healthy",
    "driving_populations",
    "longitudinal_change",
    "treatment_response",
]
