"""Treatment response: can sample-level activity tell responders from non-responders out of sample?

Features are a sample's activity per cell type (``cell_type|signature``;
a cell type absent from a sample is imputed inside the folds). Two
scikit-learn Pipelines, scaling and imputation fitted inside each fold:
L2-penalised logistic regression and a random forest, both with balanced class
weights, and their soft-vote ensemble (the mean of the two probabilities).
Cross-validation is ``StratifiedGroupKFold`` grouped by patient (no patient in
both the train and the test part of a fold), repeated with seeded shuffles.
AUCs are computed from out-of-fold probabilities (the ensemble from its own
probabilities, not an average of AUCs); the label-permutation p-value reruns
the cross-validation with the patients' labels permuted; permutation
importance is measured on the held-out folds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cytodask.disease.api.importance import pooled_importance
from cytodask.disease.api.inputs import activity_frame, check_columns, per_sample

MODELS = ("logistic", "random_forest", "ensemble")
RESPONSE_COLUMNS = ("model", "auc", "auc_sd", "permutation_p", "n_samples", "n_positive", "n_negative",
                    "n_patients", "n_unlabelled", "external_auc")  # fmt: skip


@dataclass
class ResponseResult:
    """What :func:`treatment_response` measured.

    Attributes
    ----------
    auc
        Model → AUC of the out-of-fold probabilities averaged over repeats
        (``logistic``, ``random_forest``, ``ensemble``).
    auc_repeats
        ``repeat, model, auc`` of each repeat's out-of-fold probabilities.
    permutation_p, permutation_aucs
        Label-permutation p-value of the ensemble AUC (first repeat's folds),
        ``(1 + #{AUC_perm ≥ AUC}) / (1 + n_permutations)``, and the null AUCs.
    roc
        ``model, fpr, tpr, threshold`` from the repeat-averaged probabilities.
    importance
        ``feature, cell_type, signature, importance_mean, importance_sd``:
        drop of the ensemble's held-out AUC when a feature is permuted.
    oof
        Per labelled sample: ``patient``, ``label`` (1 = positive), each
        model's repeat-averaged out-of-fold probability.
    oof_repeats
        ``repeats × samples × models`` out-of-fold probabilities.
    folds
        ``(train, test)`` row positions (into ``oof``) of every fold of every repeat.
    dropped
        Unlabelled samples dropped, counted by their label (``"NaN"`` for missing).
    external
        Train-on-one-cohort, test-on-another: ``{"train", "test", "n_test", "auc": {model: auc}}``.
    """

    auc: dict[str, float]
    auc_repeats: pd.DataFrame
    permutation_p: float
    permutation_aucs: np.ndarray
    roc: pd.DataFrame
    importance: pd.DataFrame
    oof: pd.DataFrame
    oof_repeats: np.ndarray
    folds: list[tuple[np.ndarray, np.ndarray]]
    n_positive: int
    n_negative: int
    n_patients: int
    dropped: dict[str, int] = field(default_factory=dict)
    external: dict[str, Any] | None = None

    @property
    def n_unlabelled(self) -> int:
        return int(sum(self.dropped.values()))

    def summary(self) -> pd.DataFrame:
        """One row per model: :data:`RESPONSE_COLUMNS`."""
        sd = self.auc_repeats.groupby("model")["auc"].std(ddof=1)
        ext = (self.external or {}).get("auc", {})
        return pd.DataFrame([{"model": m, "auc": self.auc[m], "auc_sd": float(sd.get(m, np.nan)),
                              "permutation_p": self.permutation_p if m == "ensemble" else np.nan,
                              "n_samples": len(self.oof), "n_positive": self.n_positive,
                              "n_negative": self.n_negative, "n_patients": self.n_patients,
                              "n_unlabelled": self.n_unlabelled, "external_auc": ext.get(m, np.nan)}
                             for m in MODELS], columns=list(RESPONSE_COLUMNS))


def _ensemble(n_estimators: int, C: float, seed: int, n_jobs: int = 1) -> Any:
    from sklearn.ensemble import RandomForestClassifier, VotingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    logistic = Pipeline([("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
                         ("scale", StandardScaler()),
                         ("model", LogisticRegression(C=C, class_weight="balanced", max_iter=5000))])  # L2 default
    forest = Pipeline([("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
                       ("model", RandomForestClassifier(n_estimators=n_estimators, class_weight="balanced",
                                                        random_state=seed, n_jobs=n_jobs))])
    return VotingClassifier([("logistic", logistic), ("random_forest", forest)], voting="soft")


def response_features(activity: Any, *, response_col: str, patient_col: str, sample_col: str,
                      cell_type_col: str | None, extra: Sequence[str | None] = (), obs: pd.DataFrame | None = None,
                      layer: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Samples × features (``cell_type|signature``) and the per-sample labels, patients and ``extra`` columns."""
    values, meta = activity_frame(activity, obs, layer=layer)
    check_columns(meta, [response_col, patient_col, sample_col, cell_type_col, *extra], "treatment_response")
    carry = list(dict.fromkeys(c for c in (response_col, patient_col, *extra) if c is not None))
    if cell_type_col is None:
        values, meta = per_sample(values, meta, [sample_col], carry)
        return values.set_axis(meta[sample_col].to_numpy()), meta.set_index(sample_col)[carry]
    values, meta = per_sample(values, meta, [sample_col, cell_type_col], carry)
    long = values.assign(_s=meta[sample_col].to_numpy(), _c=meta[cell_type_col].to_numpy())
    wide = long.pivot(index="_s", columns="_c")
    wide.columns = [f"{c}|{s}" for s, c in wide.columns]
    wide = wide[sorted(wide.columns)]
    wide.index.name = None
    samples = per_sample(values, meta, [sample_col], carry)[1].set_index(sample_col)[carry]
    return wide, samples.loc[wide.index]


def _check_labels(labels: pd.Series, positive: str, negative: str, patients: pd.Series, n_splits: int
                  ) -> tuple[np.ndarray, dict[str, int]]:
    text = labels.astype(str).where(labels.notna(), "NaN")
    use = text.isin([str(positive), str(negative)]).to_numpy()
    dropped = {str(k): int(v) for k, v in text[~use].value_counts().sort_index().items()}
    for name in (positive, negative):
        pts = patients[use & (text == str(name)).to_numpy()].nunique()
        if pts < n_splits:
            raise ValueError(f"treatment_response: class {name!r} has {pts} patient(s), fewer than n_splits="
                             f"{n_splits} folds of StratifiedGroupKFold; lower n_splits (>= 2) or add labelled "
                             f"patients (unlabelled samples dropped: {dropped})")
    return use, dropped


def _cv(est: Any, X: np.ndarray, y: np.ndarray, groups: np.ndarray, n_splits: int, seed: int
        ) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]], list[Any]]:
    """Out-of-fold probabilities (samples × models) of one shuffled StratifiedGroupKFold, folds, fitted models."""
    from sklearn.base import clone
    from sklearn.model_selection import StratifiedGroupKFold

    oof = np.full((len(y), len(MODELS)), np.nan)
    folds, fitted = [], []
    for train, test in StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed).split(X, y, groups):
        if np.intersect1d(groups[train], groups[test]).size:  # a leak would make the AUC meaningless
            raise RuntimeError("StratifiedGroupKFold put a patient in both the train and the test part of a fold")
        model = clone(est).fit(X[train], y[train])
        oof[test, 0] = model.named_estimators_["logistic"].predict_proba(X[test])[:, 1]
        oof[test, 1] = model.named_estimators_["random_forest"].predict_proba(X[test])[:, 1]
        oof[test, 2] = model.predict_proba(X[test])[:, 1]
        folds.append((train, test))
        fitted.append(model)
    return oof, folds, fitted


