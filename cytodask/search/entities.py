"""What the search index knows: entities with a name, a type, aliases, parents and where they appear.

Types (``TYPES``): ``cytosig`` and ``secact`` (signatures), ``gene``, ``cell_type``, ``disease``,
``organ``, ``cancer_type``. Package data gives the CytoSig signatures (aliased to their producer gene
through the one name table: ``TNFA`` ↔ ``TNF``), the SecAct signatures when its matrix is found locally
(:func:`local_secact`), every gene symbol with the shipped NCBI alias table,
and the common cell-type vocabulary (parents up to the root). Rebuild outputs add the signatures their
activity stages computed, their cell-type labels (aliases of the common type they map to) and the
values of their disease, organ and cancer-type columns, each with where it appears (``atlas:stage``).
"""

from __future__ import annotations

import importlib.resources
import os
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from cytodask.core.vocabulary import ancestors, common_cell_types, cytosig_names
from cytodask.core.vocabulary.mapping import ATLASES, crosswalk

TYPES = ("cytosig", "secact", "gene", "cell_type", "disease", "organ", "cancer_type")
ENTITY_COLUMNS = ["name", "type", "aliases", "parents", "appears"]
# obs columns read from rebuild outputs, by entity type (exact column names; add your own with columns=)
COLUMNS: dict[str, tuple[str, ...]] = {
    "cell_type": ("cell_type", "cell_type_l1", "cell_type_l2", "cell_type_l3", "cell_type_l4", "Level1", "Level2",
                  "cellType1", "cellType2", "subCluster", "cell_type_ontology_term_id"),
    "disease": ("disease", "diseaseGroup"),
    "organ": ("organ", "tissue", "tissue_general"),
    "cancer_type": ("cancerType", "cancer_type"),
}
NOT_VALUES = {"", "nan", "none", "na", "unknown"}


class Entities:
    """Accumulates entities keyed by (type, name); aliases, parents and appearances are sets."""

    def __init__(self) -> None:
        self._items: dict[tuple[str, str], dict[str, set[str]]] = {}

    def add(self, name: str, type: str, *, aliases: Iterable[str] = (), parents: Iterable[str] = (),
            appears: Iterable[str] = ()) -> None:
        if type not in TYPES:
            raise ValueError(f"entity type {type!r} is not one of {list(TYPES)}")
        item = self._items.setdefault((type, str(name)), defaultdict(set))
        item["aliases"].update(a for a in map(str, aliases) if a and a != name)
        item["parents"].update(parents)
        item["appears"].update(appears)

    def frame(self) -> pd.DataFrame:
        rows = [{"name": n, "type": t, "aliases": sorted(v["aliases"]), "parents": sorted(v["parents"]),
                 "appears": sorted(v["appears"])} for (t, n), v in sorted(self._items.items())]
        return pd.DataFrame(rows, columns=ENTITY_COLUMNS)


def _data(package: str, name: str) -> pd.DataFrame:
    resource = importlib.resources.files(package) / "data" / name
    with importlib.resources.as_file(resource) as path:
        if name.endswith(".tsv.gz") and "alias" in name:
            return pd.read_csv(path, sep="\t", comment="#", dtype=str, keep_default_na=False)
        return pd.read_csv(path, sep="\t", index_col=0, nrows=1)


def local_secact(signature_dir: str | os.PathLike[str] | None = None) -> Path | None:
    """The SecAct matrix where cytodask finds it without downloading (``signature_dir``,
    ``$CYTODASK_SIGNATURE_DIR``, the signature cache), else None."""
    from cytodask.activity.signatures import locate_secact

    try:
        return locate_secact(signature_dir=signature_dir, download=False)
    except FileNotFoundError:
        return None


