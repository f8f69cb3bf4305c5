"""The command line on bad input, concurrent runs and status in each state."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pandas as pd
import pytest

from cytodask.cli import main
from tests.e2e import cytodask, popen, write_spec

pytestmark = pytest.mark.slow


def test_help_lists_commands():
    res = cytodask("--help")
    assert res.returncode == 0
    for cmd in ("convert", "rebuild", "status", "demo"):
        assert cmd in res.stdout


def test_convert_help_lists_every_source_kind(capsys):
    from cytodask.demo.world import ATLASES

    with pytest.raises(SystemExit):
        main(["convert", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for kind in (".h5ad", "10x", ".loom", "https://", "census:", "synthetic:ATLAS", "'synthetic:cima'"):
        assert kind in text, kind
    assert all(atlas in text for atlas in ATLASES)


def test_convert_cli_and_errors(tmp_path: Path, counts_h5ad: Path, capsys):
    assert main(["convert", str(counts_h5ad), str(tmp_path / "s.zarr"), "--batch-size", "700", "-q"]) == 0
    assert "2000 cells × 300 genes, 3 blocks written" in capsys.readouterr().out
    assert main(["convert", str(counts_h5ad), str(tmp_path / "s.zarr"), "--block-cells", "700", "-q"]) == 0
    assert "already up to date" in capsys.readouterr().out
    assert main(["convert", str(tmp_path / "missing.h5ad"), str(tmp_path / "x.zarr")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("cytodask: error: input ") and "does not exist (supported: .h5ad" in err
    bad = tmp_path / "bad.h5ad"
    bad.write_text("hello")
    assert main(["convert", str(bad), str(tmp_path / "y.zarr")]) == 1
    assert "is not a valid HDF5 file despite its suffix" in capsys.readouterr().err
    assert main(["convert", str(counts_h5ad), str(tmp_path / "z.zarr"), "--layer", "counts"]) == 1
    assert "no layer 'counts'" in capsys.readouterr().err


def test_spec_errors_name_the_problem(tmp_path: Path, e2e_atlas: Path, capsys):
    spec = write_spec(tmp_path / "s.toml", e2e_atlas)
    spec.write_text(spec.read_text().replace('by = ["cell_type_l2", "sample"]', 'by = ["celltype", "sample"]'))
    assert main(["rebuild", str(spec), "--output", str(tmp_path / "o"), "-q"]) == 1
    err = capsys.readouterr().err
    assert "obs column(s) ['celltype']" in err and "available columns: [" in err and "'cell_type_l2'" in err
    assert not (tmp_path / "o" / "stages").exists()  # nothing started, nothing marked complete

    spec.write_text(write_spec(tmp_path / "t.toml", e2e_atlas).read_text().replace("min_cells = 5", "min_cell = 5"))
    assert main(["rebuild", str(spec), "--output", str(tmp_path / "o"), "-q"]) == 1
    assert "unknown key 'min_cell'. Did you mean 'min_cells'?" in capsys.readouterr().err

    spec.write_text(write_spec(tmp_path / "u.toml", e2e_atlas).read_text().replace('batch_size = 250', 'batch_size = "x"'))
    assert main(["rebuild", str(spec), "-q"]) == 1
    assert "config key 'batch_size': got 'x'" in capsys.readouterr().err

    spec.write_text(write_spec(tmp_path / "v.toml", e2e_atlas).read_text().replace(str(e2e_atlas), "/nope.h5ad"))
    assert main(["rebuild", str(spec), "-q"]) == 1
    assert "input /nope.h5ad does not exist" in capsys.readouterr().err

    write_spec(spec, e2e_atlas, samples=tmp_path / "missing.csv")
    assert main(["rebuild", str(spec), "--output", str(tmp_path / "o2"), "-q"]) == 1
    assert "stage 'donor_correlation': metadata file" in capsys.readouterr().err

    spec.write_text(write_spec(tmp_path / "w.toml", e2e_atlas).read_text().replace('type = "differential"', 'type = "diferential"'))
    assert main(["rebuild", str(spec), "-q"]) == 1
    assert "unknown stage type 'diferential'. Did you mean 'differential'?" in capsys.readouterr().err


def test_counts_needed_but_x_is_normalized(tmp_path: Path, counts_adata, capsys):
    import numpy as np

    a = counts_adata.copy()
    a.obs["cell_type_l2"] = a.obs["cell_type"]
    a.obs["donor"] = a.obs["sample"]
    a.X = a.X.copy()
    a.X.data = np.log1p(a.X.data)
    path = tmp_path / "norm.h5ad"
    a.write_h5ad(path)
    pd.DataFrame({"Sample_name": a.obs["sample"].cat.categories, "Age": 40.0, "BMI": 22.0}).to_csv(
        tmp_path / "samples.csv", index=False)
    spec = write_spec(tmp_path / "s.toml", path)
    assert main(["rebuild", str(spec), "--output", str(tmp_path / "o"), "-q"]) == 1
    err = capsys.readouterr().err
    assert "non-integer values" in err and "--layer" in err
    st = main(["status", str(tmp_path / "o")])
    assert st == 0
    out = capsys.readouterr().out
    assert "convert" in out and "complete" not in out


def test_concurrent_run_refuses_and_status_states(tmp_path: Path, e2e_atlas: Path):
    spec = write_spec(tmp_path / "s.toml", e2e_atlas)
    out = tmp_path / "out"
    first = popen("rebuild", str(spec), "--output", str(out), "-q", env={"CYTODASK_FAULT_RECORD_DELAY": "1.6",
                                                                   "CYTODASK_FAULT_RECORD_STAGES": "pseudobulk"})
    # wide window (16 pseudobulk blocks × 1.6 s): two CLI calls must land mid-stage on a loaded machine; the other
    # stages' records are not delayed
    deadline = time.monotonic() + 60
    while not list((out / "stages" / "pseudobulk" / "blocks").glob("*.json")) if (out / "stages" / "pseudobulk" / "blocks").exists() else True:
        assert first.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    second = cytodask("rebuild", str(spec), "--output", str(out), "-q")
    assert second.returncode == 1
    assert "is in use by another run (pid" in second.stderr and "--wait" in second.stderr
    status = cytodask("status", str(out))
    lines = dict(line.split(None, 1) for line in status.stdout.splitlines())
    assert lines["convert"].startswith("complete")
    assert lines["pseudobulk"].startswith("partial") and " of 16 blocks" in lines["pseudobulk"]
    assert lines["export"] == "not started"
    assert first.wait(timeout=300) == 0
    status = cytodask("status", str(out))
    assert all("complete" in line for line in status.stdout.splitlines())
    third = cytodask("rebuild", str(spec), "--output", str(out), "-q", "--wait")
    assert third.returncode == 0 and "0 blocks computed" in third.stdout


def test_automatic_block_size(tmp_path: Path, e2e_atlas: Path):
    spec = write_spec(tmp_path / "s.toml", e2e_atlas, batch=0)
    res = cytodask("rebuild", str(spec), "--output", str(tmp_path / "o"), "-q")
    assert res.returncode == 0, res.stderr
    assert "batch_size = 0: chose" in res.stdout and "cells per block" in res.stdout


def test_outputs_never_replace_user_files(tmp_path: Path, counts_h5ad: Path, e2e_atlas: Path, capsys):
    """Issue 22.1/22.2/22.10: a user's directory, the input itself and files as outputs are refused untouched."""
    user = tmp_path / "mine"
    user.mkdir()
    (user / "thesis.tex").write_text("keep me")
    assert main(["convert", str(counts_h5ad), str(user), "-q"]) == 1
    err = capsys.readouterr().err
    assert f"atlas store {user} is an existing directory that cytodask did not create (it holds thesis.tex)" in err
    assert "Pass a new or empty directory as STORE" in err
    src = tmp_path / "atlas.h5ad"
    src.write_bytes(counts_h5ad.read_bytes())
    assert main(["convert", str(src), str(src), "-q"]) == 1
    assert "is the input itself" in capsys.readouterr().err
    assert src.read_bytes() == counts_h5ad.read_bytes() and not list(tmp_path.glob(".atlas.h5ad*"))

    spec = write_spec(tmp_path / "s.toml", e2e_atlas)
    assert main(["rebuild", str(spec), "--output", str(user), "-q"]) == 1
    err = capsys.readouterr().err
    assert f"result directory {user} is an existing directory that cytodask did not create" in err
    assert "as --output" in err
    assert sorted(p.name for p in user.iterdir()) == ["thesis.tex"]
    assert main(["rebuild", str(spec), "--output", str(user / "thesis.tex"), "-q"]) == 1
    assert "is a file, not a directory; pass a directory path as --output" in capsys.readouterr().err
    assert main(["rebuild", str(spec), "--output", str(user / "thesis.tex" / "out"), "-q"]) == 1
    assert "which is a regular file, so no directory can be created there" in capsys.readouterr().err
    assert (user / "thesis.tex").read_text() == "keep me"


