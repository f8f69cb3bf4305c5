"""scAtlas-like design: normal organs, three cancer types with paired tumour/adjacent tissue, blood.

Planted (see truth.json): ``tumor_shift`` (Tumor vs Adjacent, every tumour sample: VEGFA in
endothelial cells, IL4 in macrophages); ``exhaustion`` (IL10 response in exhausted CD8 T cells,
which also have PDCD1, HAVCR2, LAG3, TIGIT, CTLA4, TOX up by 4 log2 and share every label with
the other CD8 T cells of ``CD8T02_Tem_GZMK``); ``caf_subtype`` (myCAF: TGFB1, iCAF: IL1A, apCAF:
IFNG responses, each subtype with its marker genes up by 4 log2 and no label telling them apart:
fibroblasts split 50/50 between two subClusters independently of the subtype);
``organ_program`` (a response in every cell type of the normal samples of one organ);
``infiltration`` (immune fraction of tumours per cancer type); compositions per organ and cancer
type (expected values before the per-sample Dirichlet noise).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cytodask.demo.world.atlases._build import effect, type_frame, type_mask, uniform_amp
from cytodask.demo.world.genes import CAF_MARKERS, EXHAUSTION_MARKERS, MARKER_LOG2
from cytodask.demo.world.model import AtlasDesign, design_rng
from cytodask.demo.world.spec import WorldSpec

LABELS = ("cellType1", "cellType2", "subCluster")
_IMMUNE = [  # id, cellType1, cellType2, subCluster, common, tissue share, blood share, depth
    ("CD8_Tn", "CD8+ T cell", "CD8+ Tn", "CD8T01_Tn_CCR7", "Naive CD8 T", 0.05, 0.07, 0.9),
    ("CD8_Tem", "CD8+ T cell", "CD8+ Tem", "CD8T02_Tem_GZMK", "Memory CD8 T", 0.17, 0.08, 0.9),
    ("CD4_Tn", "CD4+ T cell", "CD4+ Tn", "CD4T02_Tn_CCR7", "Naive CD4 T", 0.08, 0.30, 0.9),
    ("CD4_Tfh", "CD4+ T cell", "Tfh", "CD4T04_Tfh_IL6ST", "Tfh", 0.04, 0.02, 0.9),
    ("CD4_Treg", "CD4+ T cell", "Treg", "CD4T08_Treg_FOXP3", "Treg", 0.08, 0.04, 0.9),
    ("NK", "NK cell", "CD16hi NK", "I01_CD16hiNK_CREM", "NK", 0.08, 0.12, 1.0),
    ("B", "B cell", "Naive B", "B02_Bn_TCL1A", "Naive B", 0.10, 0.10, 1.0),
    ("Plasma", "Plasma cell", "Plasma cell", "B11_Plasma_IGHG2", "Plasma", 0.05, 0.01, 1.2),
    ("Mono", "Monocyte", "CD14 Mono", "M05_Mo_CD14", "CD14 Monocyte", 0.06, 0.20, 1.4),
    ("Macro", "Macrophage", "Macrophage", "M09_Mph_FOLR2", "Macrophage", 0.18, 0.0, 1.4),
    ("cDC2", "Dendritic cell", "cDC2", "M02_cDC2_CD1C", "cDC2", 0.04, 0.02, 1.3),
    ("pDC", "Plasmacytoid DC", "pDC", "M04_pDC_LILRA4", "pDC", 0.02, 0.01, 1.3),
    ("Mast", "Mast cell", "Mast", "M15_Mast_CPA3", "Mast", 0.05, 0.0, 1.2),
]
_EPITHELIA = {"Liver": ("Hep", "Hepatocyte", "Hepatocyte", "E01_Hep_ALB", "Hepatocyte"),
              "Lung": ("AT2", "Alveolar epithelial", "AT2", "E02_AT2_SFTPC", "Alveolar epithelial"),
              "Colon": ("Goblet", "Secretory epithelial", "Goblet", "E05_Goblet_MUC2", "Secretory epithelial"),
              "Skin": ("Kera", "Keratinocyte", "Basal keratinocyte", "E08_Kera_KRT14", "Keratinocyte")}
CAF_SUBTYPES = ("", "myCAF", "iCAF", "apCAF")
FIB_SUBCLUSTERS = ("S21_Fib_PDGFRA", "S22_Fib_COL1A1")
#: cancer type -> (organ, immune fraction of tumours): infiltration differs by cancer type.
CANCERS = {"LIHC": ("Liver", 0.30), "LUAD": ("Lung", 0.50), "CRC": ("Colon", 0.20)}
#: normal organ -> (immune, stromal fraction); the rest is the organ's epithelium.
ORGANS = {"Liver": (0.25, 0.10), "Lung": (0.35, 0.20), "Colon": (0.20, 0.25), "Skin": (0.10, 0.30)}
N_PAIRED, N_UNPAIRED, N_BLOOD, N_NORMAL = 5, 2, 2, 3  # donors per cancer type / per organ
EXHAUSTED_SHARE = {"Tumor": 0.5, "Adjacent": 0.1, "Normal": 0.0, "Blood": 0.0}  # of CD8T02_Tem_GZMK
CAF_SHARES = {"Tumor": (0.1, 0.4, 0.3, 0.2), "Adjacent": (0.6, 0.2, 0.15, 0.05), "Normal": (1.0, 0, 0, 0)}
TUMOR_SHIFTS = {"VEGFA": "Endothelial cell", "IL4": "Macrophage"}
CAF_SIGNATURES = {"myCAF": "TGFB1", "iCAF": "IL1A", "apCAF": "IFNG"}
EXHAUSTION_SIGNATURE = "IL10"
ORGAN_PROGRAMS = {"Liver": "BMP6", "Lung": "GMCSF", "Colon": "IL22", "Skin": "IL36"}


def _types() -> pd.DataFrame:
    rows = [(i, a, b, c, common, 0.0, depth) for i, a, b, c, common, _, _, depth in _IMMUNE]
    rows.append(("CD8_Tex", "CD8+ T cell", "CD8+ Tem", "CD8T02_Tem_GZMK", "Memory CD8 T", 0.0, 0.9, True, ""))
    rows += [(f"Fib_{sub[:3]}_{caf or 'normal'}", "Fibroblast", "Fibroblast", sub, "Fibroblast", 0.0, 1.2, False,
              caf) for sub in FIB_SUBCLUSTERS for caf in CAF_SUBTYPES]
    rows.append(("Endo", "Endothelial cell", "Endothelial", "S10_Endo_PECAM1", "Endothelial", 0.0, 1.2))
    rows += [(*labels, 0.0, 1.3) for labels in _EPITHELIA.values()]
    rows += [(f"Mal_{c}", "Malignant cell", "Tumor cell", f"T01_Malignant_{c}", "Malignant", 0.0, 1.5)
             for c in CANCERS]
    return type_frame(rows, LABELS)


def _samples() -> pd.DataFrame:
    rows = []
    for cancer, (organ, _) in CANCERS.items():
        for i in range(1, N_PAIRED + N_UNPAIRED + 1):
            donor = f"{cancer}_D{i:02d}"
            tissues = ["Tumor"] + (["Adjacent"] if i <= N_PAIRED else []) + (["Blood"] if i <= N_BLOOD else [])
            rows += [(f"{donor}_{t}", donor, t, "Blood" if t == "Blood" else organ, cancer) for t in tissues]
    for organ in ORGANS:
        for i in range(1, N_NORMAL + 1):
            donor = f"N{organ}_D{i:02d}"
            rows.append((f"{donor}_Normal", donor, "Normal", organ, "Normal"))
    return pd.DataFrame(rows, columns=["sampleID", "donorID", "tissue", "organ", "cancerType"])


def _composition(types: pd.DataFrame, tissue: str, organ: str, cancer: str) -> np.ndarray:
    w: dict[str, float] = {}
    if tissue == "Blood":
        immune, stromal = 1.0, 0.0
    elif tissue == "Tumor":
        immune, stromal = CANCERS[cancer][1], 0.25
    elif tissue == "Adjacent":
        immune, stromal = 0.20, 0.25
    else:
        immune, stromal = ORGANS[organ]
    share = {row[0]: row[6 if tissue == "Blood" else 5] for row in _IMMUNE}
    total = sum(share.values())
    for k, v in share.items():
        w[k] = immune * v / total
    exhausted = EXHAUSTED_SHARE[tissue]
    w["CD8_Tex"], w["CD8_Tem"] = w["CD8_Tem"] * exhausted, w["CD8_Tem"] * (1 - exhausted)
    if stromal:
        for sub in FIB_SUBCLUSTERS:
            for caf, s in zip(CAF_SUBTYPES, CAF_SHARES[tissue], strict=True):
                w[f"Fib_{sub[:3]}_{caf or 'normal'}"] = stromal * 0.6 * s / len(FIB_SUBCLUSTERS)
        w["Endo"] = stromal * 0.4
        rest = 1.0 - immune - stromal
        epi = _EPITHELIA[organ][0]
        if tissue == "Tumor":
            w[f"Mal_{cancer}"], w[epi] = 0.85 * rest, 0.15 * rest
        else:
            w[epi] = rest
    p = np.array([w.get(k, 0.0) for k in types.index])
    return p / p.sum()


def design(spec: WorldSpec) -> AtlasDesign:
    """The scAtlas design (see the module docstring)."""
    rng = design_rng(spec)
    types, samples = _types(), _samples()
    props = np.stack([_composition(types, t, o, c) for t, o, c in samples[["tissue", "organ", "cancerType"]]
                      .itertuples(index=False)])
    tissue = samples["tissue"].to_numpy()
    effects = []
    for sig, cell in TUMOR_SHIFTS.items():
        effects.append(effect(f"tumor_shift_{sig}", "tumor_shift", sig, 1.0, uniform_amp(rng, tissue == "Tumor"),
                              type_mask(types, "cellType1", cell), cell_type=cell,
                              common=types.loc[types["cellType1"] == cell, "common"].iloc[0],
                              groups={"tissue": ["Tumor"], "cancerType": list(CANCERS)}, versus="Adjacent",
                              note="every tumour sample; paired donors have Tumor and Adjacent (diff = Tumor - "
                                   "Adjacent)"))
    ex_mask = types["exhausted"].to_numpy(dtype=np.float64)
    effects.append(effect("exhaustion", "exhaustion", EXHAUSTION_SIGNATURE, 1.0,
                          uniform_amp(rng, props[:, ex_mask > 0].sum(axis=1) > 0), ex_mask, cell_type="CD8+ T cell",
                          common="Memory CD8 T", groups={"exhausted": [True]}, versus="other CD8 T cells",
                          markers=list(EXHAUSTION_MARKERS), marker_log2=MARKER_LOG2,
                          note="exhausted CD8 T cells (truth_cells.csv) vs the other CD8 T cells of the same "
                               "samples; markers PDCD1 HAVCR2 LAG3 TIGIT CTLA4 TOX up 4 log2; no label tells"))
    for caf, sig in CAF_SIGNATURES.items():
        mask = (types["caf_subtype"] == caf).to_numpy(dtype=np.float64)
        effects.append(effect(f"caf_{caf}", "caf_subtype", sig, 1.0, uniform_amp(rng, props[:, mask > 0].sum(1) > 0),
                              mask, cell_type="Fibroblast", common="Fibroblast", groups={"caf_subtype": [caf]},
                              versus="other fibroblasts", markers=list(CAF_MARKERS[caf]), marker_log2=MARKER_LOG2,
                              note=f"{caf} fibroblasts (truth_cells.csv); no label tells"))
    for organ, sig in ORGAN_PROGRAMS.items():
        planted = ((samples["organ"] == organ) & (samples["tissue"] == "Normal")).to_numpy()
        effects.append(effect(f"organ_{organ}", "organ_program", sig, 1.0, uniform_amp(rng, planted),
                              np.ones(len(types)), cell_type=None, common=None,
                              groups={"organ": [organ], "tissue": ["Normal"]}, versus="other organs",
                              note="every cell type of the normal samples of the organ"))
    rows = [{"id": f"infiltration_{c}", "kind": "infiltration", "signature": None, "database": None,
             "cell_type": None, "common": None, "groups": {"cancerType": [c], "tissue": ["Tumor"]},
             "versus": "other cancer types", "direction": "up" if f >= 0.3 else "down", "immune_fraction": f,
             "log2_magnitude": None, "expected_auc": None,
             "note": "expected immune fraction of tumour samples (before per-sample Dirichlet noise)"}
            for c, (_, f) in CANCERS.items()]
    groups = {o: np.flatnonzero(((samples["organ"] == o) & (samples["tissue"] == "Normal")).to_numpy())
              for o in ORGANS}
    groups.update({c: np.flatnonzero(((samples["cancerType"] == c) & (samples["tissue"] == "Tumor")).to_numpy())
                   for c in CANCERS})
    groups["Blood"] = np.flatnonzero(tissue == "Blood")
    crosswalk = {col: dict(zip(types[col], types["common"], strict=False)) for col in ("cellType1", "subCluster")}
    crosswalk["cellType2"] = dict(zip(types["cellType2"], types["common"], strict=False))
    crosswalk["cellType1"].update({"CD8+ T cell": "CD8 T", "CD4+ T cell": "CD4 T", "Dendritic cell": "DC",
                                   "B cell": "B", "Monocyte": "Monocyte"})
    return AtlasDesign(
        atlas="scatlas", types=types, label_columns=LABELS, samples=samples, props=props,
        weights=rng.lognormal(0.0, 0.3, len(samples)), effects=effects,
        columns={"sample": "sampleID", "donor": "donorID", "cell_type": "cellType1", "cell_type_fine": "subCluster",
                 "tissue": "tissue", "organ": "organ", "cancer_type": "cancerType"},
        tables={"samples": samples.copy()}, crosswalk_columns=("cellType1", "subCluster"),
        extra={"rows": rows, "crosswalk_by_column": crosswalk, "composition_groups": groups,
               "paired_donors": sorted(samples.loc[tissue == "Adjacent", "donorID"])},
    )
