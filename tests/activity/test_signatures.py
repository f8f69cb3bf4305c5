"""Signature loading, SecAct lookup / download, grouping."""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pandas as pd
import pytest

from cytodask.activity import download
from cytodask.activity import signatures as sigmod
from cytodask.activity.signatures import expand_groups, group_signatures, load_signature

from ._fake_index import WHEEL, pip_env, serve_index
from .conftest import SIGNATURE_DIR


def test_cytosig_ships_with_package(cytosig):
    assert cytosig.shape == (4881, 43)
    assert (cytosig.dtypes == np.float64).all()
    shared = pd.read_csv(SIGNATURE_DIR / "CytoSig.tsv.gz", sep="\t", index_col=0)
    pd.testing.assert_frame_equal(cytosig, shared, check_names=False)


def test_load_returns_copies(cytosig):
    a = load_signature("cytosig")
    a.iloc[0, 0] = 99.0
    assert load_signature("CytoSig").iloc[0, 0] != 99.0


def test_secact_from_signature_dir(secact):
    assert secact.shape == (7919, 1170)


def test_secact_from_env_and_cache(monkeypatch, tmp_path, secact):
    monkeypatch.setenv("CYTODASK_SIGNATURE_DIR", str(SIGNATURE_DIR))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "nocache"))
    assert load_signature("SecAct", download=False).shape == secact.shape
    monkeypatch.delenv("CYTODASK_SIGNATURE_DIR")
    cache = tmp_path / "xdg" / "cytodask" / "signatures"
    cache.mkdir(parents=True)
    (cache / "SecAct.tsv.gz").symlink_to((SIGNATURE_DIR / "SecAct.tsv.gz").resolve())
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert sigmod.cache_dir() == cache
    assert sigmod.locate_secact(download=False) == cache / "SecAct.tsv.gz"


