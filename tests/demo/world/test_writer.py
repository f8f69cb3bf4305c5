"""write_world: files agree with the Python API, writes are reused, the CLI and the synthetic: source."""

from __future__ import annotations

import json
from pathlib import Path

import anndata
import pandas as pd
import pytest

from cytodask.demo.world import generate_block, sample_tables, truth, truth_cells, world_spec, write_world
from cytodask.demo.world.source import parse_synthetic, resolve_synthetic
from tests.demo._atlas import assert_csr_identical


@pytest.mark.parametrize("atlas", ["cima", "scatlas"])
def test_files_agree_with_the_api(tmp_path: Path, atlas: str) -> None:
    spec = world_spec(atlas, n_cells=1200, tile_cells=256)
    paths = write_world(spec, tmp_path, batch_size=500)
    a = anndata.read_h5ad(paths.h5ad)
    assert_csr_identical(a.X, generate_block(spec, 0, spec.n_cells))
    assert json.loads(paths.truth.read_text()) == truth(spec)
    for name, frame in sample_tables(spec).items():
        pd.testing.assert_frame_equal(pd.read_csv(paths.tables[name]), frame, check_dtype=False)
    cells = pd.read_csv(paths.truth_cells, index_col=0, keep_default_na=False)
    assert list(cells.index) == list(a.obs_names)
    assert (cells["exhausted"].to_numpy() == truth_cells(spec)["exhausted"].to_numpy()).all()


def test_write_is_reused_and_redone_when_the_spec_changes(tmp_path: Path) -> None:
    spec = world_spec("inflammation", n_cells=600)
    paths = write_world(spec, tmp_path)
    stamp = paths.h5ad.stat().st_mtime_ns
    assert write_world(spec, tmp_path).h5ad.stat().st_mtime_ns == stamp
    paths.truth.unlink()  # an incomplete directory is written again
    write_world(spec, tmp_path)
    assert paths.truth.exists() and paths.h5ad.stat().st_mtime_ns != stamp
    write_world(world_spec("inflammation", n_cells=700), tmp_path)
    assert anndata.read_h5ad(paths.h5ad, backed="r").n_obs == 700
    assert not list(tmp_path.glob(".*tmp"))


def test_cli_writes_an_atlas(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from cytodask.cli import main

    assert main(["demo", "--atlas", "scatlas", "--cells", "500", "--output", str(tmp_path), "-q"]) == 0
    assert {"scatlas.h5ad", "samples.csv", "truth.json", "truth_cells.csv"} <= {p.name for p in tmp_path.iterdir()}
    assert "scatlas:" in capsys.readouterr().out


def test_synthetic_source_forms(tmp_path: Path) -> None:
    spec, out = parse_synthetic("synthetic:cima?cells=400&seed=3&dir=x/y")
    assert (spec.atlas, spec.n_cells, spec.seed, out) == ("cima", 400, 3, Path("x/y"))
    assert parse_synthetic("synthetic:scatlas?size=ci")[0].n_cells == 100_000
    resolved = resolve_synthetic("synthetic:cima?cells=400&dir=../d", tmp_path / "graphs")
    assert parse_synthetic(resolved)[1] == (tmp_path / "d").resolve()
    for bad, match in (("synthetic:cima?cell=3", "unknown key 'cell'"), ("synthetic:cima?cells=x", "not an integer"),
                       ("synthetic:pbmc", "unknown"), ("synthetic:cima?seed=1&seed=2", "given twice")):
        with pytest.raises(ValueError, match=match):
            parse_synthetic(bad)
    from cytodask.ingest.sources import open_source

    source = open_source(f"synthetic:inflammation?cells=300&dir={tmp_path / 'w'}")
    assert source.shape == (300, world_spec("inflammation").n_genes)
    assert {"sampleID", "Level2", "therapyResponse"} <= set(source.obs_columns())
    var = source.var()  # Ensembl ids with a symbol column, as the real Inflammation Atlas
    assert var.index[0].startswith("ENSG") and {"IFNG", "PDCD1"} <= set(var["symbol"])


@pytest.mark.parametrize("atlas", ["cima", "inflammation", "scatlas"])
def test_graphs_default_to_the_synthetic_atlas(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, atlas: str) -> None:
    """Each graph's stages find their columns and tables in the synthetic atlas (the full rebuild is in the report)."""
    from cytodask.orchestration.spec import check_obs_columns, load_spec

    for var in ("CIMA_H5AD", "INFLAMMATION_H5AD", "SCATLAS_H5AD", "CIMA_SAMPLE_META", "CIMA_BIOCHEM",
                "CIMA_METABOLITES", "CYTODASK_RESULTS"):
        monkeypatch.delenv(var, raising=False)
    graph = Path(__file__).resolve().parents[3] / "graphs" / f"{atlas}.toml"
    spec = load_spec(graph)
    assert spec.source["path"].startswith(f"synthetic:{atlas}?dir=")
    _, out = parse_synthetic(spec.source["path"])
    assert out == (graph.parent.parent / "demo-output" / "synthetic" / atlas).resolve()
    # the same tables, written small into a temporary directory
    small = f"synthetic:{atlas}?cells=800&dir={tmp_path}"
    spec.source["path"] = small
    for st in spec.stages:
        if "metadata" in st:
            st["metadata"] = str(tmp_path / Path(st["metadata"]).name)
    source = spec.make_source()
    stages = spec.build(source=source)
    check_obs_columns(stages, source.obs_columns(), str(graph))
    for st in stages:
        for path in st.external_inputs().values():
            assert Path(path).exists(), (st.name, path)
