"""Search ranking: typos through rapidfuzz, aliases both ways, ambiguous names typed, bad queries."""

from __future__ import annotations

import pandas as pd
import pytest
from rapidfuzz.distance import OSA

from cytodask.search import SearchIndex, build_index, fold, search
from cytodask.search.entities import Entities
from cytodask.search.rank import MAX_QUERY, RESULT_COLUMNS


@pytest.fixture(scope="module")
def index(tmp_path_factory) -> SearchIndex:
    with pytest.MonkeyPatch.context() as mp:  # no SecAct matrix from this machine's cache: the same index anywhere
        mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
        mp.delenv("CYTODASK_SIGNATURE_DIR", raising=False)
        return build_index()


def _top(table: pd.DataFrame) -> tuple[str, str, str]:
    row = table.iloc[0]
    return row["name"], row["type"], row["matched_on"]


def test_typo_ifgn_finds_ifng(index) -> None:
    out = search(index, "IFGN", limit=5)
    assert _top(out) == ("IFNG", "cytosig", "fuzzy")
    assert ("IFNG", "gene") in set(zip(out["name"], out["type"], strict=True))
    assert out.iloc[0]["score"] == 44.0  # one OSA edit (a transposition): 40 + CytoSig boost 4


@pytest.mark.parametrize(("query", "first", "second"), [
    ("TNFA", ("TNFA", "cytosig", "name"), ("TNF", "gene", "alias")),
    ("TNF", ("TNF", "gene", "name"), ("TNFA", "cytosig", "alias")),
    ("GMCSF", ("GMCSF", "cytosig", "name"), ("CSF2", "gene", "alias")),
    ("CSF2", ("CSF2", "gene", "name"), ("GMCSF", "cytosig", "alias")),
    ("gm-csf", ("GMCSF", "cytosig", "name"), ("CSF2", "gene", "alias")),
])
def test_aliases_both_ways(index, query, first, second) -> None:
    out = search(index, query, limit=5)
    rows = list(zip(out["name"], out["type"], out["matched_on"], strict=True))
    assert rows[0] == first and rows[1] == second


def test_ambiguous_name_returns_both_typed(index) -> None:
    out = search(index, "IL6", limit=5)
    assert list(zip(out["name"], out["type"], out["score"], strict=True))[:2] == [("IL6", "cytosig", 104.0),
                                                                                 ("IL6", "gene", 101.0)]
    only = search(index, "IL6", types=["gene"])
    assert set(only["type"]) == {"gene"} and only.iloc[0]["name"] == "IL6"
    sig = search(index, "IL6", types="signature")
    assert set(sig["type"]) <= {"cytosig", "secact"} and sig.iloc[0]["name"] == "IL6"


def test_tiers_and_documented_scores(index) -> None:
    out = search(index, "CSF2", limit=10).set_index("name")
    assert out.at["CSF2RA", "matched_on"] == "prefix"
    assert out.at["CSF2RA", "score"] == pytest.approx(80 + 5 * 4 / 6 + 1, abs=5e-4)  # scores are rounded to 3 decimals
    contains = search(index, "SF2R", limit=50)
    row = contains[contains["matched_on"] == "contains"].iloc[0]
    assert 60 < row["score"] < 70
    scores = out["score"].to_numpy()
    assert (scores[:-1] >= scores[1:]).all()
    assert list(search(index, "CD8", limit=3).columns) == RESULT_COLUMNS


def test_cell_types_carry_parents_and_labels(index) -> None:
    out = search(index, "Tregs", types=["cell_type"])
    assert _top(out) == ("Treg", "cell_type", "alias") and out.iloc[0]["parents"] == ["CD4 T", "T"]
    assert search(index, "plasmacytoid", types=["cell_type"]).iloc[0]["name"] == "pDC"


def test_ties_are_deterministic() -> None:
    ent = Entities()
    for name in ("ABX", "ABY", "ABZ"):
        ent.add(name, "gene")
    ent.add("ABW", "disease")
    ix = SearchIndex(ent.frame())
    first = search(ix, "AB")
    assert list(first["name"]) == ["ABX", "ABY", "ABZ", "ABW"]  # gene before disease, then by name
    for _ in range(3):
        pd.testing.assert_frame_equal(search(ix, "AB"), first)


def test_fuzzy_candidate_filter_misses_nothing(index) -> None:
    """The length slice and histogram bound keep every key within 2 OSA edits (brute force over all keys)."""
    from cytodask.search import rank

    for q in ("ifgn", "tnfaa", "cd8", "gmcfs", "il1"):
        brute = {k for k in index.sorted_keys if 0 < OSA.distance(q, k) <= 2}
        class Spy:
            def __init__(self) -> None:
                self.seen: set[str] = set()

            def add_key(self, key, base, kind):
                self.seen.add(key)

        spy = Spy()
        rank._fuzzy(index, q, spy)
        assert spy.seen == brute


def test_bad_queries(index) -> None:
    with pytest.raises(ValueError, match="empty query"):
        search(index, "")
    with pytest.raises(ValueError, match="empty query"):
        search(index, " -_ ")
    with pytest.raises(ValueError, match=f"10000 characters long; search takes at most {MAX_QUERY}"):
        search(index, "A" * 10_000)
    with pytest.raises(TypeError, match="must be a string"):
        search(index, 6)
    with pytest.raises(ValueError, match="not an entity type"):
        search(index, "IL6", types=["protein"])
    with pytest.raises(ValueError, match="positive integer"):
        search(index, "IL6", limit=0)
    assert search(index, "qqqqxz").empty


def test_fold() -> None:
    assert fold("GM-CSF") == fold("gmcsf") == "gmcsf"
    assert fold("CD8+ T cells") == "cd8tcells"
