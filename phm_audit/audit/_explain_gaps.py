"""The score gap at equal need split by feature, and the attributions per group and overall.

Definitions (direct standardisation to the group's own need profile, within bands of need) are in
:mod:`phm_audit.audit._explain`. Intervals come from the count bootstrap of
:mod:`phm_audit.audit._bootstrap` over the explained sample.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from phm_audit._checks import check_columns
from phm_audit.audit._bootstrap import cell_table, percentile_interval
from phm_audit.audit._explainers import ExplainerOutput
from phm_audit.audit._groups import Grouping
from phm_audit.audit._result import RowBuilder
from phm_audit.audit._spec import AuditSpec
from phm_audit.audit._stats import safe_div

__all__ = ["REMAINDER", "global_rows", "group_rows", "need_target_for", "with_remainder"]

#: Pseudo-feature carrying what an explainer leaves unattributed, so the parts add up to the gap.
REMAINDER = "(interaction/remainder)"


def need_target_for(cohort: pd.DataFrame, spec: AuditSpec, need_target: str | None, notes: list[str]) -> str | None:
    """The column whose percentile bands define equal need, or None (with a note) where the cohort has none."""
    if need_target is not None:
        check_columns(cohort, [need_target], "need_target")
        return need_target
    if spec.high_need_target is not None and spec.high_need_target in cohort.columns:
        return spec.high_need_target
    if "need_true_next" in cohort.columns:
        return "need_true_next"
    present = [t for t in spec.need_targets if t in cohort.columns]
    if present:
        return present[0]
    notes.append(
        "no need target is in the cohort ("
        + ", ".join(f"'{t}'" for t in spec.need_targets)
        + "), so the score gap at equal need is not decomposed"
    )
    return None


def with_remainder(att: ExplainerOutput, score: np.ndarray) -> tuple[list[str], np.ndarray]:
    """The features and attributions to split the gap by, with :data:`REMAINDER` where the explainer leaves some."""
    names = list(att.names)
    phi = att.values
    residual = score - att.base - phi.sum(axis=1)
    # an approximate explainer's residual is carried as a part of its own, so the parts add up to the gap
    if not att.exact or np.max(np.abs(residual)) > 1e-9 * max(1.0, float(np.max(np.abs(score)))):
        names.append(REMAINDER)
        phi = np.column_stack([phi, residual])
    return names, phi


def _interval(reps: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    if reps.shape[0] < 2:
        nan = np.full(reps.shape[1:], np.nan)
        return nan, nan.copy()
    return percentile_interval(reps[1:], level=level)


def global_rows(
    rows: RowBuilder,
    base: dict[str, Any],
    att: ExplainerOutput,
    score: np.ndarray,
    names: list[str],
    phi: np.ndarray,
    *,
    n_boot: int,
    level: float,
    rng: np.random.Generator,
) -> None:
    """Rows of the whole sample: sizes, base value, mean score, additivity, and each feature's SHAP summaries."""
    n = score.size
    values = np.column_stack([phi, np.abs(phi)])
    table = cell_table(np.zeros(n, dtype=np.int64), 1, values, n_boot=n_boot, rng=rng)
    k = phi.shape[1]
    means = table.sums[:, 0, :] / table.counts[:, 0:1]  # (R, 2K)
    mean_phi, mean_abs = means[:, :k], means[:, k:]
    share = safe_div(mean_abs, mean_abs.sum(axis=1, keepdims=True))
    add: dict[str, Any] = {"attribute": "all", "groups": ["all"], "n": n}
    rows.add(**base, **add, metric="sample_size", value=n)
    if att.background_size is None:
        rows.add(
            **base,
            **add,
            metric="background_size",
            value=math.nan,
            reason="no background: the tree explainer uses the trees' own training cover",
        )
    else:
        rows.add(**base, **add, metric="background_size", value=att.background_size)
    rows.add(**base, **add, metric="base_value", value=att.base)
    rows.add(**base, **add, metric="mean_score", value=float(score.mean()))
    rows.add(**base, **add, metric="additivity_max_error", value=att.error)
    for j, feature in enumerate(names):
        for metric, reps in (("mean_abs_shap", mean_abs), ("mean_shap", mean_phi), ("share_of_score", share)):
            low, high = _interval(reps[:, j : j + 1], level)
            rows.add(**base, **add, feature=feature, metric=metric, value=reps[0, j], ci_low=low[0], ci_high=high[0])


