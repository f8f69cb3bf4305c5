"""A small hand-built scAtlas-like cancer atlas with planted effects (until the synthetic world lands)."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from cytodask.cancer import CAF_MARKERS, EXHAUSTION_MARKERS

CELL_TYPE_MAP = {"CD8+ T cell": "CD8 T", "CD4 Tconv": "CD4 T", "Treg cell": "Treg", "Macro": "Macrophage",
                 "Fibro": "Fibroblast", "Tumour epithelial": "Malignant", "NK cell": "NK"}
LABELS = np.array(["CD8+ T cell", "CD4 Tconv", "Treg cell", "Macro", "Fibro", "Tumour epithelial", "NK cell"])
SIGNATURES = ["IFNG", "IL10", "TGFB1", "IL6", "TNFA"]
CANCERS = ["LIHC", "LUAD", "CRC"]


def _samples() -> pd.DataFrame:
    rows = []
    for d in range(12):  # 4 paired donors per cancer type, blood for some
        cancer = CANCERS[d % 3]
        for tissue in ["Tumor", "Adjacent"] + (["Blood"] if d % 4 == 0 else []):
            rows.append((f"{tissue[0]}{d}", f"D{d}", tissue, cancer))
    for d in range(12, 15):  # unpaired donors: tumour only
        rows.append((f"T{d}", f"D{d}", "Tumor", CANCERS[d % 3]))
    return pd.DataFrame(rows, columns=["sampleID", "donorID", "tissue", "cancerType"])


def cancer_atlas(seed: int = 0, n_per_sample: int = 120, n_filler: int = 300) -> tuple[ad.AnnData, ad.AnnData, pd.DataFrame]:
    """``(expression, single-cell activity, truth)``: counts with exhausted CD8 T and CAF subtypes planted.

    ``truth`` per cell: ``exhausted`` (bool), ``caf_subtype`` (str or ""); in
    the activity, IL10 is +1.5 in exhausted CD8 T cells and TGFB1 +1.5 in
    myCAF; cell types are drawn with cancer-type specific proportions.
    """
    rng = np.random.default_rng(seed)
    samples = _samples()
    caf_genes = sorted({g for v in CAF_MARKERS.values() for g in v})
    genes = list(EXHAUSTION_MARKERS) + caf_genes + [f"G{i}" for i in range(n_filler)]
    base = rng.gamma(0.6, 4.0, size=len(genes))
    mix = {"LIHC": [0.25, 0.1, 0.05, 0.1, 0.2, 0.25, 0.05], "LUAD": [0.1, 0.1, 0.1, 0.2, 0.2, 0.25, 0.05],
           "CRC": [0.05, 0.05, 0.05, 0.1, 0.3, 0.4, 0.05]}
    obs_parts, counts, truth = [], [], []
    for _, s in samples.iterrows():
        lab = LABELS[rng.choice(len(LABELS), size=n_per_sample, p=mix[s.cancerType])]
        x = rng.poisson(base, size=(n_per_sample, len(genes))).astype(np.float32)
        exhausted = (lab == "CD8+ T cell") & (rng.random(n_per_sample) < (0.5 if s.tissue == "Tumor" else 0.1))
        x[np.ix_(exhausted, range(len(EXHAUSTION_MARKERS)))] += rng.poisson(25, (exhausted.sum(), len(EXHAUSTION_MARKERS)))
        caf = np.where(lab == "Fibro", np.array(list(CAF_MARKERS))[rng.integers(0, 3, n_per_sample)], "")
        for name, marker_genes in CAF_MARKERS.items():
            cols = [genes.index(g) for g in marker_genes]
            hit = caf == name
            x[np.ix_(hit, cols)] += rng.poisson(25, (hit.sum(), len(cols)))
        obs_parts.append(pd.DataFrame({"sampleID": s.sampleID, "donorID": s.donorID, "tissue": s.tissue,
                                       "cancerType": s.cancerType, "cellType1": lab}))
        counts.append(x)
        truth.append(pd.DataFrame({"exhausted": exhausted, "caf_subtype": caf}))
    obs = pd.concat(obs_parts, ignore_index=True)
    obs.index = [f"cell{i}" for i in range(len(obs))]
    truth = pd.concat(truth, ignore_index=True).set_index(obs.index)
    expr = ad.AnnData(sp.csr_matrix(np.vstack(counts)), obs=obs, var=pd.DataFrame(index=genes))
    act = rng.normal(size=(len(obs), len(SIGNATURES)))
    act[truth["exhausted"].to_numpy(), SIGNATURES.index("IL10")] += 1.5
    act[(truth["caf_subtype"] == "myCAF").to_numpy(), SIGNATURES.index("TGFB1")] += 1.5
    activity = ad.AnnData(act, obs=obs.copy(), var=pd.DataFrame(index=SIGNATURES))
    return expr, activity, truth


def pseudobulk_activity(seed: int = 0, shift: float = 1.5) -> ad.AnnData:
    """Activity of (cell type, tissue, donor) pseudobulks; tumour − adjacent: IFNG +shift in CD8 T, TGFB1 −shift in Fibro."""
    rng = np.random.default_rng(seed)
    samples = _samples()
    rows = [(r.sampleID, r.donorID, r.tissue, r.cancerType, ct) for r in samples.itertuples()
            for ct in ("CD8+ T cell", "Fibro", "Macro")]
    obs = pd.DataFrame(rows, columns=["sampleID", "donorID", "tissue", "cancerType", "cellType1"])
    obs.index = [f"pb{i}" for i in range(len(obs))]
    donor_effect = rng.normal(size=(15, len(SIGNATURES)))
    x = donor_effect[obs["donorID"].str[1:].astype(int).to_numpy()] + 0.3 * rng.normal(size=(len(obs), len(SIGNATURES)))
    tumor = (obs["tissue"] == "Tumor").to_numpy()
    x[tumor & (obs["cellType1"] == "CD8+ T cell").to_numpy(), SIGNATURES.index("IFNG")] += shift
    x[tumor & (obs["cellType1"] == "Fibro").to_numpy(), SIGNATURES.index("TGFB1")] -= shift
    return ad.AnnData(x, obs=obs, var=pd.DataFrame(index=SIGNATURES))
