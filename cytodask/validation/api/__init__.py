"""Public functions of the validation family, one module per concern."""

from __future__ import annotations

from cytodask.validation.api.biology import biological, expectations
from cytodask.validation.api.coverage import gene_coverage, grade
from cytodask.validation.api.quality import COMPONENTS, CONFIDENCE, quality_score
from cytodask.validation.api.sample import cell_type_level, sample_level
from cytodask.validation.api.single_cell import detected_fraction, pseudobulk_vs_single_cell, single_cell_auc
from cytodask.validation.api.stability import stability
from cytodask.validation.api.validate import CHECKS, ValidationResult, validate

__all__ = [
    "CHECKS",
    "COMPONENTS",
    "CONFIDENCE",
    "ValidationResult",
    "biological",
    "cell_type_level",
    "detected_fraction",
    "expectations",
    "gene_coverage",
    "grade",
    "pseudobulk_vs_single_cell",
    "quality_score",
    "sample_level",
    "single_cell_auc",
    "stability",
    "validate",
]
