"""Registered stage types of the disease family (one module per concern).

- :mod:`.contrast`: :class:`DiseaseVsHealthyStage` (one block per disease, BH in finalize);
- :mod:`.tables`: :class:`DiseaseProfilesStage`, :class:`DiseaseDriversStage`,
  :class:`DiseaseConservedStage`, :class:`DiseaseLongitudinalStage` (one block each);
- :mod:`.response`: :class:`TreatmentResponseStage`;
- :mod:`.base`: what they share (reading inputs, persisting one-block tables).
"""

from __future__ import annotations

from cytodask.disease.stage.contrast import DiseaseVsHealthyStage
from cytodask.disease.stage.response import TreatmentResponseStage
from cytodask.disease.stage.tables import (
    DiseaseConservedStage,
    DiseaseDriversStage,
    DiseaseLongitudinalStage,
    DiseaseProfilesStage,
)

__all__ = [
    "DiseaseConservedStage",
    "DiseaseDriversStage",
    "DiseaseLongitudinalStage",
    "DiseaseProfilesStage",
    "DiseaseVsHealthyStage",
    "TreatmentResponseStage",
]
