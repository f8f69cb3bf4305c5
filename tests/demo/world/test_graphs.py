"""graphs/cima.toml and graphs/inflammation.toml run end to end on small synthetic atlases, today's stages,
and their exports show the planted truth (graphs/scatlas.toml: tests/orchestration/test_atlas_specs.py)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from cytodask.demo.world import truth, world_spec, write_world

GRAPHS = Path(__file__).resolve().parents[3] / "graphs"
CELLS = {"cima": 4_000, "inflammation": 6_000}

pytestmark = pytest.mark.slow  # ~1 min each on 2 busy cores (the validation stage of cima is most of it)


def _rebuild(atlas: str, tmp: Path, monkeypatch: pytest.MonkeyPatch, skip: tuple[str, ...] = ()
             ) -> tuple[Path, dict]:
    """Rebuild graphs/<atlas>.toml on the small world, without the stages named in ``skip`` (and their inputs)."""
    from dataclasses import replace

    from cytodask.orchestration.rebuild import rebuild
    from cytodask.orchestration.spec import load_spec

    spec = world_spec(atlas, n_cells=CELLS[atlas])
    world = tmp / "world"
    paths = write_world(spec, world)  # the graph's synthetic: source reuses it (same spec)
    env = {"CIMA_H5AD": f"synthetic:cima?cells={CELLS['cima']}&dir={world}",
           "INFLAMMATION_H5AD": f"synthetic:inflammation?cells={CELLS['inflammation']}&dir={world}",
           "CYTODASK_RESULTS": str(tmp / "res")}
    env.update({var: str(paths.tables[name]) for var, name in (
        ("CIMA_SAMPLE_META", "sample_meta"), ("CIMA_BIOCHEM", "biochemistry"), ("CIMA_METABOLITES", "metabolites"))
        if name in paths.tables})
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    graph = load_spec(GRAPHS / f"{atlas}.toml")
    stages = [{**st, "inputs": [i for i in st.get("inputs", []) if i not in skip]}
              for st in graph.stages if st["name"] not in skip]
    rebuild(replace(graph, stages=stages), echo=None, config_overrides={"cluster": "none"})
    return tmp / "res" / atlas, truth(spec)


def test_cima_graph_recovers_the_planted_associations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out, t = _rebuild("cima", tmp_path, monkeypatch)
    folder = out / "exports" / "export_l2"
    for stem in ("correlations", "validation_quality", "validation_sample_level", "activity_by_cell_type"):
        assert (folder / f"{stem}.parquet").exists(), stem
    corr = pd.read_parquet(folder / "correlations.parquet").set_index(["variable", "signature", "cell_type_l2"])
    checked = 0
    for e in t["effects"]:
        key = (e.get("variable"), e["signature"], e["cell_type"])
        if e["kind"] == "association" and key in corr.index and corr.loc[key, "n_samples"] >= 20:
            row = corr.loc[key]
            assert row["qvalue"] < 0.05 and row["rho"] * e["rho_sign"] > 0.5, (key, row.to_dict())
            checked += 1
    assert checked >= 1  # BMI-IL1B in Mono (the other exported variable, Age, is planted in a rarer type)


def test_inflammation_graph_sees_the_conserved_and_driver_shifts(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # treatment_response (minutes of model fits) is proven on the world in tests/disease/test_world.py
    out, t = _rebuild("inflammation", tmp_path, monkeypatch, skip=("treatment_response",))
    folder = out / "exports" / "export"
    for stem in ("disease_profiles", "disease_drivers", "disease_conserved", "disease_longitudinal",
                 "validation_quality"):
        assert (folder / f"{stem}.parquet").exists(), stem
    diff = pd.read_parquet(folder / "disease_vs_healthy.parquet").set_index(["disease", "signature", "cell_type"])
    checked = 0
    for e in t["effects"]:
        if e["kind"] in ("disease_shift", "driver") and "RA" in e["groups"]["disease"]:
            row = diff.loc[("RA", e["signature"], e["cell_type"])]
            assert row["diff"] > 0 and row["pvalue"] < 0.05, (e["id"], row.to_dict())
            checked += 1
    assert checked >= 2  # the conserved IFN1 shift and RA's driver
