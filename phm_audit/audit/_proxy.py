"""How well the model's inputs stand in for a protected attribute: one feature at a time, and all at once.

Definitions (``proxy_auroc``, ``proxy_auroc_all_features``) are in :mod:`phm_audit.audit._explain`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from phm_audit.audit._groups import Grouping
from phm_audit.audit._result import RowBuilder

__all__ = ["PROXY_FOLDS", "PROXY_MAX_ROWS", "feature_ranks", "proxy_rows"]

#: Folds of the cross-validation behind ``proxy_auroc_all_features``.
PROXY_FOLDS = 3
#: People of the sample used to learn ``proxy_auroc_all_features`` (a random subset beyond this).
PROXY_MAX_ROWS = 20_000


def _auroc_interval(auc: np.ndarray, n1: np.ndarray, n0: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Hanley & McNeil (1982) normal-approximation interval of an AUROC."""
    from statistics import NormalDist

    z = NormalDist().inv_cdf(0.5 + level / 2)
    q1 = auc / (2 - auc)
    q2 = 2 * auc**2 / (1 + auc)
    with np.errstate(invalid="ignore", divide="ignore"):
        var = (auc * (1 - auc) + (n1 - 1) * (q1 - auc**2) + (n0 - 1) * (q2 - auc**2)) / (n1 * n0)
    se = np.sqrt(np.clip(var, 0.0, None))
    return np.clip(auc - z * se, 0.0, 1.0), np.clip(auc + z * se, 0.0, 1.0)


def _strength(auc: np.ndarray, low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """AUROC read in the better direction, ``max(A, 1 - A)``, with its interval mirrored alike."""
    flip = auc < 0.5
    return np.where(flip, 1 - auc, auc), np.where(flip, 1 - high, low), np.where(flip, 1 - low, high)


def proxy_rows(
    rows: RowBuilder,
    base: dict[str, Any],
    grouping: Grouping,
    codes: np.ndarray,
    x: np.ndarray,
    features: list[str],
    ranks: np.ndarray,
    *,
    model_name: str,
    notes: list[str],
    min_group_size: int,
    level: float,
    seed: int,
) -> None:
    """Per group, ``proxy_auroc`` of each feature and ``proxy_auroc_all_features`` of them all.

    A model that reads the attribute itself is measured on its other inputs, and a note says so.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    others = [j for j, f in enumerate(features) if f != grouping.attribute]
    if len(others) < len(features):
        notes.append(
            f"{model_name}: it reads '{grouping.attribute}' directly; how well its inputs stand in for it is "
            "measured on its other inputs"
        )
    if not others:
        return
    x, ranks, features = x[:, others], ranks[:, others], [features[j] for j in others]

    g_n, labels = grouping.n_groups, grouping.labels
    n = codes.size
    n1 = np.bincount(codes, minlength=g_n).astype(np.float64)
    n0 = n - n1
    small = np.where(n1 < min_group_size, f"group has fewer than {min_group_size} people in the explained sample", "")
    small = np.where((small == "") & (n0 == 0), "everyone in the sample is in this group", small)
    ok = small == ""
    onehot = np.zeros((n, g_n))
    onehot[np.arange(n), codes] = 1.0
    rank_sums = onehot.T @ ranks  # (G, K): Mann-Whitney U from the rank sums of each group
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = (rank_sums - (n1 * (n1 + 1) / 2)[:, None]) / (n1 * n0)[:, None]
    attr: dict[str, Any] = {"attribute": grouping.attribute, "groups": labels, "n": n1}
    for j, feature in enumerate(features):
        a = auc[:, j]
        low, high = _auroc_interval(a, n1, n0, level)
        a, low, high = _strength(a, low, high)
        rows.add(
            **base,
            **attr,
            feature=feature,
            metric="proxy_auroc",
            value=np.where(ok, a, np.nan),
            ci_low=np.where(ok, low, np.nan),
            ci_high=np.where(ok, high, np.nan),
            reason=small,
        )
    # all features at once: out-of-fold probabilities of a small boosted classifier, one versus rest, on at
    # most PROXY_MAX_ROWS people of the sample (the fit's cost is bounded; its precision hardly changes)
    rows_used = np.arange(n)
    if n > PROXY_MAX_ROWS:
        rows_used = np.sort(np.random.default_rng(seed).choice(n, PROXY_MAX_ROWS, replace=False))
    codes_f = codes[rows_used]
    n1_f = np.bincount(codes_f, minlength=g_n).astype(np.float64)
    n0_f = codes_f.size - n1_f
    fit_groups = np.flatnonzero(n1_f >= PROXY_FOLDS)
    all_reason = small.copy()
    auc_all = np.full(g_n, np.nan)
    if fit_groups.size >= 2:
        keep = rows_used[np.isin(codes_f, fit_groups)]
        classifier = HistGradientBoostingClassifier(
            max_iter=60, learning_rate=0.15, max_leaf_nodes=15, early_stopping=False, random_state=seed
        )
        cv = StratifiedKFold(n_splits=PROXY_FOLDS, shuffle=True, random_state=seed)
        from threadpoolctl import threadpool_limits

        # small fits: one thread is as fast, and does not spin against other work on a shared machine
        with threadpool_limits(limits=1, user_api="openmp"):
            proba = cross_val_predict(classifier, x[keep], codes[keep], cv=cv, method="predict_proba")
        for col, g in enumerate(fit_groups):
            if all_reason[g] == "":
                auc_all[g] = roc_auc_score(codes[keep] == g, proba[:, col])
    else:
        all_reason = np.where(all_reason == "", "fewer than two groups are large enough to learn", all_reason)
    all_reason = np.where(
        (all_reason == "") & ~np.isin(np.arange(g_n), fit_groups), "group too small to learn", all_reason
    )
    low, high = _auroc_interval(auc_all, n1_f, n0_f, level)
    ok_all = all_reason == ""
    rows.add(
        **base,
        **{**attr, "n": n1_f},
        metric="proxy_auroc_all_features",
        value=np.where(ok_all, auc_all, np.nan),
        ci_low=np.where(ok_all, low, np.nan),
        ci_high=np.where(ok_all, high, np.nan),
        reason=all_reason,
    )


def feature_ranks(x: np.ndarray) -> np.ndarray:
    """Average ranks per column (ties share their mean rank); missing values rank lowest."""
    from scipy.stats import rankdata

    return np.asarray(rankdata(np.where(np.isnan(x), -np.inf, x), axis=0), dtype=np.float64)
