"""CIMA-like design: healthy donors (one sample each) with age, BMI, sex, blood biochemistry and metabolites.

Planted: ``association`` rows. For each ``(variable, table, signature, cell type, sign)`` the
response amplitude of donor ``d`` in that L2 cell type is
``a_d = sign * ASSOC_SLOPE * z_d + N(0, ASSOC_NOISE²)`` with ``z_d`` the variable standardised over
the donors, so ``corr(a, variable) ≈ ASSOC_SLOPE / sqrt(ASSOC_SLOPE² + ASSOC_NOISE²) = 0.96`` (normal
variables; ``expected_r_amplitude`` in the row) and the activity rises (or falls) monotonically with the
variable. Every other variable of the three tables is drawn independently of everything (the null
variables); sex is null too.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cytodask.demo.world.atlases._build import effect, type_frame, type_mask
from cytodask.demo.world.model import AtlasDesign, design_rng
from cytodask.demo.world.spec import WorldSpec

LABELS = ("cell_type_l1", "cell_type_l2", "cell_type_l3", "cell_type_l4")
TYPES = [  # l4 id, l1, l2, l3, l4, common, proportion, depth
    ("CD4_Tn_CCR7", "CD4_T", "CD4_naive", "CD4_Tn_CCR7", "CD4_Tn_CCR7", "Naive CD4 T", 0.14, 0.9),
    ("CD4_Tcm_CXCR5", "CD4_T", "CD4_memory", "CD4_Tcm_CXCR5", "CD4_Tcm_CXCR5", "Memory CD4 T", 0.07, 0.9),
    ("CD4_Tem_CCR7neg", "CD4_T", "CD4_memory", "CD4_Tem_CCR7neg", "CD4_Tem_CCR7neg", "Memory CD4 T", 0.05, 0.9),
    ("CD4_Th17-like_RORC", "CD4_T", "CD4_helper", "CD4_Th17-like_RORC", "CD4_Th17-like_RORC", "Th17", 0.02, 0.9),
    ("CD4_Th2-like_GATA3", "CD4_T", "CD4_helper", "CD4_Th2-like_GATA3", "CD4_Th2-like_GATA3", "Th2", 0.02, 0.9),
    ("CD4_Tfh-like_CXCR5", "CD4_T", "CD4_helper", "CD4_Tfh-like_CXCR5", "CD4_Tfh-like_CXCR5", "Tfh", 0.02, 0.9),
    ("CD4_Treg_FOXP3", "CD4_T", "CD4_regulatory", "CD4_Treg_FOXP3", "CD4_Treg_FOXP3", "Treg", 0.03, 0.9),
    ("CD8_Tn_CCR7", "CD8_T", "CD8_naive", "CD8_Tn_CCR7", "CD8_Tn_CCR7", "Naive CD8 T", 0.06, 0.9),
    ("CD8_Tem_CCR7neg", "CD8_T", "CD8_memory", "CD8_Tem_CCR7neg", "CD8_Tem_CCR7neg", "Memory CD8 T", 0.04, 0.9),
    ("CD8_CTL_GZMK", "CD8_T", "CD8_CTL", "CD8_CTL_GZMK", "CD8_CTL_GZMK", "CD8 T", 0.04, 0.9),
    ("CD8_CTL_GZMB", "CD8_T", "CD8_CTL", "CD8_CTL_GZMB", "CD8_CTL_GZMB", "CD8 T", 0.03, 0.9),
    ("MAIT_SLC4A10", "Unconventional_T", "MAIT", "MAIT_SLC4A10", "MAIT_SLC4A10", "MAIT", 0.02, 0.9),
    ("NK_bright_XCL1", "NK", "CD56_bright_NK", "NK_bright_XCL1", "NK_bright_XCL1", "NK", 0.01, 1.0),
    ("Mature_NK_dim_FCGR3A", "NK", "CD56_dim_NK", "Mature_NK_dim_FCGR3A", "Mature_NK_dim_FCGR3A", "NK", 0.09, 1.0),
    ("Bn_TCL1A", "B", "Naive_B", "Bn_TCL1A", "Bn_TCL1A", "Naive B", 0.06, 1.0),
    ("Switched_Bm_IGHDneg", "B", "Memory_B", "Switched_Bm_IGHDneg", "Switched_Bm_IGHDneg", "Memory B", 0.04, 1.0),
    ("Plasma_IGHG1", "Plasma", "Total_Plasma", "Plasma_IGHG1", "Plasma_IGHG1", "Plasma", 0.01, 1.2),
    ("cMono_CD14", "Myeloid", "Mono", "cMono_CD14", "cMono_CD14", "CD14 Monocyte", 0.12, 1.4),
    ("cMono_IL1B", "Myeloid", "Mono", "cMono_CD14", "cMono_IL1B", "CD14 Monocyte", 0.05, 1.4),
    ("ncMono_FCGR3A", "Myeloid", "Mono", "ncMono_FCGR3A", "ncMono_FCGR3A", "CD16 Monocyte", 0.04, 1.4),
    ("cDC2_CD1C", "Myeloid", "DC", "cDC2_CD1C", "cDC2_CD1C", "cDC2", 0.015, 1.3),
    ("pDC_IRF4", "Myeloid", "pDC", "pDC_IRF4", "pDC_IRF4", "pDC", 0.008, 1.3),
]
COMMON_BY_LABEL = {  # labels above the finest level (shared by several types)
    "CD4_T": "CD4 T", "CD8_T": "CD8 T", "Unconventional_T": "T", "NK": "NK", "B": "B", "Plasma": "Plasma",
    "Myeloid": None, "CD4_naive": "Naive CD4 T", "CD4_memory": "Memory CD4 T", "CD4_helper": "CD4 T",
    "CD4_regulatory": "Treg", "CD8_naive": "Naive CD8 T", "CD8_memory": "Memory CD8 T", "CD8_CTL": "CD8 T",
    "MAIT": "MAIT", "CD56_bright_NK": "NK", "CD56_dim_NK": "NK", "Naive_B": "Naive B", "Memory_B": "Memory B",
    "Total_Plasma": "Plasma", "Mono": "Monocyte", "DC": "DC", "pDC": "pDC", "cMono_CD14": "CD14 Monocyte",
}
N_DONORS = 40
ASSOC_SLOPE, ASSOC_NOISE = 0.5, 0.15
#: (variable, table, signature, cell_type_l2, sign)
ASSOCIATIONS = [
    ("Age", "sample_meta", "IFNG", "CD8_CTL", 1),
    ("BMI", "sample_meta", "IL1B", "Mono", 1),
    ("ALT", "biochemistry", "IL6", "CD56_dim_NK", 1),
    ("Glucose", "biochemistry", "IL4", "Naive_B", -1),
    ("Cortisol", "metabolites", "TGFB1", "CD4_naive", -1),
    ("LPC(16:0)", "metabolites", "IL15", "CD4_memory", 1),
]
BIOCHEMISTRY = {  # name -> (kind, centre, spread): normal, or lognormal around exp(log centre)
    "ALT": ("log", 25.0, 0.4), "AST": ("log", 25.0, 0.3), "Creatinine": ("normal", 80.0, 15.0),
    "Glucose": ("normal", 5.2, 0.6), "Urea": ("normal", 5.0, 1.2), "HDL": ("normal", 1.4, 0.3),
    "LDL": ("normal", 3.0, 0.7), "Triglycerides": ("log", 1.3, 0.4), "CRP": ("log", 1.0, 0.8),
    "Hemoglobin": ("normal", 140.0, 12.0),
}
METABOLITES = ("Cortisol", "LPC(16:0)", "Glutamine", "Lactate", "Citrate", "Tryptophan", "Kynurenine",
               "PC(34:1)", "SM(d18:1/16:0)", "Cholesterol", "Taurine", "Hippurate")


def _tables(rng: np.random.Generator) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    names = [f"S{i:03d}" for i in range(1, N_DONORS + 1)]
    samples = pd.DataFrame({"sample": names, "donor": [f"D{i:03d}" for i in range(1, N_DONORS + 1)],
                            "sex": np.where(rng.random(N_DONORS) < 0.5, "F", "M"),
                            "age": np.round(rng.uniform(20.0, 80.0, N_DONORS), 1),
                            "BMI": np.round(np.clip(rng.normal(24.0, 3.5, N_DONORS), 16.0, 40.0), 1)})
    meta = pd.DataFrame({"Sample_name": names, "Age": samples["age"], "BMI": samples["BMI"], "Sex": samples["sex"]})
    bio = {"Sample_name": names}
    for name, (kind, centre, spread) in BIOCHEMISTRY.items():
        z = rng.standard_normal(N_DONORS)
        bio[name] = np.round(np.exp(np.log(centre) + spread * z) if kind == "log" else centre + spread * z, 3)
    met = {"Sample_name": names}
    for name in METABOLITES:
        met[name] = np.round(np.exp(0.5 * rng.standard_normal(N_DONORS)), 4)
    return samples, {"sample_meta": meta, "biochemistry": pd.DataFrame(bio), "metabolites": pd.DataFrame(met)}


def design(spec: WorldSpec) -> AtlasDesign:
    """The CIMA design (see the module docstring)."""
    rng = design_rng(spec)
    types = type_frame(TYPES, LABELS)
    samples, tables = _tables(rng)
    effects = []
    for variable, table, sig, cell, sign in ASSOCIATIONS:
        v = tables[table][variable].to_numpy(dtype=np.float64)
        z = (v - v.mean()) / v.std()
        amp = sign * ASSOC_SLOPE * z + ASSOC_NOISE * rng.standard_normal(N_DONORS)
        e = effect(f"assoc_{variable}_{sig}", "association", sig, 1.0, amp, type_mask(types, "cell_type_l2", cell),
                   cell_type=cell, common=COMMON_BY_LABEL[cell], direction="up" if sign > 0 else "down",
                   variable=variable, table=f"{table}.csv", key="Sample_name", rho_sign=sign,
                   expected_r_amplitude=round(ASSOC_SLOPE / float(np.hypot(ASSOC_SLOPE, ASSOC_NOISE)), 6),
                   realised_r_amplitude=round(float(np.corrcoef(amp, v)[0, 1]), 6),
                   note=f"amplitude = {sign:+d} * {ASSOC_SLOPE} * standardised {variable} + N(0, {ASSOC_NOISE}^2); "
                        f"log2_magnitude: mean |amplitude| * 2 (strongest gene), i.e. per ~1 sd of {variable}")
        effects.append(e)
    planted = {a[0] for a in ASSOCIATIONS}
    null_vars = {name: [c for c in t.columns if c != "Sample_name" and c not in planted and c != "Sex"]
                 for name, t in tables.items()}
    crosswalk = {col: {lab: COMMON_BY_LABEL.get(lab, com) for lab, com in zip(types[col], types["common"],
                                                                              strict=True)} for col in LABELS}
    return AtlasDesign(
        atlas="cima", types=types, label_columns=LABELS, samples=samples,
        props=np.tile(types["prop"].to_numpy() / types["prop"].sum(), (N_DONORS, 1)),
        weights=rng.lognormal(0.0, 0.3, N_DONORS), effects=effects,
        columns={"sample": "sample", "donor": "donor", "cell_type": "cell_type_l2", "cell_type_coarse":
                 "cell_type_l1", "cell_type_fine": "cell_type_l4", "sex": "sex", "age": "age", "bmi": "BMI"},
        tables=tables, crosswalk_columns=("cell_type_l2",),
        extra={"crosswalk_by_column": crosswalk, "tables": {"key": "Sample_name", "null_variables": null_vars,
                                                            "sample_column": "sample"}},
    )
