"""Bias across groups at an operating point (``analysis = fairness``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from phm_audit.audit._bootstrap import grouped_table, percentile_interval
from phm_audit.audit._cells import Cube
from phm_audit.audit._groups import Grouping
from phm_audit.audit._result import RowBuilder
from phm_audit.audit._stats import safe_div

__all__ = ["RATE_METRICS", "fairness_rows"]

#: Rates compared with the reference group as a difference (0 = parity) and a ratio (1 = parity).
RATE_METRICS = ("selection_rate", "tpr", "fnr", "fpr", "ppv")


def _small_reason(sizes: np.ndarray, min_size: int) -> np.ndarray:
    return np.where(sizes < min_size, f"group has fewer than {min_size} people", "")


def _emit(
    rows: RowBuilder,
    base: dict[str, Any],
    labels: tuple[str, ...],
    metric: str,
    reps: np.ndarray,
    den: np.ndarray,
    *,
    small: np.ndarray,
    why_zero: str,
    level: float,
) -> None:
    """Add one metric per group: value from replicate 0, interval from the rest."""
    value = reps[0].copy()
    low, high = percentile_interval(reps[1:], level=level)
    reason = np.where(small != "", small, np.where(den == 0, why_zero, ""))
    undefined = reason != ""
    value[undefined], low[undefined], high[undefined] = np.nan, np.nan, np.nan
    rows.add(groups=labels, metric=metric, value=value, ci_low=low, ci_high=high, n=den, reason=reason, **base)


def fairness_rows(
    rows: RowBuilder,
    *,
    model: str,
    grouping: Grouping,
    cube: Cube,
    stratum_labels: list[str],
    operating_point: str,
    target: str,
    high_need_reason: str,
    min_group_size: int,
    n_boot: int,
    level: float,
    rng: np.random.Generator,
) -> None:
    """Per-group selection, shares, error rates and their disparities at one operating point.

    ``cube`` holds the cells (stratum, flagged, high need, band of need). High need is the same
    number of people as are flagged, those with the highest ``target``; tpr, fnr, fpr and ppv are
    measured against it. Intervals come from the count bootstrap.
    """
    g_n = grouping.n_groups
    labels = grouping.labels
    ref = grouping.reference
    by_cell = cube.dense(grouping.by_stratum(), g_n)[0]  # (G, flagged, high need, band)
    c = grouped_table(grouping.canonical, by_cell.sum(axis=3), n_boot=n_boot, rng=rng)[0]  # (R, G, flagged, high)
    n = c.sum(axis=(2, 3))
    flag_g = c[:, :, 1, :].sum(axis=2)
    high_g = c[:, :, :, 1].sum(axis=2)
    tp, fp, fn = c[:, :, 1, 1], c[:, :, 1, 0], c[:, :, 0, 1]
    total = n.sum(axis=1, keepdims=True)
    metrics = {
        "selection_rate": (safe_div(flag_g, n), n[0], "group is empty"),
        "population_share": (safe_div(n, total), np.broadcast_to(total[0], n[0].shape), "population is empty"),
        "flagged_share": (
            safe_div(flag_g, flag_g.sum(axis=1, keepdims=True)),
            np.broadcast_to(flag_g[0].sum(), n[0].shape),
            "nobody is flagged",
        ),
        "high_need_share": (
            safe_div(high_g, high_g.sum(axis=1, keepdims=True)),
            np.broadcast_to(high_g[0].sum(), n[0].shape),
            "nobody has high need",
        ),
        "tpr": (safe_div(tp, high_g), high_g[0], "no high-need members in the group"),
        "fnr": (safe_div(fn, high_g), high_g[0], "no high-need members in the group"),
        "fpr": (safe_div(fp, n - high_g), n[0] - high_g[0], "every member of the group has high need"),
        "ppv": (safe_div(tp, flag_g), flag_g[0], "nobody in the group is flagged"),
    }
    base: dict[str, Any] = {
        "model": model,
        "analysis": "fairness",
        "attribute": grouping.attribute,
        "operating_point": operating_point,
        "target": target,
    }
    small = _small_reason(n[0], min_group_size)
    rows.add(groups=labels, metric="n", value=n[0], n=n[0], **base)
    against_need = ("high_need_share", "tpr", "fnr", "fpr", "ppv")
    need_small = np.where(small != "", small, high_need_reason) if high_need_reason else small
    for name, (reps, den, why) in metrics.items():
        _emit(
            rows,
            base,
            labels,
            name,
            reps,
            den,
            small=need_small if name in against_need else small,
            why_zero=why,
            level=level,
        )
    share_ratio = safe_div(metrics["flagged_share"][0], metrics["high_need_share"][0])
    _emit(
        rows,
        base,
        labels,
        "flagged_to_high_need_ratio",
        share_ratio,
        high_g[0],
        small=need_small,
        why_zero="no high-need members in the group",
        level=level,
    )
    ref_small = small[ref] != ""
    for name in RATE_METRICS:
        reps, den, why = metrics[name]
        ref_reps = reps[:, ref : ref + 1]
        ref_reason = "reference group is too small" if ref_small else ""
        if name in against_need and high_need_reason:
            ref_reason = high_need_reason
        if not ref_small and den[ref] == 0:
            ref_reason = f"undefined for the reference group: {why}"
        small_ref = np.where(small != "", small, ref_reason)
        diff = reps - ref_reps
        _emit(rows, base, labels, f"{name}_difference", diff, den, small=small_ref, why_zero=why, level=level)
        ratio = safe_div(reps, ref_reps)
        zero_ref = (ref_reps[0, 0] == 0) if np.isfinite(ref_reps[0, 0]) else False
        small_ratio = np.where(small_ref != "", small_ref, "reference group's value is 0" if zero_ref else "")
        _emit(rows, base, labels, f"{name}_ratio", ratio, den, small=small_ratio, why_zero=why, level=level)

    # Equally sick, equally flagged: selection within bands of need, and standardised to the group's
    # own need profile (sum over bands of n_g,s * rate_g,s over sum of n_g,s * rate_ref,s).
    by_band = by_cell.sum(axis=2).transpose(0, 2, 1)  # (G, band, flagged)
    st = grouped_table(grouping.canonical, by_band, n_boot=n_boot, rng=rng)[0]
    size_s = st.sum(axis=3)
    rate_s = safe_div(st[:, :, :, 1], size_s)
    for s, band in enumerate(stratum_labels):
        _emit(
            rows,
            base,
            labels,
            f"selection_rate_need_{band}",
            rate_s[:, :, s],
            size_s[0, :, s],
            small=small,
            why_zero="nobody in the group is in this band of need",
            level=level,
        )
    ref_rate = rate_s[:, ref : ref + 1, :]
    usable = (size_s > 0) & (size_s[:, ref : ref + 1, :] > 0)
    num = np.where(usable, st[:, :, :, 1], 0.0).sum(axis=2)
    den = np.where(usable, size_s * np.nan_to_num(ref_rate), 0.0).sum(axis=2)
    _emit(
        rows,
        base,
        labels,
        "selection_ratio_at_equal_need",
        safe_div(num, den),
        n[0],
        small=np.where(small != "", small, "reference group is too small" if ref_small else ""),
        why_zero="no band of need is shared with the reference group",
        level=level,
    )
