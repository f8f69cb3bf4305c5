"""The treatment-response stage: per disease with R/NR labels, and pan-disease (``disease = "all"``)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anndata
import numpy as np
import pandas as pd

from cytodask.core.registry import register_stage
from cytodask.core.stage import ExportTable
from cytodask.core.tables import read_table
from cytodask.disease.stage.base import TableStage

PAN = "all"


def response_tables(src: str, *, disease_col: str | None, n_jobs: int = 1, **params: Any
                    ) -> dict[str, pd.DataFrame]:
    """Summary (``table``), ``roc`` and ``importance`` tables over every disease with labels, then pan-disease."""
    from cytodask.disease.api.response import RESPONSE_COLUMNS, treatment_response

    adata = anndata.read_zarr(src)
    obs = adata.obs
    if "empty" in obs.columns:
        obs = obs[~obs["empty"].to_numpy(dtype=bool)]
    labelled = obs[obs[params["response_col"]].astype(str).isin([params["positive"], params["negative"]])]
    diseases = sorted(set(labelled[disease_col].dropna().astype(str))) if disease_col else []
    summaries, rocs, imps = [], [], []
    for disease in [*diseases, PAN]:
        subset = {} if disease == PAN else {"disease_col": disease_col, "disease": disease}
        try:
            res = treatment_response(adata, **params, **subset, n_jobs=n_jobs)
        except ValueError as e:  # too few patients in a class: a row that says so, not a failed stage
            row = dict.fromkeys(RESPONSE_COLUMNS, np.nan)
            summaries.append(pd.DataFrame([{**row, "model": "ensemble", "disease": disease, "reason": str(e)}]))
            continue
        summaries.append(res.summary().assign(disease=disease, reason=""))
        rocs.append(res.roc.assign(disease=disease))
        imps.append(res.importance.assign(disease=disease, rank=np.arange(1, len(res.importance) + 1)))
    summary = pd.concat(summaries, ignore_index=True)
    summary = summary[["disease", *RESPONSE_COLUMNS, "reason"]]
    for c in ("n_samples", "n_positive", "n_negative", "n_patients", "n_unlabelled"):
        summary[c] = summary[c].astype("Int64")
    roc = (pd.concat(rocs, ignore_index=True) if rocs
           else pd.DataFrame(columns=["model", "fpr", "tpr", "threshold", "disease"]))
    imp = (pd.concat(imps, ignore_index=True) if imps
           else pd.DataFrame(columns=["feature", "cell_type", "signature", "importance_mean", "importance_sd",
                                      "disease", "rank"]))
    summary.attrs["permutation_p"] = "label permutations of the patients; ensemble AUC of the first repeat's folds"
    return {"table": summary, "roc": roc[["disease", "model", "fpr", "tpr", "threshold"]],
            "importance": imp[["disease", "rank", "feature", "cell_type", "signature", "importance_mean",
                               "importance_sd"]]}


@register_stage("treatment_response")
class TreatmentResponseStage(TableStage):
    """Responders vs non-responders from sample-level activity (:func:`cytodask.disease.treatment_response`).

    Per disease with labelled samples and pan-disease; a disease with too few
    labelled patients gets a row with the reason instead of an AUC.
    """

    compute = response_tables
    version = "1"

    def __init__(self, name: str, *, inputs: tuple[str, ...], response_col: str = "therapyResponse",
                 patient_col: str = "patientID", sample_col: str = "sampleID", cell_type_col: str | None = "Level2",
                 disease_col: str | None = "disease", positive: str = "R", negative: str = "NR", n_splits: int = 5,
                 n_repeats: int = 3, n_permutations: int = 50, n_estimators: int = 200, seed: int = 0,
                 importance_repeats: int = 1, n_jobs: int = 1,
                 cohort_col: str | None = None, train_cohort: str | None = None,
                 test_cohort: str | None = None) -> None:
        super().__init__(name, inputs=inputs)
        self.response_col, self.patient_col, self.sample_col = response_col, patient_col, sample_col
        self.cell_type_col, self.disease_col = cell_type_col, disease_col
        self.positive, self.negative = positive, negative
        self.n_splits, self.n_repeats, self.n_permutations = int(n_splits), int(n_repeats), int(n_permutations)
        self.n_estimators, self.seed = int(n_estimators), int(seed)
        self.importance_repeats, self.n_jobs = int(importance_repeats), int(n_jobs)
        self.cohort_col, self.train_cohort, self.test_cohort = cohort_col, train_cohort, test_cohort

    def params(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in (
            "response_col", "patient_col", "sample_col", "cell_type_col", "disease_col", "positive", "negative",
            "n_splits", "n_repeats", "n_permutations", "n_estimators", "seed", "importance_repeats", "cohort_col",
            "train_cohort", "test_cohort")}

    def task_params(self) -> dict[str, Any]:
        return {**self.params(), "n_jobs": self.n_jobs}  # threads of the forest: same results

    def needed_columns(self) -> list[str | None]:
        return [self.response_col, self.patient_col, self.sample_col, self.cell_type_col, self.disease_col,
                self.cohort_col]

    def export_tables(self) -> list[ExportTable]:
        from cytodask.disease.export import response_exports

        return response_exports()

    def report_sections(self, data: Path, options: Mapping[str, Any]) -> list[Any]:
        from cytodask.disease.report import roc_section

        return roc_section(data)

    def finalize(self, ctx: Any) -> dict[str, Any]:
        table = read_table(ctx.path)
        ens = table[table["model"] == "ensemble"]
        skipped = ens[ens["reason"].astype(str) != ""]
        return {"rows": int(len(table)), "analyses": int(len(ens)),
                "notices": [f"treatment response not computed for {d}: {r}"
                            for d, r in zip(skipped["disease"], skipped["reason"], strict=True)]}
