"""Longitudinal change: patients sampled at two or more timepoints, per (disease ×) cell type × signature.

Two methods, the choice documented in :func:`longitudinal_change`:

- ``"wilcoxon"`` (default): one paired change per patient, ``last − first``
  timepoint (samples of one patient at one timepoint averaged), tested with the
  Wilcoxon signed-rank test (:func:`cytodask.differential.wilcoxon_paired`, the
  shared rank kernel; equal to ``scipy.stats.wilcoxon`` with the normal
  approximation). Robust, no model of the trajectory; middle timepoints unused.
- ``"mixedlm"``: ``activity ~ timepoint`` with a random intercept per patient
  (statsmodels ``MixedLM``, REML), every timepoint used; the estimate is the
  slope per timepoint unit and its Wald p-value. Assumes a linear trend and
  normal residuals.
"""

from __future__ import annotations

import warnings
from typing import Any, Literal

import numpy as np
import pandas as pd

from cytodask.core.stats.driver import check_min_n
from cytodask.core.stats.fdr import fdr_bh
from cytodask.disease.api.inputs import activity_frame, check_columns, per_sample

LongitudinalMethod = Literal["wilcoxon", "mixedlm"]
LONGITUDINAL_COLUMNS = ("disease", "cell_type", "signature", "method", "n_patients", "mean_change",
                        "median_change", "estimate", "statistic", "pvalue", "qvalue", "has_longitudinal",
                        "reason")  # fmt: skip
NO_REPEATS = "no patient has samples at two or more timepoints (in any cell type)"


def _no_longitudinal(method: str, reason: str) -> pd.DataFrame:
    row = dict.fromkeys(LONGITUDINAL_COLUMNS, np.nan)
    row.update(disease="", cell_type="", signature="", method=method, n_patients=0, has_longitudinal=False,
               reason=reason)
    out = pd.DataFrame([row], columns=list(LONGITUDINAL_COLUMNS))
    out.attrs.update(has_longitudinal=False, reason=reason, method=method)
    return out


def _paired(frame: pd.DataFrame, signatures: list[str], patient: str, time: str, min_n: int) -> pd.DataFrame:
    from cytodask.differential import wilcoxon_paired

    per = frame.groupby([patient, time], sort=True, observed=True)[signatures].mean().reset_index()
    first = per.groupby(patient, sort=True, observed=True).first()
    last = per.groupby(patient, sort=True, observed=True).last()
    keep = last[time] > first[time]
    later, earlier = last.loc[keep, signatures], first.loc[keep, signatures]
    change = later - earlier
    res = wilcoxon_paired(later.T, earlier.T, min_n=min_n)
    return pd.DataFrame({"signature": signatures, "n_patients": int(keep.sum()),
                         "mean_change": change.mean().to_numpy(), "median_change": change.median().to_numpy(),
                         "estimate": change.mean().to_numpy(), "statistic": res["statistic"].to_numpy(),
                         "pvalue": res["pvalue"].to_numpy(),
                         "reason": res["reason"].str.replace("n_pairs", "n_patients").to_numpy()})


def _mixed(frame: pd.DataFrame, signatures: list[str], patient: str, time: str, min_n: int) -> pd.DataFrame:
    import statsmodels.formula.api as smf

    base = _paired(frame, signatures, patient, time, min_n)
    n = int(base["n_patients"].iloc[0])
    est, stat, p = (np.full(len(signatures), np.nan) for _ in range(3))
    reason = [""] * len(signatures)
    for j, sig in enumerate(signatures):
        if n < min_n:
            reason[j] = f"n_patients<{min_n}"
            continue
        data = pd.DataFrame({"y": frame[sig].to_numpy(dtype=np.float64), "t": frame[time].to_numpy(np.float64),
                             "g": frame[patient].astype(str).to_numpy()})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # singular random-effect covariance, convergence: the fit still reports
            try:
                fit = smf.mixedlm("y ~ t", data, groups=data["g"]).fit(reml=True)
            except (np.linalg.LinAlgError, ValueError) as e:
                reason[j] = f"mixedlm failed: {e}"
                continue
        est[j], stat[j], p[j] = fit.params["t"], fit.tvalues["t"], fit.pvalues["t"]
    return base.assign(estimate=est, statistic=stat, pvalue=p, reason=reason)


