"""The saved index (JSON + Parquet) reloads to the same answers; the CLI prints them."""

from __future__ import annotations

import json

import pandas as pd

from cytodask.cli import main
from cytodask.search import SearchIndex, build_index, search


def test_save_load_and_cli(tmp_path, capsys) -> None:
    index = build_index(genes=False)
    index.save(tmp_path / "ix")
    doc = json.loads((tmp_path / "ix" / "index.json").read_text())
    assert doc["n_entities"] == len(index.entities) and doc["types"]["cytosig"] == 43
    again = SearchIndex.load(tmp_path / "ix")
    pd.testing.assert_frame_equal(search(again, "IFNG"), search(index, "IFNG"))
    assert main(["search", "TNFA", "--index", str(tmp_path / "ix"), "--limit", "2"]) == 0
    out = capsys.readouterr().out
    assert "TNFA" in out and "cytosig" in out
    assert main(["search", "TNFA", "--index", str(tmp_path / "ix"), "--json", "--type", "cytosig"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["name"] == "TNFA" and {r["type"] for r in rows} == {"cytosig"}
    assert main(["search", "qqqqxz", "--index", str(tmp_path / "ix")]) == 1
    assert main(["search", "A" * 10_000, "--index", str(tmp_path / "ix")]) == 1
    assert "at most 200" in capsys.readouterr().err


def test_load_refuses_a_folder_without_an_index(tmp_path) -> None:
    import pytest

    with pytest.raises(FileNotFoundError, match="holds no search index"):
        SearchIndex.load(tmp_path)
