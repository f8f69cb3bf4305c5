"""Truth recovery on the scAtlas-like synthetic world (cytodask.demo.world), rebuilt from a spec.

One rebuild (tests/cancer/_world.py: convert → pseudobulk → activity, single-cell activity, every cancer
and organ stage, export, report) serves these tests and tests/organ/test_world.py.
"""

from __future__ import annotations

import json
import shutil

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from cytodask.cancer.api.infiltration import INFILTRATION_SUBTYPES, fraction_column
from cytodask.core.tables import read_table
from cytodask.core.vocabulary import ancestors
from cytodask.demo.spec import DIRICHLET_CONCENTRATION
from cytodask.demo.world import cell_metadata, world_spec
from tests.cancer._world import read_activity, stage_data, world_run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def world():
    return world_run()


def _effects(truth, kind):
    return [e for e in truth["effects"] if e["kind"] == kind]


def test_tumor_shifts_found_with_sign_at_fdr(world, record_property):
    out, truth, _ = world
    t = read_table(stage_data(out, "tumor_vs_adjacent"))
    pooled = t[(t["cancer_type"] == "pooled") & (t["test"] == "paired_t")].set_index(["cell_type", "signature"])
    for e in _effects(truth, "tumor_shift"):
        row = pooled.loc[(e["cell_type"], e["signature"])]
        sign = 1 if e["direction"] == "up" else -1
        assert row["qvalue"] < 0.05 and np.sign(row["diff"]) == sign, (e["id"], row.to_dict())
        per_type = t[(t["cell_type"] == e["cell_type"]) & (t["signature"] == e["signature"])
                     & (t["test"] == "paired_t") & (t["cancer_type"] != "pooled")]
        assert (np.sign(per_type["diff"]) == sign).all() and len(per_type) == 3
    # nothing where nothing was planted. Null rows: every signature of the null cell types, and the null
    # signatures of every cell type without a tumour-side effect (in Endothelial and Macrophage the planted
    # shift moves correlated signatures too, through the ridge fit; CD8 T and Fibroblast carry the exhausted
    # and CAF states of tumours). BH holds the expected false discovery proportion at 0.05; this one seeded
    # realisation is allowed twice that, and the null cell types none at all.
    null = pooled[pooled.index.get_level_values("cell_type").isin(truth["null"]["cell_types"])]
    assert len(null) and not (null["qvalue"] < 0.05).any()
    planted = {e["cell_type"] for e in truth["effects"] if e["kind"] in ("tumor_shift", "exhaustion", "caf_subtype")}
    cell_type, signature = (pooled.index.get_level_values(k) for k in ("cell_type", "signature"))
    is_null = cell_type.isin(truth["null"]["cell_types"]) | (
        signature.isin(truth["null"]["signatures"]) & ~cell_type.isin(planted))
    found = pooled["qvalue"].to_numpy() < 0.05
    fdp = (found & is_null).sum() / found.sum()
    record_property("tumor_vs_adjacent_fdp", float(fdp))
    assert is_null.sum() > 100 and fdp <= 0.10, pooled[found & is_null]


def test_unpaired_donors_and_blood_excluded(world):
    out, _, _ = world
    t = read_table(stage_data(out, "tumor_vs_adjacent"))
    obs = read_activity(out).obs
    obs = obs[~obs["empty"].to_numpy(dtype=bool)]
    tissues = obs.groupby("donorID", observed=True)["tissue"].agg(lambda s: set(s.astype(str)))
    paired = tissues[tissues.map(lambda s: {"Tumor", "Adjacent"} <= s)].index
    with_tissue = tissues[tissues.map(lambda s: bool(s & {"Tumor", "Adjacent"}))]
    assert t.attrs["n_donors_paired"] == len(paired) >= 6
    assert t.attrs["n_donors_unpaired"] == len(with_tissue) - len(paired) > 0
    assert t.attrs["n_rows_other_tissue"] == int((~obs["tissue"].isin(["Tumor", "Adjacent"])).sum()) > 0
    pooled = t[(t["cancer_type"] == "pooled") & (t["test"] == "paired_t")]
    assert pooled["n_pairs"].max() == len(paired)


