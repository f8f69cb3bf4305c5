"""Atlas cell-type labels → the common vocabulary (ANALYSES.md §1 rule 8, §6).

Each label goes through three steps, the first that answers wins:

1. **table** (score 1.0): the user's ``extra`` crosswalk, then the shipped crosswalk of ``atlas``
   (``data/crosswalk_<atlas>.csv``: CIMA L1/L2/L3-L4, Inflammation Level1/Level2, scAtlas
   cellType1/subCluster, Census CL names), then every shipped crosswalk. A label is compared as a
   literal string (exactly, then with case and separators folded): ``"CD8+ T cell"`` never matches
   ``"CD88 T cell"`` as a regular expression would. An empty ``common`` in a table says "not a cell
   type" (``Doublets``, ``Myeloid``): the label is reported unmapped and stops there.
2. **rule** (score 0.9): the label is cut into tokens (case folded; ``+``/``-positive``/``hi`` dropped,
   ``-negative``/``neg`` markers removed; plurals and ``cell(s)`` dropped; cluster codes such as
   ``CD8T02`` → ``cd8 t``) and ordered token rules, most specific first, decide. Whole tokens only:
   ``"Plasmacytoid DC"`` is pDC (the pDC rule comes before plasma), ``"Secretory epithelial"`` has no
   ``endothelial`` token.
3. **fuzzy** (score 0.8 × similarity): rapidfuzz's normalised Indel similarity of the folded label
   against every common name and shipped label, kept at ≥ 0.88 (a typo such as ``"Macrophge"``).

What none of them maps is ``source = "unmapped"`` with ``common`` None and score 0.
"""

from __future__ import annotations

import importlib.resources
import re
from collections.abc import Iterable, Mapping
from functools import cache, lru_cache
from pathlib import Path

import pandas as pd

from cytodask.core.vocabulary import common_cell_types

__all__ = ["ATLASES", "crosswalk", "map_cell_types", "label_tokens"]

ATLASES = ("cima", "inflammation", "scatlas", "census")
RULE_SCORE = 0.9
FUZZY_WEIGHT = 0.8
FUZZY_CUTOFF = 88.0

# ---- token rules ------------------------------------------------------------------------------------
NAIVE = {"naive", "tn", "bn"}
MEMORY = {"memory", "mem", "tm", "tem", "tcm", "em", "cm", "trm", "temra", "emra", "tscm", "nonnaive", "bm",
          "switched", "unswitched", "atypical"}
