"""The export stage: every input's declared outputs, a manifest, and an atomic switch of the directory."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pandas as pd
import pytest

from cytodask.orchestration.rebuild import rebuild
from cytodask.orchestration.spec import SpecError, load_spec
from tests.e2e import write_spec

pytestmark = pytest.mark.slow


def _formats(spec: Path, formats: list[str]) -> None:
    text = spec.read_text()
    spec.write_text(re.sub(r'(?m)^formats = .*$', f"formats = {json.dumps(formats)}", text))


def test_export_holds_exactly_its_last_complete_run(tmp_path: Path, e2e_atlas: Path):
    spec = write_spec(tmp_path / "s.toml", e2e_atlas)
    _formats(spec, ["parquet", "csv", "json"])
    out = tmp_path / "out"
    rebuild(spec, output=out, echo=None)
    link = out / "exports" / "export"
    assert link.is_symlink() and link.is_dir()
    first = {p.name for p in link.iterdir()}
    assert {"differential.csv", "correlations.csv", "activity_heatmap.json", "manifest.json"} <= first
    manifest = json.loads((link / "manifest.json").read_text())
    assert set(manifest["inputs"]) == {"activity", "disease_vs_healthy", "donor_correlation"}
    for stage, fp in manifest["inputs"].items():  # the fingerprints of the stage outputs it was made from
        assert fp == json.loads((out / "stages" / stage / "manifest.json").read_text())["fingerprint"]
    assert manifest["tables"]["differential"]["stage"] == "disease_vs_healthy"
    for name, info in manifest["files"].items():  # sizes and checksums describe the files as written
        data = (link / name).read_bytes()
        assert info["bytes"] == len(data) and info["sha256"] == hashlib.sha256(data).hexdigest()
    diff = pd.read_parquet(link / "differential.parquet")
    assert list(diff.columns[:3]) == ["signature", "group1", "group2"] and "cell_type_l2" in diff.columns
    corr = pd.read_parquet(link / "correlations.parquet")
    assert {"pvalue", "qvalue"} <= set(corr.columns) and "p_value" not in corr.columns

    # drop csv and json: their old files must not survive beside the new export
    _formats(spec, ["parquet"])
    rebuild(spec, output=out, echo=None)
    second = {p.name for p in link.iterdir()}
    assert second == {"activity_by_cell_type.parquet", "differential.parquet", "correlations.parquet",
                      "manifest.json"}
    versions = list((out / "exports" / ".versions").iterdir())
    assert len(versions) == 1 and link.resolve() == versions[0].resolve()
    assert not [p for p in (out / "exports").iterdir() if p.name.startswith(".export.")]


def test_failed_rerun_keeps_the_previous_export_intact(tmp_path: Path, e2e_atlas: Path, monkeypatch):
    spec = write_spec(tmp_path / "s.toml", e2e_atlas)
    out = tmp_path / "out"
    rebuild(spec, output=out, echo=None)
    link = out / "exports" / "export"
    before = json.loads((link / "manifest.json").read_text())
    _formats(spec, ["parquet", "csv"])

    import cytodask.export.stage as export_stage

    def broken(*args, **kwargs):
        raise OSError("disk went away while writing differential.csv")

    monkeypatch.setattr(export_stage, "_write_table", broken)
    with pytest.raises(Exception, match="disk went away"):
        rebuild(spec, output=out, echo=None)
    after = json.loads((link / "manifest.json").read_text())
    assert after == before and not (link / "differential.csv").exists()
    assert (link / "differential.parquet").is_file()


def test_deprecated_export_keys_warn_and_are_ignored(tmp_path: Path, e2e_atlas: Path):
    spec = write_spec(tmp_path / "s.toml", e2e_atlas)
    text = spec.read_text().replace('formats = ["h5ad", "parquet"]',
                                    'formats = ["h5ad", "parquet"]\ndifferential = "disease_vs_healthy"\n'
                                    'strata = ["cell_type_l2"]')
    spec.write_text(text)
    with pytest.warns(DeprecationWarning, match="deprecated and ignored"):
        stages = load_spec(spec).build()
    assert stages[-1].formats == ["h5ad", "parquet"]
    spec.write_text(text.replace('differential = "disease_vs_healthy"', 'differential = "nope"'))
    with pytest.raises(SpecError, match="'nope'] not among inputs"):
        load_spec(spec).build()


def test_spec_values_are_type_checked(tmp_path: Path, e2e_atlas: Path):
    spec = write_spec(tmp_path / "s.toml", e2e_atlas)
    spec.write_text(spec.read_text().replace("min_cells = 5", 'min_cells = "5"'))
    with pytest.raises(SpecError, match=r"stages\[0\] \(pseudobulk\): min_cells = '5' \(str\) must be an integer; "
                                        r"write e.g. min_cells = 5"):
        load_spec(spec).build()
    spec.write_text(spec.read_text().replace('min_cells = "5"', "min_cells = 5").replace(
        'strata = ["cell_type_l2"]', 'strata = "cell_type_l2"'))
    with pytest.raises(SpecError, match="strata = 'cell_type_l2' \\(str\\) must be an array"):
        load_spec(spec).build()


def test_status_says_when_exports_are_older_than_the_stages(tmp_path: Path, e2e_atlas: Path):
    from cytodask.orchestration.rebuild import status

    spec = write_spec(tmp_path / "s.toml", e2e_atlas)
    out = tmp_path / "out"
    rebuild(spec, output=out, echo=None)
    assert not [p for r in status(out) for p in r.problems]
    spec.write_text(spec.read_text().replace('group2 = "healthy"\n', 'group2 = "healthy"\ntest = "ttest"\n'))
    rows = {r.name: r for r in status(out, spec=spec)}
    assert rows["disease_vs_healthy"].state == "stale"
    assert any("exports/export were written by an older run" in p for p in rows["export"].problems)


def test_switch_is_atomic_and_cleans_what_a_killed_switch_left(tmp_path: Path):
    from cytodask.export.stage import switch

    exports = tmp_path / "exports"
    v1, v2 = exports / ".versions" / "e@1", exports / ".versions" / "e@2"
    for v in (v1, v2):
        v.mkdir(parents=True)
        (v / "t.csv").write_text(v.name)
    legacy = exports / "e"  # a real directory written by an older cytodask
    legacy.mkdir()
    (legacy / "old.csv").write_text("old")
    switch(exports / "e", v1)
    assert (exports / "e").is_symlink() and (exports / "e" / "t.csv").read_text() == "e@1"
    assert sorted(p.name for p in (exports / ".versions").iterdir()) == ["e@1"]  # legacy and v2 removed
    v2.mkdir()
    (v2 / "t.csv").write_text("e@2")
    (exports / ".e.99999.link").symlink_to("nowhere")  # a switch killed after making its link
    switch(exports / "e", v2)
    assert (exports / "e" / "t.csv").read_text() == "e@2"
    assert sorted(p.name for p in exports.iterdir()) == [".versions", "e"]