def test_infiltration_equals_generated_proportions(world):
    out, truth, _ = world
    samples = read_table(stage_data(out, "infiltration")).set_index("sample")
    # realised: every tumour cell's generated subCluster through the truth's own crosswalk, counted by pandas
    obs = cell_metadata(world_spec("scatlas", size="unit"))
    tumour = obs[obs["tissue"] == "Tumor"]
    common = tumour["subCluster"].astype(str).map(truth["crosswalk"])
    assert common.notna().all()
    counts = pd.crosstab(tumour["sampleID"].astype(str), common)
    frac = counts.div(counts.sum(axis=1), axis=0)
    assert sorted(samples.index) == sorted(frac.index)
    for subtype, (keep, drop) in INFILTRATION_SUBTYPES.items():
        cols = [c for c in frac.columns if keep in ancestors(c) and not any(d in ancestors(c) for d in drop)]
        want = frac[cols].sum(axis=1).reindex(samples.index)
        np.testing.assert_allclose(samples[fraction_column(subtype)], want, rtol=0, atol=1e-12, err_msg=subtype)
    # expected: the generator's proportions p before the per-sample Dirichlet(C p) noise. A sample's fraction
    # has variance p(1-p)/(C+1) from the Dirichlet plus p(1-p)/n from drawing its n cells; the mean over a
    # cancer type's samples must lie within 4 of its standard errors.
    def within(got, p):
        n = samples.loc[got.index, "n_cells"].mean()
        se = np.sqrt(p * (1 - p) * (1 / (DIRICHLET_CONCENTRATION + 1) + 1 / n) / len(got))
        return abs(got.mean() - p) < 4 * se

    for e in _effects(truth, "infiltration"):
        (ctype,) = e["groups"]["cancerType"]
        got = samples.loc[samples["cancer_type"] == ctype, "immune_fraction"]
        assert within(got, e["immune_fraction"]), (ctype, got.mean(), e["immune_fraction"])
    expected = truth["composition"]
    for ctype, sub in samples.groupby("cancer_type"):
        for subtype in ("CD8 T", "Treg", "Macrophage", "NK"):
            want = sum(p for c, p in expected[ctype].items() if subtype in ancestors(c))
            assert within(sub[fraction_column(subtype)], want), (ctype, subtype, sub[fraction_column(subtype)].mean())
    assert samples.groupby("cancer_type")["immune_fraction"].mean().idxmax() == "LUAD"


def test_exhaustion_from_expression(world, record_property):
    out, truth, cells_truth = world
    cells = read_table(stage_data(out, "exhaustion"), "cells")
    true = cells_truth.loc[cells["cell"], "exhausted"].to_numpy()
    called = cells["exhausted"].to_numpy()
    precision, recall = (called & true).sum() / called.sum(), (called & true).sum() / true.sum()
    record_property("exhaustion_precision", precision)
    record_property("exhaustion_recall", recall)
    base = true.mean()
    # markers are sparse in this world (≈0.14 counts per marker in an exhausted cell, none in ~43 % of them)
    assert precision > 3 * base and recall > 0.4, (precision, recall, base)
    comp = read_table(stage_data(out, "exhaustion")).set_index(["signature", "test"])
    for e in _effects(truth, "exhaustion"):
        row = comp.loc[(e["signature"], "paired_t")]
        assert row["qvalue"] < 0.05 and row["diff"] > 0 and row["n_pairs"] >= 6, row.to_dict()


def test_caf_subtypes_agree_with_truth(world, record_property):
    out, truth, cells_truth = world
    cells = read_table(stage_data(out, "caf"), "cells")
    want = cells_truth.loc[cells["cell"], "caf_subtype"].replace("", "none").to_numpy()
    confusion = pd.crosstab(pd.Series(want, name="truth"), pd.Series(cells["caf_subtype"].to_numpy(), name="call"))
    record_property("caf_confusion", confusion.to_dict())
    assigned = (want != "none") & (cells["caf_subtype"].to_numpy() != "unassigned")
    agree = (want[assigned] == cells["caf_subtype"].to_numpy()[assigned]).mean()
    assert agree > 0.8, confusion
    for sub in ("myCAF", "iCAF", "apCAF"):  # the called subtype is the truth's most frequent one
        assert confusion.loc[sub, ["myCAF", "iCAF", "apCAF"]].idxmax() == sub, confusion
    act = read_table(stage_data(out, "caf"))
    for e in _effects(truth, "caf_subtype"):
        rows = act[act["signature"] == e["signature"]].set_index("caf_subtype")
        assert rows["qvalue"].iloc[0] < 0.05 and rows["mean"].idxmax() == e["groups"]["caf_subtype"][0]


def test_no_cancer_type_program_found(world):
    out, _, _ = world
    t = read_table(stage_data(out, "cancer_type"))
    assert set(t["cancer_type"]) == {"LIHC", "LUAD", "CRC"} and t["pvalue"].notna().all()
    assert (t["qvalue"] >= 0.05).all()  # no cancer-type program was planted