CD8 = {"cd8"}
CD4 = {"cd4", "th", "th0", "helper", "tconv"}
T = {"t", "tn", "tm", "tem", "tcm", "trm", "temra", "ctl", "tcell"}
MONO = {"mono", "monocyte", "mo", "cmono", "ncmono", "intmono"}
DCS = {"dc", "dendritic", "cdc", "mdc", "asdc", "dc3", "dc4", "dc5"}
# (common type, groups that must each share a token with the label, tokens that forbid the rule)
RULES: tuple[tuple[str, tuple[set[str], ...], set[str]], ...] = (
    ("pDC", ({"pdc", "plasmacytoid"},), set()),
    ("Plasma", ({"plasma", "plasmablast", "plasmacell"},), set()),
    ("NKT", ({"nkt"},), set()),
    ("NKT", ({"nk"}, {"t"}), {"cd4", "cd8"}),
    ("MAIT", ({"mait", "mucosal"},), set()),
    ("gdT", ({"gdt", "gd", "trdv1", "trdv2", "vd1", "vd2"},), set()),
    ("Treg", ({"treg", "regulatory", "tr1"},), set()),
    ("Tfh", ({"tfh"},), set()),
    ("Tfh", ({"follicular"}, {"helper"}), set()),
    ("Th17", ({"th17"},), set()),
    ("Th22", ({"th22"},), set()),
    ("Th1", ({"th1"},), set()),
    ("Th2", ({"th2"},), set()),
    ("ILC2", ({"ilc2"},), set()),
    ("ILC3", ({"ilc3"},), set()),
    ("ILC", ({"ilc", "ilc1"},), set()),
    ("Naive CD8 T", (CD8, NAIVE), set()),
    ("Memory CD8 T", (CD8, MEMORY), set()),
    ("CD8 T", (CD8,), set()),
    ("Naive CD4 T", ({"cd4"}, NAIVE), set()),
    ("Memory CD4 T", ({"cd4"}, MEMORY), set()),
    ("CD4 T", (CD4,), set()),
    ("NK", ({"nk"},), set()),
    ("CD16 Monocyte", (MONO, {"cd16", "nonclassical", "fcgr3a", "ncmono"}), set()),
    ("CD14 Monocyte", (MONO, {"cd14", "classical", "cmono"}), set()),
    ("Monocyte", (MONO,), set()),
    ("Macrophage", ({"macrophage", "mph", "mac", "kupffer", "microglia", "microglial", "tam"},), set()),
    ("cDC1", ({"cdc1", "dc1", "cd141", "clec9a"},), set()),
    ("cDC2", ({"cdc2", "dc2", "cd1c"},), set()),
    ("DC", (DCS,), set()),
    ("Mast", ({"mast"},), set()),
    ("Basophil", ({"basophil", "baso"},), set()),
    ("Neutrophil", ({"neutrophil", "neu", "immneu", "mneu", "pmn"},), set()),
    ("HSPC", ({"hspc", "hsc", "progenitor", "mpp", "hematopoietic", "haematopoietic", "cd34"},), set()),
    ("Erythrocyte", ({"erythrocyte", "rbc", "erythroid", "erythroblast", "reticulocyte"},), set()),
    ("Platelet", ({"platelet", "megakaryocyte", "mk", "plt"},), set()),
    ("Alveolar epithelial", ({"pneumocyte", "at1", "at2", "ati", "atii"},), set()),
    ("Alveolar epithelial", ({"alveolar"}, {"epithelial", "type"}), set()),
    ("Hepatocyte", ({"hepatocyte", "hep"},), set()),
    ("Keratinocyte", ({"keratinocyte", "kera"},), set()),
    ("Secretory epithelial", ({"secretory", "goblet", "club", "serous", "mucous"},), set()),
    ("Epithelial", ({"epithelial", "epithelium", "epi", "basal", "ciliated", "enterocyte", "colonocyte",
                     "cholangiocyte"},), set()),
    ("Endothelial", ({"endothelial", "endothelium", "endo", "ec", "vec", "lec"},), set()),
    ("Pericyte", ({"pericyte", "peri"},), set()),
    ("Smooth muscle", ({"smc"},), set()),
    ("Smooth muscle", ({"smooth"}, {"muscle"}), set()),
    ("Fibroblast", ({"fibroblast", "fibro", "fib", "fb", "caf", "mycaf", "icaf", "apcaf", "myofibroblast"},), set()),
    ("Malignant", ({"malignant", "tumor", "tumour", "cancer", "carcinoma"},), set()),
    ("Naive B", ({"b"}, NAIVE), set()),
    ("Memory B", ({"b"}, MEMORY), set()),
    ("B", ({"b", "gcb", "abc", "bcell"},), set()),
    ("T", (T,), set()),
)
# whole phrases rewritten before tokenising (the rules then see one token)
PHRASES = (
    (r"gamma[\s_-]*delta|γδ", " gdt "), (r"natural[\s_-]*killer", " nk "), (r"non[\s_-]+classical", " nonclassical "),
    (r"group[\s_-]*2[\s_-]*innate[\s_-]*lymphoid", " ilc2 "), (r"group[\s_-]*3[\s_-]*innate[\s_-]*lymphoid", " ilc3 "),
    (r"innate[\s_-]*lymphoid", " ilc "), (r"alpha[\s_-]*beta|αβ", " "), (r"plasma[\s_-]+cell", " plasmacell "),
    (r"stem[\s_-]+cell", " hsc "), (r"type[\s_-]*(ii|2)[\s_-]*pneumocyte", " at2 "),
    (r"type[\s_-]*(i|1)[\s_-]*pneumocyte", " at1 "),
    (r"non[\s_-]*naive", " nonnaive "), (r"\bt[\s_-]*regs?\b", " treg "), (r"\bt[\s_-]*helper", " th "),
)
EXPAND = {"cd8t": ["cd8", "t"], "cd4t": ["cd4", "t"], "tcell": ["t"], "bcell": ["b"], "nkcell": ["nk"],
          "cd16hink": ["cd16", "nk"], "cd16lonk": ["nk"], "cd56bright": ["nk"], "cd56dim": ["nk"]}
