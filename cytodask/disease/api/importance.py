"""Held-out AUCs and permutation importance of the treatment-response models, batched.

:func:`auc_rows` is the ROC AUC of many score vectors against one label vector
from average ranks (the Mann–Whitney identity ``AUC = U₁ / (n₁n₀)``), equal to
``sklearn.metrics.roc_auc_score`` row by row (ties count one half in both).
:func:`fold_importance` is ``sklearn.inspection.permutation_importance(model, X,
y, scoring="roc_auc", n_repeats, random_state)`` computed with one
``predict_proba`` call per chunk of features instead of one call and one scorer
call per feature and repeat: the same permutations (scikit-learn draws one
shuffle per repeat, shared by every column, applied cumulatively), the same
scores.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from cytodask.core.stats.ranks import rankdata

IMPORTANCE_CHUNK = 64  # features permuted per batched predict call: bounds the stacked copy to 64 x test x features


def auc_rows(y: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """ROC AUC of each row of ``scores`` (k × n) for binary labels ``y`` (n; 1 = positive).

    ``(Σ ranks of the positives − n₁(n₁+1)/2) / (n₁ n₀)`` with average ranks
    (ties half), i.e. ``sklearn.metrics.roc_auc_score(y, row)``.
    """
    scores = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    pos = np.asarray(y).astype(bool)
    n1, n0 = int(pos.sum()), int((~pos).sum())
    if n1 == 0 or n0 == 0:
        raise ValueError("auc_rows: the labels have one class only; the AUC is undefined")
    ranks, _ = rankdata(scores, np)
    return (ranks[:, pos].sum(axis=1) - n1 * (n1 + 1) / 2.0) / (n1 * n0)


def _sklearn_permutations(n: int, repeats: int, random_state: int) -> np.ndarray:
    """The row order of a permuted column at each repeat, as scikit-learn's ``permutation_importance`` draws it.

    It seeds one ``RandomState`` per column from ``random_state`` (the same seed
    for every column), shuffles one index in place per repeat and re-permutes
    the already permuted column, so repeat ``r`` shows ``X[order_r, j]`` with
    ``order_r = order_{r-1}[idx_r]``.
    """
    seed = np.random.RandomState(random_state).randint(np.iinfo(np.int32).max + 1)
    rs = np.random.RandomState(seed)
    idx, order = np.arange(n), np.arange(n)
    out = np.empty((repeats, n), dtype=np.int64)
    for r in range(repeats):
        rs.shuffle(idx)
        order = order[idx]
        out[r] = order
    return out


def fold_importance(model: Any, X: np.ndarray, y: np.ndarray, repeats: int, random_state: int) -> np.ndarray:
    """Drop of the held-out AUC when each feature is permuted (features × repeats).

    Equal to ``permutation_importance(model, X, y, scoring="roc_auc", n_repeats=repeats,
    random_state=random_state).importances``: the shuffled copies of a chunk of
    features are stacked and scored with one ``predict_proba`` call, their
    AUCs with one ranking (:func:`auc_rows`).
    """
    n, f = X.shape
    base = auc_rows(y, model.predict_proba(X)[:, 1][None])[0]
    out = np.empty((f, repeats))
    for r, order in enumerate(_sklearn_permutations(n, repeats, random_state)):
        for start in range(0, f, IMPORTANCE_CHUNK):
            cols = np.arange(start, min(f, start + IMPORTANCE_CHUNK))
            stacked = np.repeat(X[None], cols.size, axis=0)
            stacked[np.arange(cols.size), :, cols] = X[order][:, cols].T
            prob = model.predict_proba(stacked.reshape(-1, f))[:, 1].reshape(cols.size, n)
            out[cols, r] = base - auc_rows(y, prob)
    return out


def pooled_importance(fitted: list[Any], folds: list[tuple[np.ndarray, np.ndarray]], X: np.ndarray, y: np.ndarray,
                      features: list[str], repeats: int, seed: int) -> pd.DataFrame:
    """Permutation importance of each fold's model on its held-out rows (one-class folds skipped), pooled.

    ``importance_mean``/``importance_sd`` (ddof 1) over every (fold, repeat)
    drop; NaN when no fold has both classes or ``repeats`` is 0. Features named
    ``cell_type|signature`` are split into those columns; sorted by the mean.
    """
    drops = [fold_importance(model, X[test], y[test], repeats, seed)
             for model, (_, test) in zip(fitted, folds, strict=True) if repeats and np.unique(y[test]).size == 2]
    split = [f.split("|", 1) if "|" in f else ["", f] for f in features]
    imp = np.full((len(features), 2), np.nan)
    if drops:
        all_drops = np.concatenate(drops, axis=1)
        imp[:, 0] = all_drops.mean(axis=1)
        if all_drops.shape[1] > 1:
            imp[:, 1] = all_drops.std(axis=1, ddof=1)
    out = pd.DataFrame({"feature": features, "cell_type": [s[0] for s in split], "signature": [s[1] for s in split],
                        "importance_mean": imp[:, 0], "importance_sd": imp[:, 1]})
    return out.sort_values("importance_mean", ascending=False, kind="stable").reset_index(drop=True)