def test_exports_and_report(world):
    out, _, _ = world
    manifest = json.loads((out / "exports" / "export" / "manifest.json").read_text())
    text = json.dumps(manifest)
    for stem in ("tumor_vs_adjacent", "immune_infiltration_summary", "t_cell_exhaustion_cells", "caf_subtypes",
                 "cancer_type_specificity", "organ_specificity", "organ_specificity_profiles", "organ_composition"):
        assert f"{stem}.parquet" in text, stem
    exhaustion = pd.read_parquet(out / "exports" / "export" / "t_cell_exhaustion.parquet")
    assert list(exhaustion.columns[:4]) == ["signature", "n_pairs", "mean_exhausted", "mean_other"]
    html = (out / "report.html").read_text()
    for ident in ("tumor-vs-adjacent", "immune-infiltration", "t-cell-exhaustion", "caf-subtypes",
                  "organ-specificity", "cancer-type-specificity", "organ-composition"):
        assert f'id="{ident}"' in html, ident


def test_exhaustion_score_is_scanpy_score_genes_on_the_world_cells(world):
    """The stage's streamed score of every CD8 T cell equals scanpy's score_genes on the same cells."""
    import warnings

    import scanpy as sc
    import scipy.sparse as sp

    from cytodask.cancer import EXHAUSTION_MARKERS
    from cytodask.organ.tablestage import lazy_cells

    out, _, _ = world
    cells = read_table(stage_data(out, "exhaustion"), "cells")
    expr = lazy_cells(stage_data(out, "convert"))
    mask = expr.obs_names.isin(cells["cell"])
    assert mask.sum() == len(cells) > 500
    ref = ad.AnnData(sp.csr_matrix(expr.X[np.flatnonzero(mask)].compute()), obs=expr.obs[mask], var=expr.var)
    ref.X = ref.X.astype(np.float64)
    sc.pp.normalize_total(ref, target_sum=1e4)
    sc.pp.log1p(ref)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sc.tl.score_genes(ref, list(EXHAUSTION_MARKERS), ctrl_size=50, n_bins=25, random_state=0)
    want = ref.obs["score"].reindex(cells["cell"]).to_numpy()
    # same control genes, float64 means of ~300 values: equal to rounding
    np.testing.assert_allclose(cells["score"].to_numpy(), want, rtol=0, atol=1e-12)


def _stem(stage_type: str, table: str, tables: dict) -> str:
    return stage_type if table == next(iter(tables)) else f"{stage_type}_{table}"


def test_export_schemas(world):
    """Every exported table of the cancer and organ stages has its declared columns, in the declared order,
    after at most its stratum column (e.g. the cell type of the infiltration correlation)."""
    from cytodask.core.registry import get_stage_type

    out, _, _ = world
    folder = out / "exports" / "export"
    manifest = json.loads((folder / "manifest.json").read_text())
    n = 0
    for stage_type in ("tumor_vs_adjacent", "cancer_type_specificity", "immune_infiltration", "t_cell_exhaustion",
                       "caf_subtypes", "organ_specificity", "organ_composition"):
        tables = get_stage_type(stage_type).TABLES
        for table, (columns, description) in tables.items():
            stem = _stem(stage_type, table, tables)
            got = list(pd.read_parquet(folder / f"{stem}.parquet").columns)
            lead = got.index(columns[0])
            assert lead <= 1 and got[lead:lead + len(columns)] == list(columns), (stem, got)
            records = json.loads((folder / f"{stem}.json").read_text())
            assert records["columns"] == got and manifest["tables"][stem]["description"] == description
            n += 1
    assert n == 15


def test_a_killed_stage_is_recomputed_alone_and_identically(world):
    """A run killed while the CAF stage wrote its tables: the rerun recomputes that stage only (its inputs
    are skipped) and writes the same tables; a finished run is skipped whole."""
    from cytodask.orchestration.rebuild import rebuild

    out, _, _ = world
    spec = out.parent / "spec.toml"
    before = {t: read_table(stage_data(out, "caf"), t) for t in ("table", "cells", "proportions")}
    assert {r.state for r in rebuild(spec, output=out, echo=None)} == {"skipped"}
    manifest = out / "stages" / "caf" / "manifest.json"
    m = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**m, "state": "running"}))
    for record in (out / "stages" / "caf" / "blocks").iterdir():
        record.unlink()
    shutil.rmtree(stage_data(out, "caf") / "cells")
    states = {r.name: r.state for r in rebuild(spec, output=out, echo=None)}
    assert states["caf"] == "computed"
    assert all(states[s] == "skipped" for s in ("convert", "activity_cells", "exhaustion", "tumor_vs_adjacent"))
    for t, frame in before.items():
        pd.testing.assert_frame_equal(read_table(stage_data(out, "caf"), t), frame)
