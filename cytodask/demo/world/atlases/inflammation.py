"""Inflammation-Atlas-like design: 3 studies with their own healthy controls, 5 diseases, R/NR, timepoints.

Planted (amplitudes per sample; see truth.json for the rows):

- ``conserved_ifn1``: IFN1 up in ``Mono_classical`` in RA, SLE and CD (not PS, COVID);
- ``driver_<disease>``: one disease-specific response per disease in its own cell type;
  COVID's (IL1B in ``Mono_classical``) wanes over timepoints 1, 2, 3 (factor 1, 0.5, 0):
  the ``longitudinal`` row;
- ``response_RA`` / ``response_CD``: a predictive activity among the R/NR-labelled patients,
  amplitude ``N(1, 0.5²)`` in R and ``N(0, 0.5²)`` in NR, so ``d = 2`` and the AUC of the
  amplitude is ``Phi(d / sqrt(2)) = 0.921``;
- ``study_shift``: a baseline response in every cell type of every sample of a study
  (SCGT01: TGFB1, SCGT02: LIF; SCGT00 none): study-matched controls remove it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cytodask.demo.world.atlases._build import (
    effect,
    expected_auc,
    realised_auc,
    type_frame,
    type_mask,
    uniform_amp,
)
from cytodask.demo.world.model import AtlasDesign, design_rng
from cytodask.demo.world.spec import WorldSpec

LABELS = ("Level1", "Level2")
TYPES = [  # Level2 id, Level1, Level2, common, proportion, depth
    ("T_CD4_Naive", "T_CD4_Naive", "T_CD4_Naive", "Naive CD4 T", 0.13, 0.9),
    ("T_CD4_CM", "T_CD4_NonNaive", "T_CD4_CM", "Memory CD4 T", 0.12, 0.9),
    ("Th17", "T_CD4_NonNaive", "Th17", "Th17", 0.02, 0.9),
    ("Th2", "T_CD4_NonNaive", "Th2", "Th2", 0.02, 0.9),
    ("Tregs", "T_CD4_NonNaive", "Tregs", "Treg", 0.03, 0.9),
    ("T_CD8_Naive", "T_CD8_Naive", "T_CD8_Naive", "Naive CD8 T", 0.06, 0.9),
    ("T_CD8_CM", "T_CD8_NonNaive", "T_CD8_CM", "Memory CD8 T", 0.10, 0.9),
    ("NK_CD16high", "ILC", "NK_CD16high", "NK", 0.08, 1.0),
    ("NK_CD56high", "ILC", "NK_CD56high", "NK", 0.01, 1.0),
    ("B_Naive", "B", "B_Naive", "Naive B", 0.07, 1.0),
    ("B_Memory_switched", "B", "B_Memory_switched", "Memory B", 0.04, 1.0),
    ("Plasma_IGHA", "Plasma", "Plasma_IGHA", "Plasma", 0.01, 1.2),
    ("Mono_classical", "Mono", "Mono_classical", "CD14 Monocyte", 0.18, 1.4),
    ("Mono_nonClassical", "Mono", "Mono_nonClassical", "CD16 Monocyte", 0.04, 1.4),
    ("cDC2", "DC", "cDC2", "cDC2", 0.015, 1.3),
    ("pDC", "pDC", "pDC", "pDC", 0.008, 1.3),
    ("Doublets", "Doublets", "Doublets", "", 0.01, 1.6),
    ("LowQuality_cells", "LowQuality_cells", "LowQuality_cells", "", 0.01, 0.4),
]
LEVEL1_COMMON = {"T_CD4_Naive": "Naive CD4 T", "T_CD4_NonNaive": "Memory CD4 T", "T_CD8_Naive": "Naive CD8 T",
                 "T_CD8_NonNaive": "Memory CD8 T", "ILC": "ILC", "B": "B", "Plasma": "Plasma", "Mono": "Monocyte",
                 "DC": "DC", "pDC": "pDC", "Doublets": None, "LowQuality_cells": None}
DISEASE_GROUP = {"RA": "IMIDs", "SLE": "IMIDs", "CD": "IMIDs", "PS": "IMIDs", "COVID": "Infection"}
#: study -> (healthy spelling, number of healthy donors, [(disease, patients, labelled R/NR, longitudinal)], shift)
STUDIES = {
    "SCGT00": ("healthy", 6, [("RA", 16, True, False), ("SLE", 8, False, False)], None),
    "SCGT01": ("Healthy", 6, [("CD", 16, True, False), ("RA", 4, False, False), ("COVID", 6, False, True)],
               ("TGFB1", 0.5)),
    "SCGT02": ("HEALTHY", 6, [("PS", 8, False, False), ("SLE", 6, False, False), ("CD", 4, False, False)],
               ("LIF", 0.5)),
}
CONSERVED = ("IFN1", "Mono_classical", ("RA", "SLE", "CD"), 1.0)
DRIVERS = {"RA": ("TNFA", "T_CD4_CM"), "SLE": ("IL10", "B_Naive"), "CD": ("IL17A", "T_CD8_CM"),
           "PS": ("VEGFA", "NK_CD16high"), "COVID": ("IL1B", "Mono_classical")}
RESPONSES = {"RA": ("OSM", "Mono_classical"), "CD": ("IL2", "T_CD4_CM")}
RESPONSE_MEANS, RESPONSE_SD = (1.0, 0.0), 0.5  # amplitude ~ N(mean_R or mean_NR, SD^2)
WANING = (1.0, 0.5, 0.0)  # COVID driver amplitude factor at timepoints 1, 2, 3


def _samples(rng: np.random.Generator) -> pd.DataFrame:
    rows = []
    for study, (healthy, n_healthy, groups, _) in STUDIES.items():
        n = 0
        for disease, count, labelled, longitudinal in [(healthy, n_healthy, False, False), *groups]:
            for i in range(count):
                n += 1
                patient = f"{study}_P{n:03d}"
                response = ("R" if i < count // 2 else "NR") if labelled else (
                    "NA" if disease == healthy else "unknown")
                n_times = (3 if i < count // 2 else 2) if longitudinal else 1
                for t in range(1, n_times + 1):
                    rows.append({"sampleID": f"{patient}_T{t}", "patientID": patient, "studyID": study,
                                 "disease": disease, "diseaseGroup": DISEASE_GROUP.get(disease, "Healthy"),
                                 "therapyResponse": response, "timepoint": t})
    frame = pd.DataFrame(rows)
    patients = frame["patientID"].drop_duplicates()
    sex = pd.Series(np.where(rng.random(len(patients)) < 0.5, "F", "M"), index=patients)
    age = pd.Series(np.round(rng.uniform(20.0, 80.0, len(patients)), 1), index=patients)
    frame["sex"] = sex[frame["patientID"]].to_numpy()
    frame["age"] = age[frame["patientID"]].to_numpy()
    return frame


def design(spec: WorldSpec) -> AtlasDesign:
    """The inflammation design (see the module docstring)."""
    rng = design_rng(spec)
    types = type_frame(TYPES, LABELS)
    samples = _samples(rng)
    disease = samples["disease"].to_numpy()
    n = len(samples)
    effects = []
    sig, cell, diseases, strength = CONSERVED
    amp = uniform_amp(rng, np.isin(disease, diseases))
    effects.append(effect("conserved_ifn1", "disease_shift", sig, strength, amp, type_mask(types, "Level2", cell),
                          cell_type=cell, common=types.at[cell, "common"], groups={"disease": list(diseases)},
                          versus="healthy", note="conserved: up in the same cell type in RA, SLE and CD"))
    for dis, (sig, cell) in DRIVERS.items():
        amp = uniform_amp(rng, disease == dis)
        note = f"disease-specific driver of {dis}"
        if dis == "COVID":
            amp = amp * np.array(WANING)[samples["timepoint"].to_numpy() - 1]
            note += "; wanes over timepoints (factor 1, 0.5, 0 at timepoints 1, 2, 3)"
        effects.append(effect(f"driver_{dis}", "driver", sig, 1.0, amp, type_mask(types, "Level2", cell),
                              cell_type=cell, common=types.at[cell, "common"], groups={"disease": [dis]},
                              versus="healthy", note=note))
    rows = [_longitudinal_row(types, effects[-1])]
    for dis, (sig, cell) in RESPONSES.items():
        label = samples["therapyResponse"].to_numpy()
        r, nr = (disease == dis) & (label == "R"), (disease == dis) & (label == "NR")
        draw = rng.standard_normal(n) * RESPONSE_SD
        amp = np.where(r, RESPONSE_MEANS[0] + draw, np.where(nr, RESPONSE_MEANS[1] + draw, 0.0))
        d = (RESPONSE_MEANS[0] - RESPONSE_MEANS[1]) / RESPONSE_SD
        e = effect(f"response_{dis}", "response", sig, 1.0, amp, type_mask(types, "Level2", cell), cell_type=cell,
                   common=types.at[cell, "common"], groups={"disease": [dis], "therapyResponse": ["R", "NR"]},
                   versus="NR", standardised_difference=d, realised_auc=round(realised_auc(amp[r], amp[nr]), 6),
                   sample_amplitude=dict(zip(samples["sampleID"][r | nr], np.round(amp[r | nr], 6).tolist(),
                                             strict=True)),
                   note=("sample-level amplitude of the response ~ N(1, 0.5^2) in R and N(0, 0.5^2) in NR "
                         "(standardised difference d = 2); expected_auc = Phi(d/sqrt(2)) is the AUC of the "
                         "amplitude; an activity estimate a*c + noise has a lower AUC, "
                         "Phi(d/sqrt(2) * c*sd/sqrt(c^2 sd^2 + noise^2)); realised_auc: of the drawn amplitudes"))
        e.truth["expected_auc"] = round(expected_auc(d), 6)
        e.truth["log2_magnitude"] = round(2.0 * (RESPONSE_MEANS[0] - RESPONSE_MEANS[1]), 6)
        effects.append(e)
    shifts = {}
    for study, (_, _, _, shift) in STUDIES.items():
        if shift is None:
            shifts[study] = None
            continue
        sig, strength = shift
        amp = (samples["studyID"] == study).to_numpy(dtype=np.float64)
        effects.append(effect(f"study_shift_{study}", "study_shift", sig, strength, amp, np.ones(len(types)),
                              cell_type=None, common=None, groups={"studyID": [study]}, versus="other studies",
                              note="baseline of every sample (healthy too) and cell type of the study"))
        shifts[study] = {"signature": sig, "log2_magnitude": effects[-1].truth["log2_magnitude"]}
    tables = {"samples": samples[["sampleID", "patientID", "studyID", "disease", "therapyResponse",
                                  "timepoint"]].copy()}
    crosswalk = {"Level2": {k: (c or None) for k, c in zip(types["Level2"], types["common"], strict=True)},
                 "Level1": LEVEL1_COMMON}
    return AtlasDesign(
        atlas="inflammation", types=types, label_columns=LABELS, samples=samples,
        props=np.tile(types["prop"].to_numpy() / types["prop"].sum(), (n, 1)),
        weights=rng.lognormal(0.0, 0.3, n), effects=effects,
        columns={"sample": "sampleID", "donor": "patientID", "cell_type": "Level2", "cell_type_coarse": "Level1",
                 "study": "studyID", "disease": "disease", "response": "therapyResponse", "timepoint": "timepoint"},
        tables=tables, ensembl_index=True, crosswalk_columns=("Level2",),
        extra={"rows": rows, "study_shift": shifts, "crosswalk_by_column": crosswalk,
               "healthy_labels": {s: v[0] for s, v in STUDIES.items()},
               "exclude": {"Level1": ["Doublets", "LowQuality_cells"]}},
    )


def _longitudinal_row(types: pd.DataFrame, covid: object) -> dict:
    cell = DRIVERS["COVID"][1]
    step = covid.truth["strength"] * 2.0 * 0.5  # MAX_PLANTED_LOG2 * (1 - 0.5) per step, mean amplitude 1
    return {"id": "longitudinal_COVID", "kind": "longitudinal", "signature": DRIVERS["COVID"][0],
            "database": "CytoSig", "cell_type": cell, "common": types.at[cell, "common"],
            "groups": {"disease": ["COVID"]}, "versus": "earlier timepoint", "direction": "down",
            "log2_magnitude": step, "expected_auc": None,
            "note": "later - earlier timepoint of one patient: the COVID driver's amplitude falls by half its "
                    "baseline per step (timepoints 1 -> 2 -> 3); log2_magnitude per step at mean amplitude"}
