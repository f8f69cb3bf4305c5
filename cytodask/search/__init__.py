"""Search over everything a rebuild produced (ANALYSES.md §7).

- :func:`build_index`: entities from package data (CytoSig, SecAct when found locally, genes with the
  shipped alias table and the CytoSig name table, the common cell types) and rebuild outputs
  (signatures, cell types with their labels as aliases, diseases, organs, cancer types, each with where it appears);
- :func:`search`: ranked matches (exact 100, alias 90, prefix 80+, contains 60+, fuzzy ≤ 40, type
  boosts; :mod:`cytodask.search.rank`);
- :class:`SearchIndex`: the index with its lookup structures, saved as JSON + Parquet;
- :class:`SearchIndexStage`: the ``search_index`` stage; ``cytodask search QUERY`` on the command line.
"""

from __future__ import annotations

from cytodask.search.entities import TYPES
from cytodask.search.index import SearchIndex, build_index, fold
from cytodask.search.rank import search
from cytodask.search.stage import SearchIndexStage

__all__ = ["TYPES", "SearchIndex", "SearchIndexStage", "build_index", "fold", "search"]