STOP = {"cell", "cells", "of", "the", "human", "like", "type", "positive", "subset", "and", "a", "an"}
MARKER = re.compile(r"([a-z0-9]+)(?:[\s_-]*negative|neg|-)(?=$|[\s_,/()])")


@lru_cache(maxsize=1)
def _known_tokens() -> frozenset[str]:
    tokens = set(STOP) | set(EXPAND)
    for _, groups, forbid in RULES:
        for group in groups:
            tokens |= group
        tokens |= forbid
    return frozenset(tokens)


def label_tokens(label: str) -> list[str]:
    """The tokens the rules see for ``label`` (``"CD8+ T cells"`` → ``["cd8", "t"]``)."""
    text = str(label).lower()
    for pattern, repl in PHRASES:
        text = re.sub(pattern, repl, text)
    text = MARKER.sub(" ", text)  # "CD16-negative", "CCR7neg", "CD16-": the marker is absent, drop it
    text = re.sub(r"\+|-positive|(?<=[a-z0-9])(hi|high|pos|lo|low|int)\b", " ", text)
    known = _known_tokens()
    out: list[str] = []
    for raw in re.split(r"[^a-z0-9]+", text):
        if not raw or raw.isdigit():
            continue
        token = raw
        if token not in known and token.endswith("s") and token[:-1] in known:
            token = token[:-1]  # plurals: "Tregs", "Monocytes"
        if token not in known:
            stem = re.sub(r"\d+$", "", token)  # cluster codes: "CD8T02" → "cd8t", "B01" → "b"
            if stem in known:
                token = stem
        out.extend(EXPAND.get(token, [token]))
    return [t for t in out if t not in STOP]


def _rule(tokens: list[str]) -> str | None:
    have = set(tokens)
    for common, groups, forbid in RULES:
        if all(have & group for group in groups) and not have & forbid:
            return common
    return None


def _fold(label: str) -> str:
    return " ".join(re.split(r"[^0-9a-z+]+", str(label).lower())).strip()


@cache
def _shipped(atlas: str) -> pd.DataFrame:
    resource = importlib.resources.files("cytodask.core.vocabulary") / "data" / f"crosswalk_{atlas}.csv"
    with importlib.resources.as_file(resource) as path:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    return table.drop_duplicates("label").reset_index(drop=True)


def crosswalk(atlas: str) -> pd.DataFrame:
    """The shipped crosswalk of ``atlas`` (``label, common, level, note``; a copy: edit and pass as ``extra``)."""
    if atlas not in ATLASES:
        raise ValueError(f"atlas={atlas!r} has no shipped crosswalk; use one of {list(ATLASES)} or None "
                         f"(and pass your own table as extra=)")
    return _shipped(atlas).copy()


def _extra_table(extra: Mapping[str, str] | pd.DataFrame | str | Path | None) -> dict[str, str]:
    if extra is None:
        return {}
    if isinstance(extra, (str, Path)):
        extra = pd.read_csv(extra, dtype=str, keep_default_na=False)
    if isinstance(extra, pd.DataFrame):
        missing = {"label", "common"} - set(extra.columns)
        if missing:
            raise ValueError(f"extra crosswalk lacks column(s) {sorted(missing)}; it needs 'label' and 'common'")
        extra = dict(zip(extra["label"].astype(str), extra["common"].astype(str), strict=True))
    if not isinstance(extra, Mapping):
        raise TypeError(f"extra must be a dict label → common type, a DataFrame or a CSV path, not "
                        f"{type(extra).__name__}")
    known = set(common_cell_types().index)
    bad = sorted({str(v) for v in extra.values() if v and str(v) not in known})
    if bad:
        raise ValueError(f"extra crosswalk maps to {bad}, which are not in the common vocabulary "
                         f"(cytodask.core.vocabulary.common_cell_types()); use one of {sorted(known)} or '' for "
                         f"'not a cell type'")
    return {str(k): str(v) for k, v in extra.items()}


