"""Sample tables of a world atlas (CSV, keyed by sample), as the real atlases ship them beside the cells."""

from __future__ import annotations

import pandas as pd

from cytodask.demo.world.model import world_model
from cytodask.demo.world.spec import WorldSpec

#: Table names per atlas (``<name>.csv`` in the output directory).
TABLES = {"cima": ("sample_meta", "biochemistry", "metabolites"), "inflammation": ("samples",),
          "scatlas": ("samples",)}


def sample_tables(spec: WorldSpec) -> dict[str, pd.DataFrame]:
    """``{name: frame}``, identical to the CSVs :func:`~cytodask.demo.world.write_world` writes (copies)."""
    return {name: frame.copy() for name, frame in world_model(spec).design.tables.items()}
