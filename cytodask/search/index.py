"""The search index: entities and their keys, with the structures that make a query fast.

On disk (a directory): ``entities.parquet`` (``name, type, aliases, parents, appears``),
``keys.parquet`` (``key, text, entity, kind``: one row per name or alias, ``key`` the folded text) and
``index.json`` (strict JSON of the entities for the web atlas, and the counts). In memory:

- ``exact``: folded key → key rows (a dict: exact and alias-exact matches in O(1));
- ``sorted_keys``: the distinct folded keys sorted, so the keys with a prefix are one ``bisect`` range;
- ``haystack``: every distinct key joined by newlines, searched with ``str.find`` (C speed) for "contains";
- ``fuzzy_keys`` / ``fuzzy_hist``: the distinct keys sorted by length with their character histograms;
  the fuzzy candidates are the keys within 2 characters of the query's length (one slice) whose
  histogram is within L1 distance 4 of the query's (one NumPy pass): a substitution moves the histogram
  by 2, an insertion or deletion by 1, a transposition by 0, so no key within 2 edits is missed.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from cytodask.search.entities import ENTITY_COLUMNS, Entities

_FOLD = re.compile(r"[\s\-_./,+()'\"]+")
INDEX_VERSION = 1


def fold(text: str) -> str:
    """The form keys and queries are compared in: case folded, spaces and ``-_./,+()`` removed
    (``"GM-CSF"``, ``"gmcsf"`` and ``"GMCSF"`` are one key)."""
    return _FOLD.sub("", str(text).casefold())


_ALPHABET = {c: i for i, c in enumerate("abcdefghijklmnopqrstuvwxyz0123456789")}


def histograms(keys: list[str]) -> np.ndarray:
    """Character counts of each key (a-z, 0-9, anything else), uint8, one row per key."""
    out = np.zeros((len(keys), len(_ALPHABET) + 1), dtype=np.uint8)
    other = len(_ALPHABET)
    for row, key in enumerate(keys):
        for ch in key:
            out[row, _ALPHABET.get(ch, other)] += 1
    return out


class SearchIndex:
    """Entities and the lookup structures built from them (see the module docstring)."""

    def __init__(self, entities: pd.DataFrame) -> None:
        missing = [c for c in ENTITY_COLUMNS if c not in entities.columns]
        if missing:
            raise ValueError(f"entities lack column(s) {missing}; build them with cytodask.search.build_index")
        self.entities = entities.reset_index(drop=True)
        rows = []
        for i, (name, aliases) in enumerate(zip(self.entities["name"], self.entities["aliases"], strict=True)):
            rows.append((fold(name), str(name), i, "name"))
            rows.extend((fold(a), str(a), i, "alias") for a in aliases)
        keys = pd.DataFrame(rows, columns=["key", "text", "entity", "kind"])
        self.keys = keys[keys["key"] != ""].drop_duplicates(["key", "entity", "kind"]).reset_index(drop=True)
        self._build()

    def _build(self) -> None:
        k = self.keys
        self.entity_of = k["entity"].to_numpy(np.int64)
        self.kind_of = (k["kind"] == "alias").to_numpy()
        self.text_of = k["text"].to_numpy(object)
        self.exact: dict[str, list[int]] = k.groupby("key", sort=False).indices  # key → row positions
        self.exact = {key: list(rows) for key, rows in self.exact.items()}
        self.sorted_keys = sorted(self.exact)
        self.key_len = np.fromiter((len(x) for x in self.sorted_keys), np.int64, len(self.sorted_keys))
        self.haystack = "\n" + "\n".join(self.sorted_keys) + "\n"
        self.offsets = np.cumsum([0, *[len(x) + 1 for x in self.sorted_keys]])  # start of key i in haystack - 1
        by_length = sorted(self.sorted_keys, key=len)  # stable: by length, then key
        self.fuzzy_keys = np.array(by_length, dtype=object)
        e = self.entities  # per-entity columns as arrays, read once (a query returns rows from them)
        self.columns = {c: e[c].to_numpy(object) for c in ("name", "type", "aliases", "parents", "appears")}
        lengths = np.fromiter((len(x) for x in by_length), np.int64, len(by_length))
        self.length_start = np.searchsorted(lengths, np.arange(lengths.max(initial=0) + 2), side="left")
        self.fuzzy_len = lengths.astype(np.int16)
        self.fuzzy_hist = np.ascontiguousarray(histograms(by_length).T, dtype=np.int16)  # characters × keys

    @property
    def n_names(self) -> int:
        """Names and aliases indexed (key rows)."""
        return int(len(self.keys))

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``entities.parquet``, ``keys.parquet`` and ``index.json`` into ``directory``."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        self.entities.to_parquet(out / "entities.parquet", index=False)
        self.keys.to_parquet(out / "keys.parquet", index=False)
        doc = {"version": INDEX_VERSION, "n_entities": int(len(self.entities)), "n_names": self.n_names,
               "types": self.entities["type"].value_counts().sort_index().to_dict(),
               "entities": json.loads(self.entities.to_json(orient="records"))}
        (out / "index.json").write_text(json.dumps(doc, allow_nan=False, ensure_ascii=False))
        return out

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> SearchIndex:
        """Read an index written by :meth:`save` (a ``search_index`` stage's data folder or export)."""
        path = Path(directory)
        for candidate in (path, path / "data.zarr", path / "index"):
            if (candidate / "entities.parquet").exists():
                path = candidate
                break
        else:
            raise FileNotFoundError(f"{directory} holds no search index (entities.parquet); build one with the "
                                    f"search_index stage or cytodask.search.build_index(...).save(DIR)")
        ent = pd.read_parquet(path / "entities.parquet")
        for col in ("aliases", "parents", "appears"):
            ent[col] = [list(v) for v in ent[col]]
        index = cls.__new__(cls)
        index.entities = ent
        index.keys = pd.read_parquet(path / "keys.parquet")
        index._build()
        return index


def build_index(*, atlases: list[dict] | None = None, genes: bool = True, entities: Entities | None = None,
                signature_dir: str | os.PathLike[str] | None = None) -> SearchIndex:
    """Index the package data (CytoSig, SecAct when its matrix is found locally in ``signature_dir``,
    ``$CYTODASK_SIGNATURE_DIR`` or the signature cache, genes with aliases, the common cell types) and the
    outputs of the rebuilds in ``atlases`` (``[{name, results}, ...]``;
    :func:`~cytodask.search.entities.output_entities`)."""
    from cytodask.search.entities import output_entities, package_entities

    ent = package_entities(entities, genes=genes, signature_dir=signature_dir)
    if atlases:
        output_entities(atlases, into=ent)
    return SearchIndex(ent.frame())