def package_entities(into: Entities | None = None, *, genes: bool = True,
                     signature_dir: str | os.PathLike[str] | None = None) -> Entities:
    """CytoSig signatures, SecAct's when its matrix is here (:func:`local_secact`; never downloaded for the
    index), genes with their aliases (``genes=False`` leaves them out) and common cell types."""
    ent = into or Entities()
    names = cytosig_names().set_index("cytosig")["gene"].to_dict()
    for sig in _data("cytodask.activity", "CytoSig.tsv.gz").columns:
        ent.add(sig, "cytosig", aliases=[names[sig]] if sig in names else [], appears=["package:CytoSig"])
    secact = local_secact(signature_dir)
    if secact is not None:  # the header only: SecAct names are gene symbols
        for sig in pd.read_csv(secact, sep="\t", index_col=0, nrows=0).columns:
            ent.add(str(sig), "secact", appears=["package:SecAct"])
    if genes:
        alias = _data("cytodask.activity", "alias2symbol.tsv.gz")
        by_symbol = alias.groupby("symbol")["alias"].agg(list).to_dict()
        reverse = {g: s for s, g in names.items()}
        for symbol, aliases in by_symbol.items():
            extra = [reverse[symbol]] if symbol in reverse else []
            ent.add(symbol, "gene", aliases=[*aliases, *extra], appears=["package:alias2symbol"])
        for symbol in set(names.values()) - set(by_symbol):
            ent.add(symbol, "gene", aliases=[reverse[symbol]], appears=["package:cytosig_names"])
    for ct in common_cell_types().index:
        ent.add(ct, "cell_type", parents=ancestors(ct)[1:], appears=["package:vocabulary"])
    for atlas in ATLASES:  # the shipped crosswalks' labels are aliases of their common type
        table = crosswalk(atlas)
        for label, common in zip(table["label"], table["common"], strict=True):
            if common:
                ent.add(common, "cell_type", aliases=[label], appears=[f"package:crosswalk_{atlas}"])
    return ent


def output_entities(atlases: Sequence[Mapping[str, Any]], into: Entities | None = None) -> Entities:
    """Entities of rebuild outputs: ``atlases`` = ``[{name, results}, ...]`` (optionally ``stages``: the
    stages to read, default all; ``columns``: ``{type: [obs column, ...]}`` added to ``COLUMNS``).

    Every completed stage whose data is an AnnData contributes its obs values; an activity stage of
    CytoSig or SecAct (its manifest's ``signature``) its signatures."""
    import anndata
    import zarr

    from cytodask.core.atomic import read_json
    from cytodask.core.vocabulary.mapping import map_cell_types

    ent = into or Entities()
    for a in atlases:
        stages = Path(a["results"]) / "stages"
        cols = {t: (*COLUMNS[t], *a.get("columns", {}).get(t, ())) for t in COLUMNS}
        only = set(a.get("stages") or [])
        for meta in sorted(stages.glob("*/manifest.json")) if stages.is_dir() else []:
            if only and meta.parent.name not in only:
                continue
            data = meta.parent / "data.zarr"
            try:
                group = zarr.open_group(str(data), mode="r")
            except Exception:
                continue
            if "obs" not in group or "var" not in group:
                continue
            where = f"{a['name']}:{meta.parent.name}"
            obs = anndata.io.read_elem(group["obs"])
            var = anndata.io.read_elem(group["var"])
            database = str((read_json(meta) or {}).get("params", {}).get("signature", ""))
            if database in ("CytoSig", "SecAct"):  # activity stages; custom signatures are not indexed
                for sig in map(str, var.index):
                    ent.add(sig, database.lower(), appears=[where])
            for kind, names in cols.items():
                for col in (c for c in names if c in obs.columns):
                    values = [v for v in pd.unique(obs[col].astype(str)) if v.lower() not in NOT_VALUES]
                    if kind != "cell_type":
                        for v in values:
                            ent.add(v, kind, appears=[f"{where}:{col}"])
                        continue
                    mapping = map_cell_types(values, atlas=a["name"] if a["name"] in ATLASES else None)
                    for label, common in zip(mapping["label"], mapping["common"], strict=True):
                        if common:
                            ent.add(common, "cell_type", aliases=[label], parents=ancestors(common)[1:],
                                    appears=[f"{where}:{col}"])
                        else:
                            ent.add(label, "cell_type", appears=[f"{where}:{col}"])
    return ent
