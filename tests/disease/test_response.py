"""treatment_response: scikit-learn references on the out-of-fold probabilities, grouped folds, importance,
the planted predictive activity, a label-shuffled null, unlabelled samples and bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.inspection import permutation_importance
from sklearn.metrics import roc_auc_score, roc_curve

from cytodask.disease import treatment_response
from cytodask.disease.api.importance import auc_rows, pooled_importance
from tests.disease._data import RESPONSE, activity

# small and seeded: 3 folds, 2 repeats, 9 permutations, 15 trees (cost, not accuracy, is what the test varies)
FAST = {"n_splits": 3, "n_repeats": 2, "n_permutations": 9, "n_estimators": 15, "importance_repeats": 2, "seed": 0}
COLS = {"response_col": "therapyResponse", "patient_col": "patientID", "sample_col": "sampleID",
        "cell_type_col": "Level2", "disease_col": "disease"}


@pytest.fixture(scope="module")
def adata():
    return activity()


@pytest.fixture(scope="module")
def ra(adata):
    return treatment_response(adata, **COLS, disease="RA", **FAST)


def test_aucs_are_sklearn_roc_auc_of_the_out_of_fold_probabilities(ra):
    oof, y = ra.oof, ra.oof["label"].to_numpy()
    assert len(oof) == 64 and ra.n_patients == 32 and (ra.n_positive, ra.n_negative) == (32, 32)
    for j, m in enumerate(("logistic", "random_forest", "ensemble")):
        assert ra.auc[m] == pytest.approx(roc_auc_score(y, oof[m]), abs=1e-12)
        for r in range(FAST["n_repeats"]):
            got = ra.auc_repeats.query("repeat == @r and model == @m")["auc"].item()
            assert got == pytest.approx(roc_auc_score(y, ra.oof_repeats[r, :, j]), abs=1e-12)
        fpr, tpr, _ = roc_curve(y, oof[m])
        roc = ra.roc[ra.roc["model"] == m]
        np.testing.assert_allclose(roc["fpr"], fpr) and np.testing.assert_allclose(roc["tpr"], tpr)
    # the ensemble is the soft vote (mean of the two probabilities), scored on its own probabilities
    np.testing.assert_allclose(ra.oof_repeats[:, :, 2], ra.oof_repeats[:, :, :2].mean(axis=2), rtol=1e-12)
    summary = ra.summary().set_index("model")
    assert summary.loc["ensemble", "permutation_p"] == ra.permutation_p
    assert np.isnan(summary.loc["logistic", "permutation_p"])
    assert summary.loc["ensemble", "auc_sd"] == pytest.approx(
        ra.auc_repeats.query("model == 'ensemble'")["auc"].std(ddof=1))


def test_no_patient_is_in_train_and_test_of_any_fold(ra):
    patients = ra.oof["patient"].to_numpy()
    assert len(ra.folds) == FAST["n_splits"] * FAST["n_repeats"]
    for train, test in ra.folds:
        assert not set(patients[train]) & set(patients[test])
        assert len(train) + len(test) == len(patients)
    # both timepoints of a patient are held out together
    assert pd.Series(patients).value_counts().eq(2).all()


def test_planted_response_auc_within_band_of_theory_and_permutation_p(adata, ra):
    # R has +RESPONSE on IL6 in Mono over N(0, 1) noise: that feature's AUC is Phi(RESPONSE / sqrt(2)) = 0.92.
    theory = stats.norm.cdf(RESPONSE / np.sqrt(2))
    mono = treatment_response(adata, **COLS, disease="RA", cell_types=["Mono"], **FAST)
    # the planted cell type's 12 features, 21 training patients per fold: the out-of-fold AUC is within 0.1 of
    # the planted feature's theoretical AUC (SE of an AUC near 0.9 with 32 + 32 samples ~ 0.04; learning which
    # of 12 features matters costs a little)
    assert abs(mono.auc["ensemble"] - theory) < 0.1, (mono.auc, theory)
    assert mono.permutation_p == pytest.approx(1 / (1 + FAST["n_permutations"]))  # no null AUC reached it
    # all 48 features (47 noise) with 21 training patients: lower, still above chance, and the planted
    # feature is the most important on the held-out folds
    assert 0.6 < ra.auc["ensemble"] < theory + 0.05
    assert ra.importance.iloc[0]["feature"] == "Mono|IL6"
    observed = ra.auc_repeats.query("repeat == 0 and model == 'ensemble'")["auc"].item()
    n = FAST["n_permutations"]
    assert ra.permutation_p == pytest.approx((1 + np.sum(ra.permutation_aucs >= observed)) / (1 + n))
    assert len(ra.permutation_aucs) == n


def test_label_shuffled_data_give_chance_auc_and_large_p(adata):
    a = adata[(adata.obs["disease"] == "RA").to_numpy()].copy()
    patients = a.obs["patientID"].astype(str)
    first = patients.drop_duplicates()
    labels = a.obs["therapyResponse"].astype(str).groupby(patients.to_numpy()).first().loc[first.to_numpy()]
    shuffled = dict(zip(first, np.random.default_rng(5).permutation(labels.to_numpy()), strict=True))
    a.obs["therapyResponse"] = patients.map(shuffled).to_numpy()
    res = treatment_response(a, **COLS, **{**FAST, "n_repeats": 1, "n_permutations": 19})
    # 64 samples, no signal: AUC within about 2.5 SE (0.07) of 0.5; the permutation p is uniform on
    # {1/20, ..., 1}: > 0.05 unless the AUC beats every null AUC
    assert abs(res.auc["ensemble"] - 0.5) < 0.18 and res.permutation_p > 0.05, (res.auc, res.permutation_p)


def test_batched_importance_equals_sklearn_permutation_importance():
    from cytodask.disease.api.response import _cv, _ensemble

    rng = np.random.default_rng(1)
    X = rng.normal(size=(30, 6))
    y = (X[:, 0] + 0.5 * rng.normal(size=30) > 0).astype(np.int64)
    groups = np.repeat(np.arange(15), 2)
    _, folds, fitted = _cv(_ensemble(10, 1.0, 0), X, y, groups, 3, 0)
    features = [f"T|S{j}" for j in range(6)]
    got = pooled_importance(fitted, folds, X, y, features, repeats=3, seed=4).set_index("feature")
    drops = np.concatenate([permutation_importance(m, X[te], y[te], scoring="roc_auc", n_repeats=3,
                                                   random_state=4).importances
                            for m, (_, te) in zip(fitted, folds, strict=True)], axis=1)
    # the same permutations and the same AUCs: equal to rounding
    np.testing.assert_allclose(got.loc[features, "importance_mean"], drops.mean(axis=1), rtol=0, atol=1e-12)
    np.testing.assert_allclose(got.loc[features, "importance_sd"], drops.std(axis=1, ddof=1), rtol=0, atol=1e-12)
    assert got.index[0] == "T|S0" and (got["cell_type"] == "T").all()
    scores = rng.normal(size=(4, 30))
    scores[1, :10] = 0.0  # ties count one half, as in sklearn
    np.testing.assert_allclose(auc_rows(y, scores), [roc_auc_score(y, s) for s in scores], atol=1e-14)


def test_unlabelled_samples_are_dropped_and_counted(adata):
    a = adata[(adata.obs["disease"] == "SLE").to_numpy()].copy()
    labels = a.obs["therapyResponse"].astype(object).to_numpy()
    labels[(a.obs["sampleID"] == "S2_SLE0").to_numpy()] = np.nan
    a.obs["therapyResponse"] = labels
    res = treatment_response(a, **COLS, **{**FAST, "n_permutations": 0, "importance_repeats": 0})
    assert res.dropped == {"NaN": 1, "unknown": 2} and res.n_unlabelled == 3
    assert len(res.oof) == 32 - 3 and np.isnan(res.permutation_p)
    assert res.importance["importance_mean"].isna().all()
    assert res.summary()["n_unlabelled"].eq(3).all()


def test_class_smaller_than_the_folds_is_refused_with_the_fix(adata):
    a = adata[(adata.obs["disease"] == "RA").to_numpy()].copy()
    keep = (a.obs["therapyResponse"] == "NR").to_numpy() | a.obs["patientID"].isin(["S1_RA1", "S1_RA3"]).to_numpy()
    with pytest.raises(ValueError, match=r"class 'R' has 2 patient\(s\), fewer than n_splits=3.*lower n_splits"):
        treatment_response(a[keep].copy(), **COLS, **FAST)
    with pytest.raises(ValueError, match="no sample has disease in"):
        treatment_response(adata, **COLS, disease="MS", **FAST)
    with pytest.raises(ValueError, match="n_splits=1"):
        treatment_response(adata, **COLS, **{**FAST, "n_splits": 1})
    with pytest.raises(ValueError, match="cohort_col, train_cohort and test_cohort together"):
        treatment_response(adata, **COLS, cohort_col="studyID", **FAST)


def test_train_on_one_cohort_test_on_another(adata):
    res = treatment_response(adata, **COLS, disease="RA", cohort_col="studyID", train_cohort="S1",
                             test_cohort="S2", **{**FAST, "n_permutations": 0, "importance_repeats": 0})
    assert res.n_patients == 16 and res.external["n_test"] == 32
    assert set(res.external["auc"]) == {"logistic", "random_forest", "ensemble"}
    assert res.external["auc"]["ensemble"] > 0.75  # the planted activity carries over
    assert res.summary()["external_auc"].notna().all()
    a = adata.copy()
    a.obs["cohort"] = np.where(a.obs["timepoint"].to_numpy() == 1, "A", "B")  # same patients in both
    with pytest.raises(ValueError, match="in both cohorts 'A' and 'B'"):
        treatment_response(a, **COLS, disease="RA", cohort_col="cohort", train_cohort="A", test_cohort="B", **FAST)
