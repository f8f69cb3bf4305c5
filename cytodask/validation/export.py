"""The validation stage's export tables: names, documented schemas and the reader.

Every table has ``signature`` first; ``reason`` says why a value is NaN. Tables
(file stem → schema) are listed in :data:`SCHEMAS`; a check that did not run is
exported with its columns and no rows, and the quality table's
``missing_components`` says why.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from cytodask.core.stage import ExportOptions, ExportTable
from cytodask.validation.api.biology import BIOLOGY_COLUMNS
from cytodask.validation.api.coverage import COVERAGE_COLUMNS
from cytodask.validation.api.quality import QUALITY_COLUMNS
from cytodask.validation.api.sample import CELL_TYPE_COLUMNS, SAMPLE_COLUMNS
from cytodask.validation.api.single_cell import AUC_COLUMNS, PB_SC_COLUMNS, PB_SC_GROUP_COLUMNS
from cytodask.validation.api.stability import STABILITY_COLUMNS

QUALITY = "table"  #: the stage's main table (the quality score) is the group's ``table`` element

#: table element → (export file stem, schema, description)
SCHEMAS: dict[str, tuple[str, list[str], str]] = {
    QUALITY: ("validation_quality", QUALITY_COLUMNS,
              "quality score per signature (and '(overall)'): components in [0, 1], missing ones with reasons"),
    "sample_level": ("validation_sample_level", SAMPLE_COLUMNS,
                     "check 1: activity vs producer-gene log-CPM across samples, per cell type and whole sample"),
    "cell_type_level": ("validation_cell_type_level", CELL_TYPE_COLUMNS,
                        "check 2: mean producer log-CPM vs mean activity across cell types"),
    "pseudobulk_vs_single_cell": ("validation_pseudobulk_vs_single_cell", PB_SC_COLUMNS,
                                  "check 3: pseudobulk activity vs the mean/median of its cells"),
    "pseudobulk_vs_single_cell_groups": ("validation_pseudobulk_vs_single_cell_groups", PB_SC_GROUP_COLUMNS,
                                         "check 3 per group: pseudobulk, single-cell mean and median"),
    "single_cell": ("validation_single_cell_auc", AUC_COLUMNS,
                    "check 4: producer-expressing vs other cells per cell type (AUC, Mann-Whitney p, q)"),
    "biological": ("validation_biological", BIOLOGY_COLUMNS,
                   "check 5: rank of the expected producer cell types by expression and by activity"),
    "coverage": ("validation_coverage", COVERAGE_COLUMNS, "check 6: signature genes found and detected, grade"),
    "stability": ("validation_stability", STABILITY_COLUMNS,
                  "check 7: bootstrap of cells and gene folds: Spearman of replicates, per-group CV"),
}


def read_check(path: Path, options: ExportOptions, *, element: str) -> pd.DataFrame:
    """Table ``element`` of the validation stage output at ``path`` (no rows if the check did not run)."""
    import zarr

    from cytodask.core.tables import read_table

    root = zarr.open_group(str(path), mode="r")
    columns = SCHEMAS[element][1]
    if element not in root:
        return pd.DataFrame(columns=columns)
    return read_table(root, element)[columns]


def export_tables() -> list[ExportTable]:
    """One :class:`ExportTable` per table of :data:`SCHEMAS`."""
    import functools

    return [ExportTable(stem, functools.partial(read_check, element=element), tuple(cols), text)
            for element, (stem, cols, text) in SCHEMAS.items()]
