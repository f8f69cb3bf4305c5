"""Hand-built sample-level activity with planted effects, for the disease family's API and stage tests.

One row per sample × cell type (as a pseudobulk activity stage gives), obs
columns named like the Inflammation Atlas. Planted, in activity z units on top
of N(0, 1) noise:

- study shift: every sample of study ``S3`` (healthy too) has ``IL10`` + ``STUDY_SHIFT`` in every cell type;
- conserved program: ``IFNG`` + ``CONSERVED`` in ``CD8T`` for RA, SLE and CD;
- drivers: each disease has ``DRIVER`` on three signatures of one cell type (:data:`DRIVERS`);
- response: RA and SLE patients labelled R/NR (a few ``NA``/``unknown``); R has ``IL6`` in ``Mono`` + ``RESPONSE``;
- longitudinal: RA patients have a second sample (timepoint 2) with ``IFNG`` in ``CD4T`` + ``CHANGE``.
"""

from __future__ import annotations

import anndata
import numpy as np
import pandas as pd

SIGNATURES = ["IFNG", "IL6", "TNFA", "IL1B", "IL10", "IL17A", "IL4", "IFN1", "TGFB1", "IL2", "IL13", "VEGFA"]
CELL_TYPES = ["B", "CD4T", "CD8T", "Mono"]
STUDIES = {"S1": ["RA", "CD"], "S2": ["RA", "SLE"], "S3": ["SLE", "CD", "PS"]}
HEALTHY_SPELLING = {"S1": "healthy", "S2": "Healthy", "S3": "HEALTHY "}
DRIVERS = {"RA": ("Mono", ["TNFA", "IL1B", "IL6"]), "SLE": ("B", ["IFN1", "IL10", "IL4"]),
           "CD": ("CD4T", ["IL17A", "IL2", "IL13"]), "PS": ("CD4T", ["IL17A", "TNFA", "VEGFA"])}
STUDY_SHIFT, CONSERVED, DRIVER, RESPONSE, CHANGE = 3.0, 2.0, 2.5, 2.0, 1.5


def sample_table(n_healthy: int = 6, n_disease: int = 16) -> pd.DataFrame:
    """One row per sample: sampleID, patientID, studyID, disease, therapyResponse, timepoint."""
    rows = []
    for study, diseases in STUDIES.items():
        for i in range(n_healthy):
            rows.append((f"{study}_H{i}", f"{study}_H{i}", study, HEALTHY_SPELLING[study], "NA", 1))
        for d in diseases:
            for i in range(n_disease):
                label = ("R" if i % 2 else "NR") if d in ("RA", "SLE") else "NA"
                label = "unknown" if d == "SLE" and i == n_disease - 1 else label
                rows.append((f"{study}_{d}{i}", f"{study}_{d}{i}", study, d, label, 1))
                if d == "RA":
                    rows.append((f"{study}_{d}{i}_t2", f"{study}_{d}{i}", study, d, label, 2))
    return pd.DataFrame(rows, columns=["sampleID", "patientID", "studyID", "disease", "therapyResponse",
                                       "timepoint"])


def activity(seed: int = 0, *, shift: bool = True, **sizes: int) -> anndata.AnnData:
    """Sample × cell type activity with the planted effects of the module docstring."""
    rng = np.random.default_rng(seed)
    samples = sample_table(**sizes)
    obs = samples.loc[samples.index.repeat(len(CELL_TYPES))].reset_index(drop=True)
    obs["Level2"] = np.tile(CELL_TYPES, len(samples))
    obs["n_cells"] = rng.integers(20, 200, len(obs))
    x = rng.normal(size=(len(obs), len(SIGNATURES)))
    col = {s: j for j, s in enumerate(SIGNATURES)}
    disease, ct = obs["disease"].to_numpy(), obs["Level2"].to_numpy()
    if shift:
        x[(obs["studyID"] == "S3").to_numpy(), col["IL10"]] += STUDY_SHIFT
    x[np.isin(disease, ["RA", "SLE", "CD"]) & (ct == "CD8T"), col["IFNG"]] += CONSERVED
    for d, (cell_type, sigs) in DRIVERS.items():
        for s in sigs:
            x[(disease == d) & (ct == cell_type), col[s]] += DRIVER
    x[(obs["therapyResponse"] == "R").to_numpy() & (ct == "Mono"), col["IL6"]] += RESPONSE
    x[(obs["timepoint"] == 2).to_numpy() & (ct == "CD4T"), col["IFNG"]] += CHANGE
    obs.index = (obs["sampleID"] + "|" + obs["Level2"]).to_numpy()
    return anndata.AnnData(X=x.astype(np.float32), obs=obs, var=pd.DataFrame(index=SIGNATURES))


def baseline(adata: anndata.AnnData) -> anndata.AnnData:
    """Only timepoint-1 samples (one per patient): the cross-sectional design of the contrast tests."""
    return adata[adata.obs["timepoint"].to_numpy() == 1].copy()


COLUMNS = {"disease_col": "disease", "sample_col": "sampleID", "cell_type_col": "Level2"}
