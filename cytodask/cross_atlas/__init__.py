"""Cross-atlas integration (ANALYSES.md §6): cell-type mapping, harmonisation, conserved signatures,
meta-analysis and consistency across the result stores of several atlas rebuilds."""

from __future__ import annotations

from cytodask.core.vocabulary.mapping import map_cell_types

__all__ = ["map_cell_types"]
