"""Export tables of the disease stages and their schemas (documented in the README, "Disease analyses").

- ``disease_vs_healthy``: :data:`~cytodask.disease.api.contrast.CONTRAST_COLUMNS`
  (disease, cell_type, signature, diff = mean disease − mean healthy, mean_disease,
  mean_healthy, hedges_g, cliffs_delta, statistic, pvalue, qvalue (BH over the
  whole table), n_disease, n_healthy, control_scope, test, reason);
- ``disease_profiles``: disease, cell_type, signature, mean, sd, median, n_samples, n_cells;
- ``disease_drivers``: disease, cell_type, rank, n_significant, n_tested, mean_abs_diff,
  min_qvalue, top_signature, reason;
- ``disease_conserved``: signature, cell_type, n_diseases, n_significant, n_up, n_down,
  conserved, direction, diseases_significant, pooled_g, pooled_se, pooled_ci_low,
  pooled_ci_high, pooled_pvalue, tau2, i2;
- ``treatment_response``: disease, model, auc, auc_sd, permutation_p, n_samples,
  n_positive, n_negative, n_patients, n_unlabelled, external_auc, reason;
  ``treatment_response_roc``: disease, model, fpr, tpr, threshold;
  ``treatment_response_importance``: disease, rank, feature, cell_type, signature,
  importance_mean, importance_sd;
- ``disease_longitudinal``: disease, cell_type, signature, method, n_patients,
  mean_change, median_change, estimate, statistic, pvalue, qvalue,
  has_longitudinal, reason.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pandas as pd

from cytodask.core.stage import ExportOptions, ExportTable
from cytodask.core.tables import read_table
from cytodask.disease.api.contrast import CONTRAST_COLUMNS
from cytodask.disease.api.longitudinal import LONGITUDINAL_COLUMNS
from cytodask.disease.api.profiles import PROFILE_COLUMNS
from cytodask.disease.api.response import RESPONSE_COLUMNS
from cytodask.disease.api.summaries import CONSERVED_COLUMNS, DRIVER_COLUMNS

RESPONSE_TABLE = ("disease", *RESPONSE_COLUMNS, "reason")
ROC_COLUMNS = ("disease", "model", "fpr", "tpr", "threshold")
IMPORTANCE_COLUMNS = ("disease", "rank", "feature", "cell_type", "signature", "importance_mean", "importance_sd")


def read_disease_table(path: Path, options: ExportOptions, *, name: str = "table") -> pd.DataFrame:
    """Table ``name`` of a disease stage's output at ``path`` (the export reader of every disease table)."""
    return read_table(path, name)


def _export(name: str, columns: tuple[str, ...], description: str, table: str = "table") -> ExportTable:
    return ExportTable(name, functools.partial(read_disease_table, name=table), tuple(columns), description)


def contrast_export() -> ExportTable:
    return _export("disease_vs_healthy", CONTRAST_COLUMNS,
                   "every disease vs (study-matched) healthy per cell type and signature; BH over the table")


def profiles_export() -> ExportTable:
    return _export("disease_profiles", PROFILE_COLUMNS, "mean, sd, median activity per disease x cell type")


def drivers_export() -> ExportTable:
    return _export("disease_drivers", DRIVER_COLUMNS, "driving populations per disease x cell type, ranked")


def conserved_export() -> ExportTable:
    return _export("disease_conserved", CONSERVED_COLUMNS, "signatures moving with one sign in several diseases")


def longitudinal_export() -> ExportTable:
    return _export("disease_longitudinal", LONGITUDINAL_COLUMNS, "within-patient change over timepoints")


def response_exports() -> list[ExportTable]:
    return [_export("treatment_response", RESPONSE_TABLE, "out-of-fold AUC of responder prediction per model"),
            _export("treatment_response_roc", ROC_COLUMNS, "ROC points of the out-of-fold probabilities", "roc"),
            _export("treatment_response_importance", IMPORTANCE_COLUMNS,
                    "permutation importance of features on held-out folds", "importance")]
