"""Matching and ranking a query against a :class:`~cytodask.search.index.SearchIndex` (ANALYSES.md §7).

Query and keys are folded alike (:func:`~cytodask.search.index.fold`). A key scores

==========================  =====================================================  ===============
match                       score                                                  ``matched_on``
==========================  =====================================================  ===============
the entity's name           100                                                    ``name``
one of its aliases          90                                                     ``alias``
starts with the query       80 + 5 × len(query) / len(key)                         ``prefix``
contains the query          60 + 5 × len(query) / len(key)                         ``contains``
within 2 edits (OSA)        40 (1 edit), 30 (2 edits); rapidfuzz, queries ≥ 3      ``fuzzy``
==========================  =====================================================  ===============

(rounded to 3 decimals) plus a type boost (``TYPE_BOOST``: CytoSig +4, SecAct +3, cell type +2,
others +1) that never lifts a match over the next tier. An entity takes its best key. Ties sort by
type (``TYPES`` order), then name: the order is deterministic.

Exact and alias hits are one dict lookup, prefixes one ``bisect`` range of the sorted keys (shortest
first, stopping once no longer key can enter the result), "contains" a ``str.find`` scan of the joined
keys (at most ``CAP`` hits, in key order), and the fuzzy match runs over the keys within 2 characters
of the query's length whose character histogram could be 2 edits away (:mod:`~cytodask.search.index`).
A lower tier is skipped as soon as ``limit`` entities of a higher one are found, since it could not
enter the result.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

import numpy as np
import pandas as pd

from cytodask.search.entities import TYPES
from cytodask.search.index import SearchIndex, fold

TYPE_BOOST = {"cytosig": 4.0, "secact": 3.0, "cell_type": 2.0, "gene": 1.0, "disease": 1.0, "organ": 1.0,
              "cancer_type": 1.0}
MAX_BOOST = max(TYPE_BOOST.values())
MAX_QUERY = 200
CAP = 5000
RESULT_COLUMNS = ["name", "type", "score", "matched_on", "matched", "aliases", "parents", "appears"]


def _types(types: Sequence[str] | str | None) -> set[str]:
    if types is None:
        return set(TYPES)
    wanted = [types] if isinstance(types, str) else list(types)
    out: set[str] = set()
    for t in wanted:
        if t == "signature":
            out |= {"cytosig", "secact"}
        elif t in TYPES:
            out.add(t)
        else:
            raise ValueError(f"type {t!r} is not an entity type; use one of {[*TYPES, 'signature']}")
    return out


def check_query(query: str) -> str:
    """The folded query, or a ValueError for an empty or overlong one (TypeError for a non-string)."""
    if not isinstance(query, str):
        raise TypeError(f"query must be a string, not {type(query).__name__}")
    if len(query) > MAX_QUERY:
        raise ValueError(f"query is {len(query)} characters long; search takes at most {MAX_QUERY} (a name, an "
                         f"alias or part of one)")
    q = fold(query)
    if not q:
        raise ValueError("empty query: give a name or part of one (e.g. IFNG, 'CD8 T', lupus)")
    return q


class _Hits:
    def __init__(self, index: SearchIndex, allowed: set[str]) -> None:
        self.index, self.allowed = index, allowed
        self.type_of = index.columns["type"]
        self.best: dict[int, tuple[float, str, str]] = {}

    def add_key(self, key: str, base: float, kind: str | None) -> None:
        for row in self.index.exact[key]:
            entity = int(self.index.entity_of[row])
            t = self.type_of[entity]
            if t not in self.allowed:
                continue
            how = kind or ("alias" if self.index.kind_of[row] else "name")
            score = (base if kind else (90.0 if self.index.kind_of[row] else 100.0)) + TYPE_BOOST[t]
            old = self.best.get(entity)
            if old is None or score > old[0]:
                self.best[entity] = (score, how, str(self.index.text_of[row]))

    def kth(self, k: int) -> float:
        """The k-th best score so far (−inf with fewer than k hits)."""
        scores = sorted((s for s, _, _ in self.best.values()), reverse=True)
        return scores[k - 1] if len(scores) >= k else float("-inf")

    def count(self, floor: float) -> int:
        return sum(1 for s, _, _ in self.best.values() if s >= floor)


def search(index: SearchIndex | str, query: str, *, types: Sequence[str] | str | None = None,
           limit: int = 20) -> pd.DataFrame:
    """Entities matching ``query``, best first: ``name, type, score, matched_on, matched, aliases, parents,
    appears``.

    Parameters
    ----------
    index
        A :class:`SearchIndex` or the folder of a saved one.
    query
        A name, alias or part of one (1 to ``MAX_QUERY`` characters; case, spaces, ``-_./+`` ignored).
    types
        Entity types to return (``TYPES``; ``"signature"`` = CytoSig and SecAct); default all.
    limit
        Most rows returned.
    """
    if not isinstance(index, SearchIndex):
        index = SearchIndex.load(index)
    if not isinstance(limit, int) or limit < 1:
        raise ValueError(f"limit={limit!r}: give a positive integer")
    q = check_query(query)
    hits = _Hits(index, _types(types))
    if q in index.exact:
        hits.add_key(q, 0.0, None)
    keys, lengths = index.sorted_keys, index.key_len
    lo, hi = bisect.bisect_left(keys, q), bisect.bisect_right(keys, q + "\U0010ffff")
    if hi > lo:
        span = np.arange(lo, hi)
        span = span[np.lexsort((span, lengths[lo:hi]))][:CAP]  # shortest keys first (highest share)
        previous = -1
        for i in span:
            if keys[i] == q:
                continue
            share = 80.0 + 5.0 * len(q) / lengths[i]
            if lengths[i] != previous:  # a longer key: stop when none of its length can enter the result
                if len(hits.best) >= limit and share + MAX_BOOST < hits.kth(limit):
                    break
                previous = lengths[i]
            hits.add_key(keys[i], share, "prefix")
    if hits.count(80.0) < limit and len(q) >= 2:
        _contains(index, q, hits)
    if hits.count(60.0) < limit and len(q) >= 3:
        _fuzzy(index, q, hits)
    return _table(index, hits, limit)


def _contains(index: SearchIndex, q: str, hits: _Hits) -> None:
    hay, found, pos = index.haystack, 0, index.haystack.find(q)
    while pos != -1 and found < CAP:
        i = int(np.searchsorted(index.offsets, pos, side="right")) - 1  # the key holding position pos
        key = index.sorted_keys[i]
        if not key.startswith(q):
            hits.add_key(key, 60.0 + 5.0 * len(q) / len(key), "contains")
            found += 1
        pos = hay.find(q, index.offsets[i + 1])  # next key
        if pos == -1:
            break


def _fuzzy(index: SearchIndex, q: str, hits: _Hits) -> None:
    from rapidfuzz import process
    from rapidfuzz.distance import OSA

    from cytodask.search.index import histograms

    top = len(index.length_start) - 1
    lo = int(index.length_start[min(max(1, len(q) - 2), top)])
    hi = int(index.length_start[min(len(q) + 3, top)])
    if hi <= lo:
        return
    # L1(key, q) = Σ_{c in q} |h_c − q_c| + (len(key) − Σ_{c in q} h_c): only the query's characters are read
    qh = histograms([q])[0]
    l1 = index.fuzzy_len[lo:hi].copy()
    for c in np.flatnonzero(qh):
        h = index.fuzzy_hist[c, lo:hi]
        l1 += np.abs(h - np.int16(qh[c])) - h
    near = l1 <= 4
    candidates = index.fuzzy_keys[lo + np.flatnonzero(near)].tolist()
    for key, dist, _ in process.extract(q, candidates, scorer=OSA.distance, score_cutoff=2, limit=None):
        if dist > 0:
            hits.add_key(key, 40.0 - 10.0 * (dist - 1), "fuzzy")


def _table(index: SearchIndex, hits: _Hits, limit: int) -> pd.DataFrame:
    order = {t: i for i, t in enumerate(TYPES)}
    col = index.columns
    names = col["name"]
    ranked = sorted(hits.best.items(), key=lambda kv: (-kv[1][0], order[hits.type_of[kv[0]]], names[kv[0]]))[:limit]
    rows = [i for i, _ in ranked]
    out: dict[str, list] = {"name": [names[i] for i in rows], "type": [hits.type_of[i] for i in rows],
                            "score": [round(s, 3) for _, (s, _, _) in ranked],
                            "matched_on": [how for _, (_, how, _) in ranked],
                            "matched": [text for _, (_, _, text) in ranked]}
    for c in ("aliases", "parents", "appears"):
        out[c] = [list(col[c][i]) for i in rows]
    return pd.DataFrame(out)  # keys in RESULT_COLUMNS order
