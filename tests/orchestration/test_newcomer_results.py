"""Issue 14.6, 14.7, 14.11, 14.13: what a Pipeline user sees in the results folder afterwards.

- 14.6: ``cytodask status`` after a Pipeline run with ``layer=``: nothing stale, no pointer to a
  ``pipeline.toml`` that does not exist; stages left from an earlier run whose input changed are stale.
- 14.7: a run into a folder holding another source's results says so and refuses, unless told to
  replace them (``replace=True`` / ``cytodask rebuild --replace``).
- 14.11: one reader for every stage's output (AnnData or DataFrame).
- 14.13: opening a finished output folder gives the results object the Pipeline call returned.
"""

from __future__ import annotations

import json
from pathlib import Path

import anndata
import numpy as np
import pandas as pd
import pytest

import cytodask
from cytodask import Config, Pipeline
from cytodask.cli import main
from cytodask.ingest import LocalH5ADSource
from tests.e2e import samples_csv, write_spec

pytestmark = pytest.mark.slow


def _pipe(batch_size: int = 1000) -> Pipeline:
    return Pipeline(Config(cluster="none", batch_size=batch_size))


@pytest.fixture(scope="module")
def layered(tmp_path_factory: pytest.TempPathFactory, e2e_atlas: Path) -> Path:
    """The e2e atlas as scanpy users keep it: normalized values in X, raw counts in ``layers["counts"]``."""
    a = anndata.read_h5ad(e2e_atlas)
    a.layers["counts"] = a.X.copy()
    a.X = (a.X * 0.37).astype(np.float32)  # not counts: a run that ignored layer= would be refused
    path = tmp_path_factory.mktemp("layered") / "layered.h5ad"
    a.write_h5ad(path)
    return path


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory, layered: Path):
    out = tmp_path_factory.mktemp("finished") / "results"
    res = _pipe().process_submission(h5ad_path=layered, layer="counts", output_dir=out, signatures=["CytoSig"],
                                     aggregation_levels=["celltype_L2", "pseudobulk"],
                                     analyses=["activity", "differential", "correlation"])
    return out, res


def _status(out: Path, capsys) -> str:
    capsys.readouterr()
    assert main(["status", str(out)]) == 0
    return capsys.readouterr().out


def test_status_after_a_pipeline_run_with_a_layer(finished, capsys):
    out, res = finished
    text = _status(out, capsys)
    assert [line.split()[0] for line in text.splitlines()] == [r.name for r in res.reports]
    assert all(line.split()[1] == "complete" for line in text.splitlines()), text
    assert "pipeline.toml" not in text and "pipeline.toml" not in (out / "spec.json").read_text()
    saved = json.loads((out / "spec.json").read_text())
    assert saved["source"]["layer"] == "counts" and Path(saved["source"]["path"]).is_absolute()


def test_status_shows_stages_left_from_an_earlier_run_stale_when_their_input_changed(tmp_path: Path, layered: Path,
                                                                                      capsys):
    out = tmp_path / "results"
    kw = {"h5ad_path": layered, "layer": "counts", "output_dir": out, "analyses": ["activity"]}
    _pipe().process_submission(aggregation_levels=["celltype_L2", "pseudobulk"], **kw)
    _pipe(batch_size=500).process_submission(aggregation_levels=["celltype_L2"], **kw)  # convert rebuilt
    states = {line.split()[0]: line.split()[1] for line in _status(out, capsys).splitlines() if line[0] != " "}
    assert states["convert"] == states["activity_CytoSig_cell_type_l2"] == "complete"
    assert states["pseudobulk_sample"] == states["activity_CytoSig_sample"] == "stale", states
    assert "its input ['convert'] changed (or is gone) since it ran" in _status(out, capsys)