def test_secact_missing_says_where_and_how(monkeypatch, tmp_path):
    monkeypatch.delenv("CYTODASK_SIGNATURE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError) as err:
        load_signature("SecAct", signature_dir=tmp_path / "here", download=False)
    msg = str(err.value)
    assert str(tmp_path / "here" / "SecAct.tsv.gz") in msg and str(tmp_path / "cytodask") in msg
    assert "signature_dir=" in msg and "CYTODASK_SIGNATURE_DIR" in msg and "fetch_secact" in msg

    def offline(*a, **k):
        raise OSError("network unreachable")

    monkeypatch.setattr(sigmod, "fetch_secact", offline)
    with pytest.raises(FileNotFoundError, match="Downloading it failed: network unreachable"):
        load_signature("SecAct")


def test_fetch_secact_extracts_from_wheel(monkeypatch, tmp_path):
    """The wheel comes through pip's configured index (a local mirror here), md5-checked, written atomically."""
    payload = b"gene\tP1\nG1\t1.0\n"
    monkeypatch.setattr(download, "SECACT_MD5", hashlib.md5(payload).hexdigest())
    with serve_index(tmp_path / "index", payload) as (url, seen):
        pip_env(monkeypatch, url, tmp_path)
        path = sigmod.locate_secact()  # not found -> downloaded into the cache
    assert path == tmp_path / "cytodask" / "signatures" / "SecAct.tsv.gz"
    assert path.read_bytes() == payload
    assert any(p.startswith("/simple/secactpy/") for p in seen) and any(p.endswith(WHEEL) for p in seen)
    assert not [p for p in path.parent.iterdir() if p.suffix == ".part"]


@pytest.mark.parametrize("with_pip", [True, False])
def test_fetch_secact_rejects_bad_checksum(monkeypatch, tmp_path, with_pip):
    if not with_pip:  # the simple-page reader used where pip is not installed
        monkeypatch.setattr(download.importlib.util, "find_spec", lambda name: None)
    with serve_index(tmp_path / "bad", b"tampered") as (url, _):
        pip_env(monkeypatch, url, tmp_path)
        with pytest.raises(OSError, match="md5"):
            sigmod.fetch_secact(tmp_path / "out")
    assert not (tmp_path / "out" / "SecAct.tsv.gz").exists()
    with serve_index(tmp_path / "nodata", None) as (url, _):
        with pytest.raises(OSError, match="not a secactpy wheel"):
            sigmod.fetch_secact(tmp_path / "out", index_url=url)


def _custom() -> pd.DataFrame:
    return pd.DataFrame({"A": [1.0, 2.0, np.nan], "B": [0.5, 0.0, 1.0]}, index=["G1", "G2", "G3"])


@pytest.mark.parametrize("fmt", ["tsv", "tsv.gz", "csv", "parquet"])
def test_custom_files(tmp_path, fmt):
    df = _custom()
    path = tmp_path / f"sig.{fmt}"
    if fmt == "parquet":
        df.to_parquet(path)
    else:
        df.to_csv(path, sep="," if fmt == "csv" else "\t")
    out = load_signature(path)
    pd.testing.assert_frame_equal(out, df.fillna(0.0), check_names=False)


def test_custom_dataframe_and_errors(tmp_path):
    out = load_signature(_custom())
    assert out.loc["G3", "A"] == 0.0  # NaN weight -> 0
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_signature(tmp_path / "nope.tsv")
    with pytest.raises(TypeError, match="signature must be"):
        load_signature(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="non-numeric"):
        load_signature(pd.DataFrame({"A": ["x", "y"]}, index=["G1", "G2"]))
    with pytest.raises(ValueError, match="duplicated genes"):
        load_signature(pd.DataFrame({"A": [1.0, 2.0]}, index=["G1", "G1"]))
    with pytest.raises(ValueError, match="duplicated signature names"):
        load_signature(pd.DataFrame([[1.0, 2.0]], columns=["A", "A"], index=["G1"]))
    with pytest.raises(ValueError, match="infinite"):
        load_signature(pd.DataFrame({"A": [1.0, np.inf]}, index=["G1", "G2"]))


def test_grouping_merges_correlated_columns():
    rng = np.random.default_rng(0)
    a = rng.normal(size=500)
    sig = pd.DataFrame(
        {"B": a + 0.1 * rng.normal(size=500), "C": rng.normal(size=500), "A": a, "D": np.ones(500),
         "E": -a},
        index=[f"G{i}" for i in range(500)],
    )
    grouped, groups = group_signatures(sig, 0.9)
    assert groups == {"A|B": ["B", "A"], "C": ["C"], "D": ["D"], "E": ["E"]}
    np.testing.assert_allclose(grouped["A|B"], (sig["A"] + sig["B"]) / 2)
    res = pd.DataFrame({"s1": [1.0, 2.0, 3.0, 4.0]}, index=list(groups))
    out = expand_groups(res, groups, list(sig.columns))
    assert list(out.index) == ["B", "C", "A", "D", "E"]
    assert out.loc["A", "s1"] == out.loc["B", "s1"] == 1.0
    with pytest.raises(ValueError, match="threshold"):
        group_signatures(sig, 0)


def test_grouping_of_secact_is_complete_linkage(secact):
    grouped, groups = group_signatures(secact, 0.9)
    assert sorted(m for ms in groups.values() for m in ms) == sorted(secact.columns)
    assert len(groups) < secact.shape[1]
    big = max(groups.values(), key=len)
    r = np.corrcoef(secact[big].to_numpy().T)
    assert r.min() >= 0.9 - 1e-12  # complete linkage: every pair above the threshold


def test_large_text_signature_keeps_a_parsed_copy(monkeypatch, tmp_path):
    """A text signature above PARSED_MIN_BYTES is parsed once; later processes read the parsed copy
    (equal frame); editing the file changes the key, so a stale copy is never used."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(sigmod, "PARSED_MIN_BYTES", 0)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(150, 4)), index=[f"G{i}" for i in range(150)], columns=list("ABCD"))
    path = tmp_path / "sig.tsv"
    frame.to_csv(path, sep="\t")
    sigmod._read_cached.cache_clear()
    first = load_signature(str(path))
    copies = list((tmp_path / "cache" / "cytodask" / "signatures" / "parsed").glob("sig.tsv.*.npz"))
    assert len(copies) == 1
    sigmod._read_cached.cache_clear()
    monkeypatch.setattr(pd, "read_csv", lambda *a, **k: pytest.fail("parsed copy not used"))
    pd.testing.assert_frame_equal(load_signature(str(path)), first)
    monkeypatch.undo()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(sigmod, "PARSED_MIN_BYTES", 0)
    (frame * 2).to_csv(path, sep="\t")
    os.utime(path, ns=(1, 1))  # a different mtime, whatever the clock's resolution
    sigmod._read_cached.cache_clear()
    pd.testing.assert_frame_equal(load_signature(str(path)), _clean_like(frame * 2))
    now = list((tmp_path / "cache" / "cytodask" / "signatures" / "parsed").glob("sig.tsv.*.npz"))
    assert len(now) == 1 and now != copies  # the stale copy was replaced, not kept beside the new one
    other = tmp_path / "other" / "sig.tsv"  # same name, another file: its own copy, the first one stays
    other.parent.mkdir()
    frame.to_csv(other, sep="\t")
    load_signature(str(other))
    assert len(list(now[0].parent.glob("sig.tsv.*.npz"))) == 2
    sigmod._read_cached.cache_clear()


def test_load_signature_copy_flag():
    shared = load_signature("CytoSig", copy=False)
    assert load_signature("CytoSig", copy=False) is shared  # the in-process cache itself
    mine = load_signature("CytoSig")
    mine.iloc[0, 0] = 123.0
    assert shared.iloc[0, 0] != 123.0 and load_signature("CytoSig").iloc[0, 0] != 123.0


def _clean_like(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.astype(np.float64)
    out.index = out.index.astype(str)
    out.columns = out.columns.astype(str)
    return out
