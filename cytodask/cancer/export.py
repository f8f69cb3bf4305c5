"""Export schemas of the cancer stages: stage type → {table: (leading columns, description)}.

The first table of a stage is exported under the stage type's name
(``tumor_vs_adjacent.parquet``), the others as ``<type>_<table>``
(``t_cell_exhaustion_cells.parquet``); the columns listed come first, in this
order (README "Cancer and organ analyses" documents them).
"""

from __future__ import annotations

from cytodask.cancer.api.infiltration import INFILTRATION_SUBTYPES, fraction_column

PAIRED = ("diff", "test", "statistic", "pvalue", "qvalue", "reason")
SPECIFICITY = ("signature", "cancer_type", "mean", "sd", "n_samples", "z_specificity", "gap", "statistic", "pvalue",
               "qvalue", "reason")

TABLES: dict[str, dict[str, tuple[tuple[str, ...], str]]] = {
    "tumor_vs_adjacent": {
        "tumor_vs_adjacent": (("cell_type", "signature", "cancer_type", "n_pairs", "mean_tumor", "mean_adjacent",
                               *PAIRED),
                              "paired tumour - adjacent activity per cell type, per cancer type and pooled; "
                              "Wilcoxon signed-rank and paired t, BH within each test"),
    },
    "cancer_type_specificity": {
        "specificity": (SPECIFICITY, "mean activity per cancer type over tumour samples, z-specificity, gap, "
                                     "Kruskal-Wallis q"),
    },
    "immune_infiltration": {
        "samples": (("sample", "cancer_type", "n_cells", "n_immune", "n_unmapped", "immune_fraction",
                     *[fraction_column(s) for s in INFILTRATION_SUBTYPES], "cd8_treg_ratio", "reason"),
                    "immune and subtype fractions of each tumour sample (count weighted, common vocabulary)"),
        "summary": (("cancer_type", "n_samples", "immune_fraction_mean", "immune_fraction_sd",
                     "immune_fraction_median"), "infiltration per cancer type: mean, sd, median of each fraction"),
        "correlation": (("signature", "rho", "pvalue", "n", "qvalue", "reason"),
                        "Spearman of sample activity with the immune fraction, BH over every row"),
    },
    "t_cell_exhaustion": {
        "comparison": (("signature", "n_pairs", "mean_exhausted", "mean_other", *PAIRED),
                       "exhausted - other CD8 T activity, per donor then paired across donors, BH per test"),
        "cells": (("cell", "donor", "sample", "cell_type", "score", "exhausted"),
                  "exhaustion score of every CD8 T cell (markers vs expression-matched controls)"),
        "donors": (("donor", "n_exhausted", "n_other", "used"), "CD8 T cells per donor and state"),
    },
    "caf_subtypes": {
        "activity": (("signature", "caf_subtype", "n_samples", "mean", "statistic", "pvalue", "qvalue", "reason"),
                     "activity per CAF subtype over samples, Kruskal-Wallis across subtypes, BH over signatures"),
        "cells": (("cell", "cell_type", "score_myCAF", "score_iCAF", "score_apCAF", "caf_subtype"),
                  "CAF marker-set scores and subtype call of every fibroblast"),
        "proportions": (("level", "key", "caf_subtype", "n_cells", "n_fibroblasts", "proportion"),
                        "CAF subtype proportions per sample and per cancer type"),
    },
}
