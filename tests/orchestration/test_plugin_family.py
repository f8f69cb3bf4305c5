"""A family from outside cytodask, registered only through the ``cytodask.stages`` entry point.

The toy family (``tests/orchestration/toy_family``) is a package with a
``*.dist-info/entry_points.txt`` on ``sys.path``, as an installed plugin would
be. It runs from a spec, through ``Pipeline``, into the exports and the report,
with no file under ``cytodask/`` edited. The test also checks that
orchestration, export and report hold no list of families.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from cytodask import Config, Pipeline
from cytodask.core import registry
from cytodask.ingest import LocalH5ADSource
from tests.e2e import SPEC

TOY = Path(__file__).parent / "toy_family"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def toy(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(TOY))
    registry.load_entry_points(reload=True)
    yield registry.get_stage_type("signature_spread")
    registry.unregister_stage("signature_spread")
    registry.load_entry_points(reload=True)
    import sys

    for mod in [m for m in sys.modules if m.startswith("cytodask_toy")]:
        del sys.modules[mod]


def _spec(tmp_path: Path, atlas: Path) -> Path:
    """The e2e spec's atlas and config, then pseudobulk → activity → the toy stage → export."""
    head = SPEC.split("[[stages]]")[0].format(atlas=atlas, batch=1000, processes="false")
    spec = tmp_path / "toy.toml"
    spec.write_text(head + """
[[stages]]
name = "pseudobulk"
type = "pseudobulk"
inputs = ["convert"]
by = ["cell_type_l2", "sample"]
[[stages]]
name = "activity"
type = "activity"
inputs = ["pseudobulk"]
[[stages]]
name = "spread"
type = "signature_spread"
inputs = ["activity"]
min_samples = 3
[[stages]]
name = "export"
type = "export"
inputs = ["activity", "spread"]
formats = ["parquet", "json"]
""")
    return spec


@pytest.mark.slow
def test_toy_family_from_spec_into_exports_and_report(toy, tmp_path: Path, e2e_atlas: Path):
    from cytodask.orchestration.rebuild import rebuild

    assert toy.type_name == "signature_spread" and toy.__module__ == "cytodask_toy.stage"
    out = tmp_path / "out"
    reports = rebuild(_spec(tmp_path, e2e_atlas), output=out, echo=None)
    assert [r.name for r in reports] == ["convert", "pseudobulk", "activity", "spread", "export"]
    act = ad.read_zarr(out / "stages" / "activity" / "data.zarr")
    keep = ~act.obs["empty"].to_numpy(dtype=bool)
    ref = np.asarray(act.X, dtype=np.float64)[keep]
    exported = pd.read_parquet(out / "exports" / "export" / "signature_spread.parquet")
    assert list(exported.columns) == ["signature", "mean", "sd", "n_samples"]
    # independent reference: pandas' mean and sample sd of the exported activity
    frame = pd.DataFrame(ref, columns=act.var_names)
    np.testing.assert_allclose(exported["mean"], frame.mean().to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(exported["sd"], frame.std(ddof=1).to_numpy(), rtol=1e-12)
    manifest = json.loads((out / "exports" / "export" / "manifest.json").read_text())
    assert manifest["tables"]["signature_spread"]["stage"] == "spread"
    doc = json.loads((out / "exports" / "export" / "signature_spread.json").read_text())
    assert doc["columns"] == ["signature", "mean", "sd", "n_samples"] and len(doc["records"]) == act.n_vars
    page = (out / "report.html").read_text()
    assert "Most variable signatures (spread)" in page and 'class="values spread"' in page
    top = exported.sort_values("sd", ascending=False, kind="stable")["signature"].iloc[0]
    assert re.search(rf"<td>{re.escape(str(top))}</td>", page)


@pytest.mark.slow
def test_toy_family_through_pipeline(toy, tmp_path: Path, e2e_atlas: Path):
    pipe = Pipeline(Config(cluster="local", n_workers=1, threads_per_worker=2, processes=False,
                           dashboard_address=":0", batch_size=1000))
    res = pipe.process(source=LocalH5ADSource(e2e_atlas), analyses=["activity", "signature_spread"],
                       output_dir=tmp_path / "p", min_samples=3)
    table = res.tables["signature_spread"]["activity_CytoSig_cell_type_l2"]
    assert len(table) == 43 and (table["n_samples"] >= 3).all()
    assert (res.exports / "export_CytoSig_cell_type_l2" / "signature_spread.parquet").exists()


def test_registry_errors_name_the_fix(toy):
    with pytest.raises(registry.RegistryError, match="Did you mean 'signature_spread'"):
        registry.get_stage_type("signature_sprea")
    with pytest.raises(registry.RegistryError, match="already registered"):
        registry.register_stage("activity")(toy)
    with pytest.raises(registry.RegistryError, match="not a Stage subclass"):
        registry.register_stage("bogus")(dict)
    assert registry.analyses()["signature_spread"] is toy


def test_orchestration_export_and_report_name_no_family():
    """The mechanism iterates the registry: none of these modules imports or names a family stage class."""
    families = ("activity", "aggregation", "correlation", "differential")
    for rel in ("cytodask/orchestration/spec.py", "cytodask/orchestration/pipeline.py",
                "cytodask/orchestration/rebuild.py", "cytodask/export/stage.py", "cytodask/export/report.py"):
        text = (REPO / rel).read_text()
        for fam in families:
            assert f"cytodask.{fam}" not in text, f"{rel} imports cytodask.{fam}"
        assert not re.search(r"\b(Activity|Pseudobulk|Differential|Correlation)Stage\b", text), rel