@pytest.mark.parametrize("err", ["ENOSPC", "EACCES"])
def test_os_errors_say_what_where_and_fix(tmp_path: Path, counts_h5ad: Path, capsys, monkeypatch, err: str):
    """Issue 22.10: disk full and permission denied name the place and the fix, never a raw errno."""
    import errno

    import cytodask.core.store as store_mod

    real = store_mod.atomic_write_json

    def failing(path, obj, **kw):
        if Path(path).parent.name == "blocks" and obj.get("block", 0) >= 2:
            code = getattr(errno, err)
            raise OSError(code, os.strerror(code), str(path))
        return real(path, obj, **kw)

    monkeypatch.setattr(store_mod, "atomic_write_json", failing)
    out = tmp_path / "s.zarr"
    assert main(["convert", str(counts_h5ad), str(out), "--batch-size", "500", "-q"]) == 1
    msg = capsys.readouterr().err
    assert "[Errno" not in msg and str(tmp_path / ".s.zarr.cytodask" / "blocks") in msg
    if err == "ENOSPC":
        assert "no space left on the device" in msg and "2 block(s) were written and recorded" in msg
        assert "run the same command again: it resumes after them" in msg
        monkeypatch.setattr(store_mod, "atomic_write_json", real)
        assert main(["convert", str(counts_h5ad), str(out), "--batch-size", "500", "-q"]) == 0
        assert "2 blocks written" in capsys.readouterr().out
    else:
        assert "permission denied; choose an output you can write" in msg


def test_version_and_singular_block(capsys):
    from importlib.metadata import version

    from cytodask.cli import blocks

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.strip() == f"cytodask {version('cytodask')}"
    assert (blocks(1), blocks(0), blocks(3)) == ("1 block", "0 blocks", "3 blocks")
