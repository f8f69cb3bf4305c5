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


def test_secact_signatures_from_a_local_matrix(tmp_path, monkeypatch) -> None:
    """SecAct's names come from its matrix when cytodask finds one here (header only, never downloaded); IL6
    is then a CytoSig signature, a SecAct signature and a gene, three typed rows."""
    import gzip

    from cytodask.search import SearchIndexStage

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("CYTODASK_SIGNATURE_DIR", raising=False)
    assert "secact" not in set(build_index(genes=False).entities["type"])  # none here: none indexed
    folder = tmp_path / "sigs"
    folder.mkdir()
    with gzip.open(folder / "SecAct.tsv.gz", "wt") as fh:
        fh.write("\tIL6\tFAM3C\tWNT5A\nA1BG\t0.1\t0.2\t0.3\nIL6R\t1.0\t0.0\t0.5\n")
    index = build_index(genes=True, signature_dir=folder)
    il6 = search(index, "IL6", limit=5)
    assert list(zip(il6["name"], il6["type"], il6["score"], strict=True))[:3] == [
        ("IL6", "cytosig", 104.0), ("IL6", "secact", 103.0), ("IL6", "gene", 101.0)]
    assert search(index, "FAM3C", types="signature").iloc[0][["name", "type"]].tolist() == ["FAM3C", "secact"]
    assert search(index, "FAM3C", types="secact").iloc[0]["appears"] == ["package:SecAct"]
    stage = SearchIndexStage("search_index", signature_dir=str(folder))
    assert stage.external_inputs()["SecAct"] == folder / "SecAct.tsv.gz"  # in the fingerprint
    monkeypatch.setenv("CYTODASK_SIGNATURE_DIR", str(folder))  # found the way activity finds it
    assert "secact" in set(build_index(genes=False).entities["type"])
