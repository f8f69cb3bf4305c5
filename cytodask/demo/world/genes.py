"""Gene space of the synthetic world: CytoSig genes, named producer and marker genes, fillers.

Also the producer table (cytokine → producer cell types in the common
vocabulary, ANALYSES.md §2) and the marker sets (exhaustion, CAF subtypes,
lineages) whose expression the atlases plant.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

from cytodask.core.vocabulary import signature_gene
from cytodask.demo.spec import cytosig

#: CytoSig signature -> common cell types that express its producer gene (ANALYSES.md §2).
PRODUCERS: dict[str, tuple[str, ...]] = {
    "IFNG": ("CD8 T", "Memory CD8 T", "NK", "Th1"),
    "IL17A": ("Th17", "gdT", "ILC3"),
    "TNFA": ("Monocyte", "CD14 Monocyte", "CD16 Monocyte", "Macrophage", "DC", "cDC2"),
    "IL1B": ("Monocyte", "CD14 Monocyte", "CD16 Monocyte", "Macrophage", "DC", "cDC2"),
    "IL6": ("Monocyte", "CD14 Monocyte", "CD16 Monocyte", "Macrophage", "DC", "cDC2"),
    "IL10": ("Treg", "Macrophage", "Memory B"),
    "IL4": ("Th2", "Basophil", "Mast", "ILC2"),
    "IL13": ("Th2", "Basophil", "Mast", "ILC2"),
    "IL21": ("Tfh", "Th17"),
    "IL22": ("Th17", "Th22", "ILC3", "NK"),
    "IL2": ("CD4 T", "Memory CD4 T"),
    "IFN1": ("pDC",),
    "TGFB1": ("Treg", "Macrophage", "Fibroblast"),
    "VEGFA": ("Macrophage", "Fibroblast", "Endothelial"),
    "OSM": ("CD14 Monocyte", "Neutrophil"),
}
EXHAUSTION_MARKERS = ("PDCD1", "HAVCR2", "LAG3", "TIGIT", "CTLA4", "TOX")
CAF_MARKERS: dict[str, tuple[str, ...]] = {
    "myCAF": ("ACTA2", "TAGLN", "MYL9", "COL1A1", "COL1A2", "FN1"),
    "iCAF": ("IL6", "CXCL12", "CCL2", "PDGFRA", "CFD", "LUM"),
    "apCAF": ("HLA-DRA", "CD74", "HLA-DRB1", "SLPI"),
}
#: Lineage markers: common cell type (or its ancestor) -> genes up in it.
LINEAGE_MARKERS: dict[str, tuple[str, ...]] = {
    "T": ("CD3E", "CD3D"), "CD8 T": ("CD8A", "CD8B"), "CD4 T": ("CD4",), "Treg": ("FOXP3", "IL2RA"),
    "NK": ("NKG7", "GNLY"), "B": ("MS4A1", "CD79A"), "Plasma": ("JCHAIN", "MZB1"),
    "Monocyte": ("LYZ", "CD14"), "Macrophage": ("C1QC", "CD68"), "pDC": ("LILRA4", "IRF7"),
    "DC": ("CD1C", "FCER1A"), "Mast": ("TPSAB1", "CPA3"), "Fibroblast": ("DCN", "PDGFRB"),
    "Endothelial": ("PECAM1", "VWF"), "Epithelial": ("EPCAM", "KRT8"), "Hepatocyte": ("ALB", "APOA1"),
    "Keratinocyte": ("KRT14", "KRT5"), "Alveolar epithelial": ("SFTPC", "SFTPB"),
    "Secretory epithelial": ("MUC5B", "SCGB1A1"), "Malignant": ("MKI67", "TOP2A"),
}
PRODUCER_LOG2 = 4.0  # producer gene up in producer types (log2)
MARKER_LOG2 = 4.0  # exhaustion / CAF / lineage markers up in their types (log2)
NAMED_LOG_W = 1.0  # natural-log baseline weight of the named genes (~0.2 UMI per cell outside their types)


def producer_gene(signature: str) -> str:
    """The producer gene of a CytoSig signature (the shared name table)."""
    return signature_gene(signature)


@lru_cache(maxsize=1)
def named_genes() -> tuple[str, ...]:
    """Producer genes of every CytoSig signature, then the marker genes (each once, in a fixed order)."""
    names = [producer_gene(c) for c in cytosig().columns]
    names += list(EXHAUSTION_MARKERS) + [g for v in CAF_MARKERS.values() for g in v]
    names += [g for v in LINEAGE_MARKERS.values() for g in v]
    return tuple(dict.fromkeys(names))


@lru_cache(maxsize=8)
def gene_symbols(n_genes: int) -> tuple[str, ...]:
    """The ``n_genes`` symbols: CytoSig genes in signature order, the named genes not among them, fillers."""
    base = list(cytosig().index)
    extra = [g for g in named_genes() if g not in set(base)]
    if n_genes < len(base) + len(extra):
        raise ValueError(f"n_genes={n_genes} is too small: the world needs {len(base) + len(extra)} named genes")
    return tuple(base + extra + [f"SYN{i:05d}" for i in range(1, n_genes - len(base) - len(extra) + 1)])


def gene_index(n_genes: int) -> dict[str, int]:
    """Symbol -> column of the gene space."""
    return {g: i for i, g in enumerate(gene_symbols(n_genes))}


def var_frame(n_genes: int, *, ensembl_index: bool = False) -> pd.DataFrame:
    """``var``: symbols and fake Ensembl ids; indexed by the ids (with ``symbol``) when ``ensembl_index``."""
    symbols = list(gene_symbols(n_genes))
    ids = [f"ENSG{i:011d}" for i in range(1, n_genes + 1)]
    if ensembl_index:
        return pd.DataFrame({"symbol": symbols}, index=pd.Index(ids, name=None))
    return pd.DataFrame({"feature_name": symbols, "gene_ids": ids}, index=pd.Index(symbols))


def named_boost(n_genes: int, commons: list[str], chains: list[list[str]],
                hidden: list[dict[str, object]]) -> np.ndarray:
    """log2 boosts ``(n_types, n_genes)`` of the named genes per internal type.

    ``commons[k]`` is type k's common cell type ("" if none), ``chains[k]`` its
    ancestors, ``hidden[k]`` its hidden state (``exhausted``, ``caf_subtype``).
    Producers: exact common type in :data:`PRODUCERS`; lineage markers: any
    ancestor; exhaustion and CAF markers: the hidden state.
    """
    index = gene_index(n_genes)
    out = np.zeros((len(commons), n_genes))
    for k, (common, chain, state) in enumerate(zip(commons, chains, hidden, strict=True)):
        for signature, types in PRODUCERS.items():
            if common in types:
                out[k, index[producer_gene(signature)]] += PRODUCER_LOG2
        for anc, genes in LINEAGE_MARKERS.items():
            if anc in chain:
                out[k, [index[g] for g in genes]] += MARKER_LOG2
        if state.get("exhausted"):
            out[k, [index[g] for g in EXHAUSTION_MARKERS]] += MARKER_LOG2
        caf = state.get("caf_subtype") or ""
        if caf in CAF_MARKERS:
            out[k, [index[g] for g in CAF_MARKERS[caf]]] += MARKER_LOG2
    return out