def test_a_folder_with_another_sources_results_is_refused_unless_replaced(tmp_path: Path, e2e_atlas: Path,
                                                                          layered: Path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # the default output_dir, results/, as in the issue
    pipe = _pipe()
    first = pipe.process(source=LocalH5ADSource(e2e_atlas), aggregation_levels=["celltype_L2", "pseudobulk"])
    assert first.output_dir == tmp_path / "results"
    with pytest.raises(ValueError, match=f"{tmp_path / 'results'} holds the results of another source "
                                         f"\\({e2e_atlas}\\); this run reads {layered}.*replace=True"):
        pipe.process(source=LocalH5ADSource(layered, layer="counts"))
    assert (tmp_path / "results" / "stages" / "pseudobulk_sample").exists()  # nothing touched
    spec = write_spec(tmp_path / "other.toml", layered, batch=1000, samples=samples_csv(e2e_atlas))
    spec.write_text(spec.read_text().replace('cluster = "local"', 'cluster = "none"')
                    .replace("[source]\n", '[source]\nlayer = "counts"\n'))
    assert main(["rebuild", "other.toml", "--output", "results", "-q"]) == 1
    assert "holds the results of another source" in capsys.readouterr().err
    second = pipe.process(source=LocalH5ADSource(layered, layer="counts"), replace=True)
    assert [r.state for r in second.reports] == ["computed"] * len(second.reports)
    assert not (tmp_path / "results" / "stages" / "pseudobulk_sample").exists()  # the first run's own stages
    assert not list((tmp_path / "results" / "exports").glob("*sample*"))
    assert main(["rebuild", "other.toml", "--output", "results", "-q"]) == 0, capsys.readouterr().err  # same source
    spec.write_text(spec.read_text().replace(str(layered), str(e2e_atlas)).replace('layer = "counts"\n', ""))
    assert main(["rebuild", "other.toml", "--output", "results", "-q"]) == 0  # its own spec's new source: replaced
    (tmp_path / "third.toml").write_text(spec.read_text().replace(str(e2e_atlas), str(layered)))
    assert main(["rebuild", "third.toml", "--output", "results", "-q"]) == 1  # another spec, another source
    pipe.process(source=LocalH5ADSource(layered, layer="counts"), replace=True)
    assert main(["rebuild", "other.toml", "--output", "results", "-q"]) == 1
    assert main(["rebuild", "other.toml", "--output", "results", "-q", "--replace"]) == 0
    assert not (tmp_path / "results" / "stages" / "pseudobulk_cell_type_l2").exists()  # the Pipeline run's stages
    assert cytodask.open_results("results").differential["activity"]["pvalue"].notna().any()


def test_open_results_returns_what_the_pipeline_call_returned(finished, layered: Path):
    out, res = finished
    again = cytodask.open_results(out)
    assert isinstance(again, cytodask.PipelineResults) and again.output_dir == res.output_dir
    assert [(r.name, r.fingerprint, r.n_blocks) for r in again.reports] == \
        [(r.name, r.fingerprint, r.n_blocks) for r in res.reports]
    assert list(again.activity) == list(res.activity) == ["activity_CytoSig_cell_type_l2", "activity_CytoSig_sample"]
    for name, adata in res.activity.items():
        np.testing.assert_array_equal(again.activity[name].X, adata.X)
        pd.testing.assert_frame_equal(again.activity[name].obs, adata.obs)
    assert again.tables.keys() == res.tables.keys() == {"differential", "correlation"}
    for kind, tables in res.tables.items():
        assert tables.keys() == again.tables[kind].keys()
        for act, table in tables.items():
            pd.testing.assert_frame_equal(again.tables[kind][act], table)
    assert cytodask.PipelineResults.open(out).differential.keys() == res.differential.keys()
    repeat = _pipe().process_submission(h5ad_path=layered, layer="counts", output_dir=out, signatures=["CytoSig"],
                                        aggregation_levels=["celltype_L2", "pseudobulk"],
                                        analyses=["activity", "differential", "correlation"])
    assert [(r.name, r.state) for r in repeat.reports] == [(r.name, r.state) for r in again.reports]  # all skipped


def test_one_reader_for_every_stage_output(finished):
    out, _ = finished
    res = cytodask.open_results(out)
    kinds = {name: type(res.stage(name)).__name__ for name in res.stages}
    assert kinds == {"convert": "AnnData", "pseudobulk_cell_type_l2": "AnnData", "pseudobulk_sample": "AnnData",
                     "activity_CytoSig_cell_type_l2": "AnnData", "activity_CytoSig_sample": "AnnData",
                     "differential_CytoSig_cell_type_l2": "DataFrame", "differential_CytoSig_sample": "DataFrame",
                     "correlation_CytoSig_cell_type_l2":
                     "DataFrame", "correlation_CytoSig_sample": "DataFrame",
                     "export_CytoSig_cell_type_l2": "PosixPath", "export_CytoSig_sample": "PosixPath"}, kinds
    assert res.stage("differential_CytoSig_cell_type_l2").attrs["fdr_family"]
    for name, kind in kinds.items():  # the README: anndata.read_zarr opens the AnnData stages as they are
        if kind == "AnnData":
            direct = anndata.read_zarr(out / "stages" / name / "data.zarr")
            assert direct.shape == res.stage(name).shape and list(direct.obs_names) == list(res.stage(name).obs_names)
    assert (res.stage("export_CytoSig_cell_type_l2") / "manifest.json").exists()
    with pytest.raises(ValueError, match="has no stage 'nope'; its stages: \\['activity_CytoSig_cell_type_l2'"):
        res.stage("nope")
    with pytest.raises(ValueError, match="is not a result directory of a finished run"):
        cytodask.open_results(out / "stages")
