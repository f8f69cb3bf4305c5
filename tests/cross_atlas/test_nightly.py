"""The nightly chain: three atlas rebuilds, then cross-atlas and the search index; resumable, skipped when
unchanged, stopped (and said) at a failed step; its scheduler entry."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cross_atlas._world import SETUP


def _atlas_spec(tmp: Path, atlas: str, h5ad: Path, *, min_cells: int = 10) -> Path:
    ct, sample, carry, exclude, _ = SETUP[atlas]  # symbols: detected from var
    lines = ["[atlas]", f'name = "{atlas}"', "", "[config]", 'cluster = "none"',
             f'output_dir = "{tmp / "res" / atlas}"',
             "", "[source]", f'path = "{h5ad}"', "", "[[stages]]", 'name = "pseudobulk"', 'type = "pseudobulk"',
             'inputs = ["convert"]', f'by = ["{ct}", "{sample}"]', f"carry = {carry!r}".replace("'", '"'),
             f"min_cells = {min_cells}"]
    if exclude:
        (col, values), = exclude.items()
        lines.append(f"exclude = {{ {col} = {values!r} }}".replace("'", '"'))
    lines += ["", "[[stages]]", 'name = "activity"', 'type = "activity"', 'inputs = ["pseudobulk"]',
              'signature = "CytoSig"']
    path = tmp / f"{atlas}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _cross_spec(tmp: Path) -> Path:
    lines = ["[config]", f'output_dir = "{tmp / "res" / "cross_atlas"}"']
    lines += ["", "[[stages]]", 'name = "cross_atlas"', 'type = "cross_atlas"']
    for atlas, (ct, sample, carry, _, _) in SETUP.items():
        lines += ["", "[[stages.atlases]]", f'name = "{atlas}"', f'results = "{tmp / "res" / atlas}"',
                  'activity = "activity"', f'cell_type = "{ct}"', f'sample = "{sample}"']
        if "sex" in carry:
            lines.append('sex = "sex"')
    lines += ["", "[[stages]]", 'name = "search_index"', 'type = "search_index"', "genes = false"]
    for atlas in SETUP:
        lines += ["", "[[stages.atlases]]", f'name = "{atlas}"', f'results = "{tmp / "res" / atlas}"']
    lines += ["", "[[stages]]", 'name = "export"', 'type = "export"', 'inputs = ["cross_atlas", "search_index"]',
              'formats = ["parquet", "json"]']
    path = tmp / "cross.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def chain(world, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("nightly")
    specs = [_atlas_spec(tmp, atlas, world[atlas]["h5ad"]) for atlas in SETUP]
    return tmp, specs, _cross_spec(tmp)


def _exports_have_their_schemas(folder: Path) -> None:
    """Every cross-atlas table exported with its documented columns, as Parquet and strict JSON (NaN → null)."""
    import json

    import pandas as pd

    from cytodask.cross_atlas.export import EXPORTS

    for name, (columns, _) in EXPORTS.items():
        assert list(pd.read_parquet(folder / f"cross_atlas_{name}.parquet").columns) == list(columns), name
        doc = json.loads((folder / f"cross_atlas_{name}.json").read_text(),
                         parse_constant=lambda c, name=name: pytest.fail(f"{name}: {c} in strict JSON"))
        assert doc["columns"] == list(columns)
    entities = pd.read_parquet(folder / "search_entities.parquet")
    assert list(entities.columns) == ["name", "type", "aliases", "parents", "appears"] and len(entities) > 100


def _states(done: dict) -> dict[str, list[str]]:
    return {Path(step).stem: [r.state for r in reports] for step, reports in done.items()}


def test_the_chain_runs_in_order_and_skips_when_unchanged(chain) -> None:
    from cytodask.core.tables import read_table
    from cytodask.cross_atlas.nightly import nightly

    tmp, specs, cross = chain
    lines: list[str] = []
    first = nightly(cross, rebuild=specs, echo=lines.append)
    assert list(_states(first)) == ["cima", "inflammation", "scatlas", "cross"]  # the order run
    assert _states(first)["cross"] == ["computed"] * 3  # cross_atlas, search_index, export
    assert all(s == "computed" for states in _states(first).values() for s in states)
    steps = [line for line in lines if line.startswith("nightly step")]
    assert steps[0].startswith("nightly step 1/4: cytodask rebuild") and steps[3].startswith("nightly step 4/4: cross")
    meta = read_table(tmp / "res" / "cross_atlas" / "stages" / "cross_atlas" / "data.zarr", "meta")
    assert (meta["variable"] == "sex").all() and meta["k"].max() == 2  # CIMA and Inflammation carry sex
    _exports_have_their_schemas(tmp / "res" / "cross_atlas" / "exports" / "export")

    again = nightly(cross, rebuild=specs, echo=None)  # nothing changed: every stage of every step skips
    assert all(s == "skipped" for states in _states(again).values() for s in states)

    # one atlas changes (its pseudobulk's min_cells): it recomputes, so do cross-atlas and the index; the
    # other two rebuilds skip
    specs[2].write_text(specs[2].read_text().replace("min_cells = 10", "min_cells = 12"))
    changed = _states(nightly(cross, rebuild=specs, echo=None))
    assert changed["cima"] == changed["inflammation"] == ["skipped"] * 3  # convert, pseudobulk, activity
    assert changed["scatlas"] == ["skipped", "computed", "computed"] and changed["cross"] == ["computed"] * 3


def test_a_failed_step_stops_the_chain_and_names_it(chain, tmp_path) -> None:
    from cytodask.cross_atlas.__main__ import main
    from cytodask.cross_atlas.nightly import NightlyStepFailed, nightly

    tmp, specs, cross = chain
    broken = tmp_path / "broken.toml"
    broken.write_text(specs[1].read_text().replace('name = "activity"', 'name = "activity"\nbogus_option = 1'))
    manifest = tmp / "res" / "cross_atlas" / "stages" / "cross_atlas" / "manifest.json"
    before = manifest.stat().st_mtime_ns if manifest.exists() else None
    with pytest.raises(NightlyStepFailed, match=r"step 2/4 \(.*broken.toml\) failed.*Not run: \[.*cross.toml'\]"):
        nightly(cross, rebuild=[specs[0], broken, specs[2]], echo=None)
    assert (manifest.stat().st_mtime_ns if manifest.exists() else None) == before  # cross-atlas did not run
    assert main([str(cross), "--rebuild", str(broken)]) == 1
    assert main([str(cross), "--install"]) == 1  # --install without --schedule


def test_the_scheduled_entry_runs_the_whole_chain(chain, monkeypatch, capsys) -> None:
    from cytodask.cross_atlas.__main__ import main
    from cytodask.cross_atlas.nightly import nightly_job
    from cytodask.orchestration.schedule_render import cron_line, systemd_units

    tmp, specs, cross = chain
    monkeypatch.setenv("CYTODASK_RESULTS", "/data/results")
    job = nightly_job(Path(__file__).parents[2] / "graphs" / "cross_atlas.toml", at="02:30",
                      rebuild=[Path(__file__).parents[2] / "graphs" / f"{a}.toml" for a in SETUP])
    line = cron_line(job)
    assert line.startswith("30 2 * * * ") and "CYTODASK_RESULTS=/data/results " in line
    argv = job.argv
    assert argv[1:3] == ["-m", "cytodask.cross_atlas"] and "--wait" in argv
    assert [Path(argv[i + 1]).name for i, a in enumerate(argv) if a == "--rebuild"] == [
        "cima.toml", "inflammation.toml", "scatlas.toml"]
    assert str(job.log).endswith("/data/results/cross_atlas/logs/nightly.log")
    assert "cytodask-nightly-cross_atlas.service" in systemd_units(job)
    assert main([str(cross), "--rebuild", str(specs[0]), "--schedule", "02:30"]) == 0
    out = capsys.readouterr().out
    assert "-m cytodask.cross_atlas" in out and f"--rebuild {specs[0]}" in out
    assert main([str(cross), "--schedule", "25:00"]) == 1
    assert "not a time of day" in capsys.readouterr().err
    with pytest.raises(ValueError, match="does not exist"):
        nightly_job(cross, rebuild=[tmp / "missing.toml"], at="02:30")


def test_rebuild_of_the_cross_atlas_spec_points_to_its_runner(monkeypatch, tmp_path) -> None:
    """`cytodask rebuild` needs an atlas [source]; the shipped cross-atlas spec has none and reads other rebuilds."""
    from cytodask.orchestration.rebuild import rebuild
    from cytodask.orchestration.spec import SpecError

    repo = Path(__file__).resolve().parents[2]
    monkeypatch.setenv("CYTODASK_RESULTS", str(tmp_path))
    with pytest.raises(SpecError, match=r"needs no \[source\]: run it with `python -m cytodask.cross_atlas .*"
                                        r"cross_atlas.toml`"):
        rebuild(repo / "graphs" / "cross_atlas.toml", output=tmp_path / "out", echo=None)
    # an atlas spec without a path gets no such hint (its convert stage reads the atlas)
    spec = (repo / "graphs" / "demo.toml").read_text()
    bare = tmp_path / "bare.toml"
    bare.write_text(spec.replace("[source]", "[source]\n# no path", 1).replace('path = "', 'unused_path = "', 1))
    with pytest.raises(SpecError, match="needs 'path'") as err:
        rebuild(bare, output=tmp_path / "out2", echo=None)
    assert "needs no [source]" not in str(err.value)
