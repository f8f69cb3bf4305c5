"""graphs/cima.toml, inflammation.toml and scatlas.toml validate and run on synthetic atlases
with the real atlases' columns (names, Ensembl var index, exclusions, metadata tables)."""

from __future__ import annotations

from pathlib import Path

import anndata
import h5py
import numpy as np
import pandas as pd
import pytest

from cytodask.demo import SyntheticAtlasSpec, donor_table, write_h5ad
from cytodask.orchestration.spec import load_spec
from tests.e2e import REPO, cytodask

pytestmark = pytest.mark.slow
SPEC = SyntheticAtlasSpec(n_cells=3000, n_genes=5000, n_donors=10, seed=11)


def _rewrite(path: Path, obs: pd.DataFrame, var: pd.DataFrame | None = None) -> None:
    with h5py.File(path, "r+") as f:
        for key, frame in (("obs", obs), ("var", var)):
            if frame is not None:
                del f[key]
                anndata.io.write_elem(f, key, frame)


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> tuple[Path, pd.DataFrame, pd.DataFrame]:
    d = tmp_path_factory.mktemp("shaped")
    path = d / "base.h5ad"
    write_h5ad(SPEC, path)
    a = anndata.read_h5ad(path, backed="r")
    return path, a.obs.copy(), a.var.copy()


def _copy(base_path: Path, dest: Path) -> Path:
    dest.write_bytes(base_path.read_bytes())
    return dest


def _run(spec: str, env: dict[str, str]) -> None:
    res = cytodask("rebuild", str(REPO / "graphs" / spec), "-q", env=env)
    assert res.returncode == 0, res.stdout + res.stderr


def test_cima_spec(tmp_path: Path, base):
    path, obs, _ = base
    atlas = _copy(path, tmp_path / "cima.h5ad")
    o = obs.copy()
    o["cell_type_l4"] = pd.Categorical(o["cell_type_l3"].astype(str) + np.where(np.arange(len(o)) % 2, "_a", "_b"))
    _rewrite(atlas, o)
    rng = np.random.default_rng(0)
    donors = donor_table(SPEC)
    meta = donors.rename(columns={"sample": "Sample_name", "age": "Age"})
    meta.to_csv(tmp_path / "meta.csv", index=False)
    pd.DataFrame({"Sample_name": donors["sample"], "ALT": rng.normal(30, 5, len(donors)),
                  "AST": rng.normal(25, 5, len(donors))}).to_csv(tmp_path / "bio.csv", index=False)
    pd.DataFrame({"Sample_name": donors["sample"], **{f"M{i}": rng.normal(size=len(donors)) for i in range(5)}}
                 ).to_csv(tmp_path / "met.csv", index=False)
    env = {"CIMA_H5AD": str(atlas), "CIMA_SAMPLE_META": str(tmp_path / "meta.csv"),
           "CIMA_BIOCHEM": str(tmp_path / "bio.csv"), "CIMA_METABOLITES": str(tmp_path / "met.csv"),
           "CYTODASK_RESULTS": str(tmp_path / "res")}
    _run("cima.toml", env)
    out = tmp_path / "res" / "cima"
    assert (out / "exports" / "export_l2" / "correlations.parquet").exists()
    l4 = anndata.read_zarr(out / "stages" / "activity_l4" / "data.zarr")
    assert set(l4.obs["cell_type_l4"].astype(str)) <= set(o["cell_type_l4"].astype(str))