def longitudinal_change(activity: Any, *, patient_col: str, timepoint_col: str, sample_col: str,
                        cell_type_col: str, disease_col: str | None = None, method: LongitudinalMethod = "wilcoxon",
                        min_n: int = 3, obs: pd.DataFrame | None = None, layer: str | None = None) -> pd.DataFrame:
    """Change of activity over time within patients, per (disease ×) cell type × signature, BH over the table.

    Parameters
    ----------
    activity, sample_col, cell_type_col, obs, layer
        As :func:`~cytodask.disease.api.contrast.disease_vs_healthy`.
    patient_col, timepoint_col
        obs columns: the patient (pairs are within a patient) and the
        timepoint (numeric; larger = later).
    disease_col
        Stratify by disease as well (a patient's disease must not change).
    method
        ``"wilcoxon"``: paired ``last − first`` change per patient, Wilcoxon
        signed-rank (default: no trajectory model, robust to outliers);
        ``"mixedlm"``: random-intercept model ``activity ~ timepoint``, slope per
        timepoint unit (uses middle timepoints; assumes linearity).
    min_n
        Fewer repeated patients give NaN with reason ``"n_patients<3"``.

    Returns
    -------
    DataFrame
        :data:`LONGITUDINAL_COLUMNS`; ``mean_change``/``median_change`` of
        ``last − first`` over repeated patients, ``estimate`` (mean change, or
        the slope), ``qvalue`` BH over every row (``attrs["fdr_family"]``),
        ``has_longitudinal``. Without any repeated patient: one row with
        ``has_longitudinal = False`` and the reason (also in ``attrs``), not
        an empty table.
    """
    if method not in ("wilcoxon", "mixedlm"):
        raise ValueError(f"method={method!r}: use 'wilcoxon' (signed-rank on last - first) or 'mixedlm'")
    min_n = check_min_n(min_n)
    values, meta = activity_frame(activity, obs, layer=layer)
    check_columns(meta, [patient_col, timepoint_col, sample_col, cell_type_col, disease_col], "longitudinal_change")
    values, meta = per_sample(values, meta, [sample_col, cell_type_col], [patient_col, timepoint_col, disease_col])
    time = pd.to_numeric(meta[timepoint_col], errors="coerce")
    if time.isna().all() and len(meta):
        raise ValueError(f"longitudinal_change: {timepoint_col!r} has no numeric value; give timepoints as numbers "
                         "(1, 2, 3 or days)")
    patients = meta[patient_col].astype(str).where(meta[patient_col].notna())
    meta = meta.assign(**{timepoint_col: time, patient_col: patients})
    keep = meta[[patient_col, timepoint_col]].notna().all(axis=1).to_numpy()
    values, meta = values[keep], meta[keep]
    signatures = list(map(str, values.columns))
    frame = pd.concat([meta, values], axis=1)
    strata = [disease_col, cell_type_col] if disease_col else [cell_type_col]
    run = _mixed if method == "mixedlm" else _paired
    frames = []
    for key, g in frame.groupby(strata, sort=True, observed=True):
        n_times = g.groupby(patient_col, observed=True)[timepoint_col].nunique()
        repeated = n_times.index[n_times >= 2]
        if len(repeated) == 0:
            continue
        out = run(g[g[patient_col].isin(repeated)], signatures, patient_col, timepoint_col, min_n)
        key = key if isinstance(key, tuple) else (key,)
        out.insert(0, "cell_type", key[-1])
        out.insert(0, "disease", key[0] if disease_col else "")
        frames.append(out)
    if not frames:
        return _no_longitudinal(method, NO_REPEATS)
    table = pd.concat(frames, ignore_index=True)
    table["method"] = method
    table["has_longitudinal"] = True
    table["qvalue"] = fdr_bh(table["pvalue"].to_numpy(dtype=np.float64))
    table = table[list(LONGITUDINAL_COLUMNS)]
    change = "last - first timepoint per patient" if method == "wilcoxon" else "slope per timepoint unit"
    table.attrs.update(has_longitudinal=True, reason="", method=method, change=change,
                       fdr_family="Benjamini-Hochberg over every (disease x) cell type x signature row of the table")
    return table