def _tables(atlas: str | None, extra: dict[str, str]) -> list[dict[str, str]]:
    order = [atlas] if atlas else []
    order += [a for a in ATLASES if a != atlas]
    shipped = [dict(zip(_shipped(a)["label"], _shipped(a)["common"], strict=True)) for a in order]
    return [extra, *shipped]


@lru_cache(maxsize=1)
def _fuzzy_choices() -> tuple[list[str], list[str]]:
    names: dict[str, str] = {}
    for common in common_cell_types().index:
        names.setdefault(_fold(common), common)
    for atlas in ATLASES:
        for label, common in zip(_shipped(atlas)["label"], _shipped(atlas)["common"], strict=True):
            if common:
                names.setdefault(_fold(label), common)
    return list(names), list(names.values())


def _fuzzy(label: str) -> tuple[str, float] | None:
    from rapidfuzz import fuzz, process

    keys, commons = _fuzzy_choices()
    hit = process.extractOne(_fold(label), keys, scorer=fuzz.ratio, score_cutoff=FUZZY_CUTOFF)
    if hit is None:
        return None
    return commons[hit[2]], round(FUZZY_WEIGHT * hit[1] / 100.0, 4)


def map_cell_types(labels: Iterable[str] | pd.Series, *, atlas: str | None = None,
                   extra: Mapping[str, str] | pd.DataFrame | str | Path | None = None) -> pd.DataFrame:
    """Map atlas cell-type labels to the common vocabulary.

    Parameters
    ----------
    labels
        Labels (any iterable or a Series; repeats are mapped once, in order of first appearance).
    atlas
        ``"cima"``, ``"inflammation"``, ``"scatlas"`` or ``"census"``: its shipped crosswalk is tried
        first; ``None`` tries every shipped crosswalk.
    extra
        The user's crosswalk (dict label → common type, a DataFrame or CSV with ``label, common``),
        tried before the shipped ones; ``""`` as the common type means "not a cell type".

    Returns
    -------
    DataFrame
        One row per distinct label: ``label, common, source, score`` with ``source`` in
        ``table / rule / fuzzy / unmapped`` (see the module docstring for the scores).
    """
    if isinstance(labels, str):
        raise TypeError("labels must be a list or Series of labels, not one string; wrap it: [label]")
    if atlas is not None and atlas not in ATLASES:
        raise ValueError(f"atlas={atlas!r} has no shipped crosswalk; use one of {list(ATLASES)} or None")
    tables = _tables(atlas, _extra_table(extra))
    folded = [{_fold(k): v for k, v in t.items()} for t in tables]
    rows = []
    for label in dict.fromkeys(str(x) for x in labels if x is not None and not pd.isna(x)):
        rows.append(_map_one(label, tables, folded))
    return pd.DataFrame(rows, columns=["label", "common", "source", "score"])


def _map_one(label: str, tables: list[dict[str, str]], folded: list[dict[str, str]]) -> dict[str, object]:
    key = _fold(label)
    for exact, loose in zip(tables, folded, strict=True):
        common = exact.get(label, loose.get(key))
        if common is not None:
            if not common:  # the table says: not a cell type
                return {"label": label, "common": None, "source": "unmapped", "score": 0.0}
            return {"label": label, "common": common, "source": "table", "score": 1.0}
    common = _rule(label_tokens(label))
    if common is not None:
        return {"label": label, "common": common, "source": "rule", "score": RULE_SCORE}
    hit = _fuzzy(label)
    if hit is not None:
        return {"label": label, "common": hit[0], "source": "fuzzy", "score": hit[1]}
    return {"label": label, "common": None, "source": "unmapped", "score": 0.0}
