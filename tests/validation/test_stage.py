"""The validation stage from a spec, into the exports and the report; and through ``Pipeline``."""

from __future__ import annotations

import json
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from cytodask import Config, Pipeline
from cytodask.ingest import LocalH5ADSource
from cytodask.validation.export import SCHEMAS
from tests.e2e import SPEC

STAGES = """
[[stages]]
name = "pseudobulk"
type = "pseudobulk"
inputs = ["convert"]
by = ["cell_type_l2", "sample"]
carry = ["disease"]
min_cells = 5
[[stages]]
name = "activity"
type = "activity"
inputs = ["pseudobulk"]
[[stages]]
name = "activity_cells"
type = "activity"
inputs = ["convert"]
layer = "X"
[[stages]]
name = "validation"
type = "validation"
inputs = ["activity", "pseudobulk", "activity_cells", "convert"]
expression = "pseudobulk"
single_cell = "activity_cells"
cells = "convert"
sample_col = "sample"
cell_type_col = "cell_type_l2"
n_boot = 3
max_cells = 200
[[stages]]
name = "export"
type = "export"
inputs = ["activity", "validation"]
formats = ["parquet", "json"]
"""


def _spec(tmp_path: Path, atlas: Path) -> Path:
    head = SPEC.split("[[stages]]")[0].format(atlas=atlas, batch=1000, processes="false")
    spec = tmp_path / "validation.toml"
    spec.write_text(head + STAGES)
    return spec


@pytest.mark.slow
def test_validation_stage_from_spec(tmp_path: Path, e2e_atlas: Path) -> None:
    from cytodask.orchestration.rebuild import rebuild
    from cytodask.validation import validate

    out = tmp_path / "out"
    rebuild(_spec(tmp_path, e2e_atlas), output=out, echo=None)
    exports = out / "exports" / "export"
    quality = pd.read_parquet(exports / "validation_quality.parquet")
    assert list(quality.columns[:2]) == ["signature", "quality_score"] and quality["signature"].iloc[-1] == "(overall)"
    for element, (stem, columns, _) in SCHEMAS.items():
        table = pd.read_parquet(exports / f"{stem}.parquet")
        assert list(table.columns) == columns, element
        assert len(table) > 0, element
    doc = json.loads((exports / "validation_single_cell_auc.json").read_text())  # strict JSON: NaN → null
    assert doc["columns"][0] == "signature"
    page = (out / "report.html").read_text()
    for title in ("quality score", "pseudobulk vs single cell", "single-cell AUC", "gene coverage"):
        assert f"Validation: {title}" in page
    assert "Not available" not in page
    # the stage equals the function on the same stored inputs
    stages = out / "stages"
    cells = ad.read_zarr(stages / "activity_cells" / "data.zarr")
    ref = validate(ad.read_zarr(stages / "activity" / "data.zarr"), ad.read_zarr(stages / "pseudobulk" / "data.zarr"),
                   sample_col="sample", cell_type_col="cell_type_l2", single_cell=cells[~cells.obs["empty"]],
                   cells=str(stages / "convert" / "data.zarr"), n_boot=3, max_cells=200)
    got = pd.read_parquet(exports / "validation_pseudobulk_vs_single_cell.parquet")
    pd.testing.assert_frame_equal(got, ref.pseudobulk_vs_single_cell, check_dtype=False)


@pytest.mark.slow
def test_validation_through_pipeline(tmp_path: Path, e2e_atlas: Path) -> None:
    pipe = Pipeline(Config(cluster="local", n_workers=1, threads_per_worker=2, processes=False,
                           dashboard_address=":0", batch_size=1000))
    res = pipe.process(source=LocalH5ADSource(e2e_atlas), analyses=["activity", "validation"],
                       output_dir=tmp_path / "p", n_boot=3)
    quality = res.tables["validation"]["activity_CytoSig_cell_type_l2"]
    assert quality["signature"].iloc[-1] == "(overall)" and np.isfinite(quality["quality_score"].iloc[-1])
    why = quality.loc[quality["signature"] == "IFNG", "missing_components"].iloc[0]
    assert "single_cell: no single-cell activity given" in why
    assert (res.exports / "export_CytoSig_cell_type_l2" / "validation_quality.parquet").exists()