def test_inflammation_spec_with_ensembl_ids_and_exclusions(tmp_path: Path, base):
    path, obs, var = base
    atlas = _copy(path, tmp_path / "infl.h5ad")
    o = pd.DataFrame(index=obs.index)
    level1 = obs["cell_type_l1"].astype(str).to_numpy().copy()
    level1[::50] = "Doublets"
    level1[1::97] = "LowQuality_cells"
    o["Level1"] = pd.Categorical(level1)
    o["Level2"] = obs["cell_type_l2"]
    o["sampleID"] = obs["sample"]
    sick = obs["disease"].astype(str) == "disease"
    o["disease"] = pd.Categorical(np.where(sick, "RA", "healthy"))
    o["diseaseGroup"] = pd.Categorical(np.where(sick, "IMIDs", "healthy"))
    donor_num = obs["donor"].astype(str).str[1:].astype(int)
    o["therapyResponse"] = pd.Categorical(np.where(sick, np.where(donor_num % 2, "R", "NR"), "NA"))
    o["patientID"] = obs["donor"]
    o["studyID"] = pd.Categorical(np.where(donor_num % 3, "S1", "S2"))
    o["timepoint"] = 1  # no repeated patient: the longitudinal stage says so instead of failing
    v = pd.DataFrame({"symbol": var.index.astype(str)}, index=var["gene_ids"].astype(str).to_numpy())
    _rewrite(atlas, o, v)
    env = {"INFLAMMATION_H5AD": str(atlas), "CYTODASK_RESULTS": str(tmp_path / "res")}
    _run("inflammation.toml", env)
    out = tmp_path / "res" / "inflammation"
    pb = anndata.read_zarr(out / "stages" / "pseudobulk" / "data.zarr")
    assert not ({"Doublets", "LowQuality_cells"} & set(pb.obs["Level1"].astype(str)))
    act = anndata.read_zarr(out / "stages" / "activity" / "data.zarr")
    assert act.uns["common_genes"] > 4000  # symbols found through var['symbol']
    folder = out / "exports" / "export"
    diff = pd.read_parquet(folder / "disease_vs_healthy.parquet")  # the disease stages of cytodask.disease
    assert set(diff["disease"]) == {"RA"} and set(diff["control_scope"]) <= {"study_matched", "all_healthy_fallback"}
    longitudinal = pd.read_parquet(folder / "disease_longitudinal.parquet")
    assert not longitudinal["has_longitudinal"].any() and longitudinal["reason"].str.contains("two or more").all()
    for stem in ("disease_profiles", "disease_drivers", "disease_conserved", "treatment_response",
                 "validation_quality"):
        assert len(pd.read_parquet(folder / f"{stem}.parquet")), stem


def test_scatlas_spec(tmp_path: Path):
    """graphs/scatlas.toml on the synthetic scAtlas-like world (sampleID, donorID, tissue with Tumor, Adjacent,
    Normal and Blood, organ, cancerType, cellType1, subCluster; fibroblasts and CD8 T cells with their markers):
    the blood-like demo atlas cannot stand in for it (no fibroblast, no CD8 T label, no paired tissues)."""
    world = f"synthetic:scatlas?dir={tmp_path / 'world'}"
    _run("scatlas.toml", {"SCATLAS_H5AD": world, "CYTODASK_RESULTS": str(tmp_path / "res")})
    folder = tmp_path / "res" / "scatlas" / "exports" / "export"
    diff = pd.read_parquet(folder / "differential.parquet")  # the unpaired variant, labelled so by its stage
    assert {"cancerType", "cellType1"} <= set(diff.columns)
    assert set(diff["group1"]) == {"Tumor"} and set(diff["group2"]) == {"Adjacent"}
    paired = pd.read_parquet(folder / "tumor_vs_adjacent.parquet")
    assert paired["n_pairs"].max() >= 6 and set(paired["test"]) == {"paired_t", "wilcoxon_signed_rank"}
    for stem in ("cancer_type_specificity", "immune_infiltration", "t_cell_exhaustion", "caf_subtypes",
                 "organ_specificity", "organ_composition", "validation_quality"):
        assert len(pd.read_parquet(folder / f"{stem}.parquet")), stem


@pytest.mark.parametrize("name", ["cima", "inflammation", "scatlas", "demo"])
def test_specs_parse_and_build(name: str, monkeypatch):
    spec = load_spec(REPO / "graphs" / f"{name}.toml")
    assert spec.stages and spec.name == name