def group_rows(
    rows: RowBuilder,
    base: dict[str, Any],
    grouping: Grouping,
    codes: np.ndarray,
    strata: np.ndarray | None,
    n_strata: int,
    score: np.ndarray,
    names: list[str],
    phi: np.ndarray,
    *,
    need_target: str,
    min_group_size: int,
    n_boot: int,
    level: float,
    rng: np.random.Generator,
) -> None:
    """Per group, mean SHAP and mean |SHAP| per feature; with bands of need, the gap at equal need by feature."""
    g_n, ref, labels = grouping.n_groups, grouping.reference, grouping.labels
    k = phi.shape[1]
    s = np.zeros(codes.size, dtype=np.int64) if strata is None else strata
    n_s = 1 if strata is None else n_strata
    values = np.column_stack([score, phi, np.abs(phi)])
    table = cell_table(codes * n_s + s, g_n * n_s, values, n_boot=n_boot, rng=rng)
    counts = table.counts.reshape(-1, g_n, n_s)  # (R, G, S)
    sums = table.sums.reshape(-1, g_n, n_s, 1 + 2 * k)
    n_g = counts.sum(axis=2)  # (R, G)
    sums_g = sums.sum(axis=2)  # (R, G, 1 + 2K)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_g = np.where(n_g[..., None] > 0, sums_g / n_g[..., None], np.nan)
    size = n_g[0]
    small = np.where(size < min_group_size, f"group has fewer than {min_group_size} people in the explained sample", "")
    attr: dict[str, Any] = {"attribute": grouping.attribute, "groups": labels, "n": size}
    for j, feature in enumerate(names):
        for metric, col in (("mean_shap", 1 + j), ("mean_abs_shap", 1 + k + j)):
            reps = mean_g[:, :, col]
            low, high = _interval(reps, level)
            value = np.where(small == "", reps[0], np.nan)
            low, high = np.where(small == "", low, np.nan), np.where(small == "", high, np.nan)
            rows.add(
                **base, **attr, feature=feature, metric=metric, value=value, ci_low=low, ci_high=high, reason=small
            )
    if strata is None:
        return
    # direct standardisation to the group's own need profile, over strata shared with the reference
    usable = (counts > 0) & (counts[:, ref : ref + 1, :] > 0)  # (R, G, S)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(counts[..., None] > 0, sums[..., : 1 + k] / counts[..., None], 0.0)  # (R, G, S, 1+K)
    diff = means - means[:, ref : ref + 1]
    weight = np.where(usable, counts, 0.0)
    total = weight.sum(axis=2)  # (R, G)
    gaps = np.einsum("rgs,rgsc->rgc", weight, diff)
    with np.errstate(invalid="ignore", divide="ignore"):
        gaps = np.where(total[..., None] > 0, gaps / total[..., None], np.nan)
    others = [g for g in range(g_n) if g != ref]
    ref_small = size[ref] < min_group_size
    reason = np.array(
        [
            small[g]
            or ("reference group is too small" if ref_small else "")
            or ("no band of need is shared with the reference group" if total[0, g] == 0 else "")
            for g in others
        ],
        dtype=object,
    )
    ok = reason == ""
    gap_base: dict[str, Any] = {**base, "target": need_target}
    gap_attr: dict[str, Any] = {
        "attribute": grouping.attribute,
        "groups": [labels[g] for g in others],
        "n": total[0, others],
    }
    excluded = (counts[0, others, :] > 0).sum(axis=1) - usable[0, others, :].sum(axis=1)
    rows.add(**gap_base, **gap_attr, metric="need_strata_excluded", value=excluded)
    for c, (metric, feature) in enumerate([("score_gap_at_equal_need", ""), *(("gap_contribution", f) for f in names)]):
        reps = gaps[:, others, c]
        low, high = _interval(reps, level)
        rows.add(
            **gap_base,
            **gap_attr,
            metric=metric,
            feature=feature,
            value=np.where(ok, reps[0], np.nan),
            ci_low=np.where(ok, low, np.nan),
            ci_high=np.where(ok, high, np.nan),
            reason=reason,
        )