def _roc(y: np.ndarray, probs: np.ndarray) -> pd.DataFrame:
    from sklearn.metrics import roc_curve

    frames = []
    for j, m in enumerate(MODELS):
        fpr, tpr, thr = roc_curve(y, probs[:, j])
        frames.append(pd.DataFrame({"model": m, "fpr": fpr, "tpr": tpr, "threshold": np.minimum(thr, 1.0)}))
    return pd.concat(frames, ignore_index=True)


def treatment_response(activity: Any, *, response_col: str, patient_col: str, sample_col: str,
                       cell_type_col: str | None = None, positive: str = "R", negative: str = "NR",
                       disease_col: str | None = None, disease: str | Sequence[str] | None = None,
                       n_splits: int = 5, n_repeats: int = 5, n_permutations: int = 100, n_estimators: int = 200,
                       C: float = 1.0, importance_repeats: int = 5, cohort_col: str | None = None,
                       train_cohort: str | None = None, test_cohort: str | None = None, seed: int = 0,
                       cell_types: Sequence[str] | None = None, n_jobs: int = 1, obs: pd.DataFrame | None = None,
                       layer: str | None = None) -> ResponseResult:
    """Predict responders (``positive``) vs non-responders (``negative``) from sample-level activity.

    Parameters
    ----------
    activity, sample_col, obs, layer
        As :func:`~cytodask.disease.api.contrast.disease_vs_healthy`.
    response_col, positive, negative
        Per-sample response label; other values (``"NA"``, ``"unknown"``,
        missing) are dropped and counted in ``ResponseResult.dropped``.
    patient_col
        Folds are grouped by patient: no patient is in both parts of a fold.
    cell_type_col
        Features are ``cell_type|signature`` (``None``: whole-sample activity).
    disease_col, disease
        Restrict to these diseases (``None``: pan-disease).
    n_splits, n_repeats, seed
        ``StratifiedGroupKFold(n_splits, shuffle=True, random_state=seed + r)``
        for repeats ``r = 0 … n_repeats − 1``. Each class needs at least
        ``n_splits`` patients (else a ValueError says what to change).
    n_permutations
        Label permutations (patients' labels shuffled, seeded) for the p-value
        of the ensemble AUC; 0 skips it (p NaN).
    n_estimators, C
        Trees of the random forest (default 200; tests use fewer), inverse L2
        strength of the logistic regression.
    importance_repeats
        Permutations per feature and held-out fold (first repeat's folds).
    cohort_col, train_cohort, test_cohort
        Optional external validation: cross-validation on ``train_cohort``,
        then models fitted on all of it and scored on ``test_cohort``
        (``ResponseResult.external``). A patient in both cohorts is an error.
    cell_types
        Use only the features of these cell types (default: every cell type).
    n_jobs
        Threads of the random forest (results do not depend on it).

    Notes
    -----
    Cost: ``(n_repeats + n_permutations) × n_splits`` fits of both models, plus
    one batched prediction per chunk of features and held-out fold for the
    importance (first repeat). AUCs match ``sklearn.metrics.roc_auc_score`` on
    ``ResponseResult.oof`` / ``oof_repeats``.

    Returns
    -------
    ResponseResult
    """
    from sklearn.metrics import roc_auc_score

    if n_splits < 2 or n_repeats < 1 or n_permutations < 0:
        raise ValueError(f"n_splits={n_splits} (>= 2), n_repeats={n_repeats} (>= 1), n_permutations="
                         f"{n_permutations} (>= 0): give values in range")
    external = (cohort_col, train_cohort, test_cohort)
    if any(v is not None for v in external) and not all(v is not None for v in external):
        raise ValueError("external validation needs cohort_col, train_cohort and test_cohort together")
    X_all, meta = response_features(activity, response_col=response_col, patient_col=patient_col,
                                    sample_col=sample_col, cell_type_col=cell_type_col,
                                    extra=[disease_col, cohort_col], obs=obs, layer=layer)
    if disease is not None:
        if disease_col is None:
            raise ValueError("disease= needs disease_col=, the obs column holding it")
        chosen = [disease] if isinstance(disease, str) else list(disease)
        keep = meta[disease_col].astype(str).isin(chosen).to_numpy()
        if not keep.any():
            raise ValueError(f"no sample has {disease_col} in {chosen}; values: "
                             f"{sorted(meta[disease_col].astype(str).unique())[:20]}")
        X_all, meta = X_all[keep], meta[keep]
    test_part = None
    if cohort_col is not None:
        cohort = meta[cohort_col].astype(str)
        test_part = (X_all[(cohort == str(test_cohort)).to_numpy()], meta[(cohort == str(test_cohort)).to_numpy()])
        both = set(meta.loc[cohort == str(train_cohort), patient_col]) & set(test_part[1][patient_col])
        if both:
            raise ValueError(f"patients {sorted(map(str, both))[:5]} are in both cohorts {train_cohort!r} and "
                             f"{test_cohort!r}; an external test needs disjoint patients")
        train = (cohort == str(train_cohort)).to_numpy()
        X_all, meta = X_all[train], meta[train]
    if cell_types is not None:
        wanted = {str(c) for c in cell_types}
        X_all = X_all[[c for c in X_all.columns if str(c).split("|", 1)[0] in wanted]]
        if X_all.shape[1] == 0:
            raise ValueError(f"cell_types={sorted(wanted)} match no feature; features look like 'cell type|signature'")
    patients = meta[patient_col].astype(str)
    use, dropped = _check_labels(meta[response_col], positive, negative, patients, n_splits)
    X = X_all.to_numpy(dtype=np.float64)[use]
    y = (meta[response_col].astype(str).to_numpy()[use] == str(positive)).astype(np.int64)
    groups = patients.to_numpy()[use]
    features = list(map(str, X_all.columns))
    est = _ensemble(n_estimators, C, seed, n_jobs)

    runs = [_cv(est, X, y, groups, n_splits, seed + r) for r in range(n_repeats)]
    oof_repeats = np.stack([r[0] for r in runs])
    folds = [f for r in runs for f in r[1]]
    auc_repeats = pd.DataFrame([{"repeat": r, "model": m, "auc": float(roc_auc_score(y, oof_repeats[r, :, j]))}
                                for r in range(n_repeats) for j, m in enumerate(MODELS)])
    mean_oof = oof_repeats.mean(axis=0)
    auc = {m: float(roc_auc_score(y, mean_oof[:, j])) for j, m in enumerate(MODELS)}
    observed = float(roc_auc_score(y, oof_repeats[0, :, 2]))
    rng = np.random.default_rng(seed)
    null = np.empty(n_permutations)
    pts, first = np.unique(groups, return_index=True)
    per_patient = all(np.unique(y[groups == p]).size == 1 for p in pts)
    for k in range(n_permutations):
        if per_patient:  # permute the patients' labels, keep each patient's samples together
            y_perm = dict(zip(pts, rng.permutation(y[first]), strict=True))
            yp = np.array([y_perm[g] for g in groups])
        else:
            yp = rng.permutation(y)
        null[k] = roc_auc_score(yp, _cv(est, X, yp, groups, n_splits, seed)[0][:, 2])
    p_value = float((1 + np.sum(null >= observed)) / (1 + n_permutations)) if n_permutations else np.nan
    importance = pooled_importance(runs[0][2], runs[0][1], X, y, features, importance_repeats, seed)
    ext = None
    if test_part is not None:
        Xt, mt = test_part
        tl = mt[response_col].astype(str)
        ok = tl.isin([str(positive), str(negative)]).to_numpy()
        yt = (tl.to_numpy()[ok] == str(positive)).astype(np.int64)
        Xt = Xt.reindex(columns=X_all.columns).to_numpy(dtype=np.float64)[ok]
        if np.unique(yt).size < 2:
            raise ValueError(f"test cohort {test_cohort!r} needs both {positive!r} and {negative!r} samples")
        model = est.fit(X, y)
        probs = [model.named_estimators_["logistic"].predict_proba(Xt)[:, 1],
                 model.named_estimators_["random_forest"].predict_proba(Xt)[:, 1], model.predict_proba(Xt)[:, 1]]
        ext = {"train": str(train_cohort), "test": str(test_cohort), "n_test": int(ok.sum()),
               "auc": {m: float(roc_auc_score(yt, p)) for m, p in zip(MODELS, probs, strict=True)}}
    oof = pd.DataFrame({"patient": groups, "label": y, **{m: mean_oof[:, j] for j, m in enumerate(MODELS)}},
                       index=X_all.index[use])
    return ResponseResult(auc=auc, auc_repeats=auc_repeats, permutation_p=p_value, permutation_aucs=null,
                          roc=_roc(y, mean_oof), importance=importance, oof=oof, oof_repeats=oof_repeats,
                          folds=folds, n_positive=int(y.sum()), n_negative=int((1 - y).sum()),
                          n_patients=int(np.unique(groups).size), dropped=dropped, external=ext)
