"""Actuarial versus clinical calibration (``analysis = calibration``).

The same score is held against a cost target and against need targets, per group. Within bins of
the score, a group is compared with the reference group and the bins are combined by direct
standardisation: the group's own count in each bin weights both means,

    ratio_g = sum_b n_gb * mean_gb / sum_b n_gb * mean_ref,b,

over the bins where neither group is empty (the others are left out and counted). The label gap is
the need ratio over the cost ratio: where access is equal, both ratios move together and the gap
stays at 1; where a group receives less care at the same need, a cost-trained score under-rates it
and the gap rises above 1.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from phm_audit.audit._bootstrap import cell_table, grouped_table, percentile_interval
from phm_audit.audit._cells import Cube
from phm_audit.audit._groups import Grouping
from phm_audit.audit._result import CURVE_COLUMNS, RowBuilder
from phm_audit.audit._stats import rank_bins, safe_div

__all__ = ["calibration_rows", "weak_calibration_rows"]

MIN_EVENTS_FOR_CURVE = 200


def calibration_rows(
    rows: RowBuilder,
    curves: list[pd.DataFrame],
    *,
    model: str,
    grouping: Grouping,
    score_bins: Mapping[int, tuple[Cube, np.ndarray, np.ndarray]],
    names: Sequence[str],
    n_score_bins: int,
    min_group_size: int,
    n_boot: int,
    level: float,
    rng: np.random.Generator,
) -> None:
    """Mean cost and need by score bin per group, and the ratios at equal score with intervals.

    ``score_bins`` maps a number of bins to the cells (stratum, score bin) with the sums of the
    targets ``names`` (the cost first, then the needs), and each bin's lowest and highest score
    (:meth:`phm_audit.audit._analyses.Context.score_bins`, computed once per model).
    """
    g_n, ref, labels = grouping.n_groups, grouping.reference, grouping.labels
    names = list(names)
    sizes = grouping.sizes
    small = np.where(sizes < min_group_size, f"group has fewer than {min_group_size} people", "")
    base: dict[str, Any] = {"model": model, "analysis": "calibration", "attribute": grouping.attribute}

    def table(count: int) -> tuple[np.ndarray, np.ndarray]:
        cube = score_bins[count][0]
        counts, sums, cross = cube.dense(grouping.by_stratum(), g_n)
        return grouped_table(grouping.canonical, counts, sums, cross, n_boot=n_boot, rng=rng)

    _, low, high = score_bins[n_score_bins]
    n_bins = low.size
    n, s = table(n_score_bins)
    usable = (n > 0) & (n[:, ref : ref + 1, :] > 0)
    ref_mean = safe_div(s[:, ref : ref + 1, :, :], n[:, ref : ref + 1, :, None])
    num = np.where(usable[..., None], s, 0.0).sum(axis=2)
    den = np.where(usable[..., None], n[..., None] * np.nan_to_num(ref_mean), 0.0).sum(axis=2)
    ratio = safe_div(num, den)  # (R, G, K)
    left_out = ((n[0] > 0) & ~usable[0]).sum(axis=1) + 0
    empty_bins = (n[0] == 0).sum(axis=1)
    people_out = np.where(~usable[0], n[0], 0).sum(axis=1)
    ref_reason = np.where(np.arange(g_n) == ref, "", small[ref] and "reference group is too small")

    def emit(metric: str, reps: np.ndarray, target: str, why: str) -> None:
        value = reps[0].copy()
        lo, hi = percentile_interval(reps[1:], level=level)
        reason = np.where(
            small != "", small, np.where(ref_reason != "", ref_reason, np.where(np.isfinite(value), "", why))
        )
        bad = reason != ""
        value[bad], lo[bad], hi[bad] = np.nan, np.nan, np.nan
        rows.add(
            groups=labels,
            metric=metric,
            value=value,
            ci_low=lo,
            ci_high=hi,
            n=sizes,
            reason=reason,
            target=target,
            operating_point=f"score_bins_{n_bins}",
            **base,
        )

    no_overlap = "no score bin holds both the group and the reference group, or the reference mean is 0"
    emit("cost_ratio_at_equal_score", ratio[:, :, 0], names[0], no_overlap)
    for j, need_name in enumerate(names[1:], start=1):
        emit("need_ratio_at_equal_score", ratio[:, :, j], need_name, no_overlap)
        emit("label_gap_at_equal_score", safe_div(ratio[:, :, j], ratio[:, :, 0]), need_name, no_overlap)
    rows.add(
        groups=labels,
        metric="bins_left_out",
        value=left_out + empty_bins,
        n=sizes,
        operating_point=f"score_bins_{n_bins}",
        target="",
        **base,
    )
    rows.add(
        groups=labels,
        metric="people_left_out",
        value=people_out,
        n=sizes,
        operating_point=f"score_bins_{n_bins}",
        target="",
        **base,
    )

    # Curves: mean of each target by score decile and percentile, per group (Obermeyer et al., Figure 1).
    for kind, count in (("decile", 10), ("percentile", 100)):
        if count == n_score_bins:
            clow, chigh, cn, cs = low, high, n, s
        else:
            _, clow, chigh = score_bins[count]
            cn, cs = table(count)
        means = safe_div(cs, cn[..., None])
        lo, hi = percentile_interval(means[1:], level=level)
        nb = clow.size
        for j, name in enumerate(names):
            curves.append(
                pd.DataFrame(
                    {
                        "model": model,
                        "attribute": grouping.attribute,
                        "group": np.repeat(np.asarray(labels, dtype=object), nb),
                        "target": name,
                        "bins": kind,
                        "bin": np.tile(np.arange(nb), g_n),
                        "score_low": np.tile(clow, g_n),
                        "score_high": np.tile(chigh, g_n),
                        "mean": means[0, :, :, j].ravel(),
                        "ci_low": lo[:, :, j].ravel(),
                        "ci_high": hi[:, :, j].ravel(),
                        "n": cn[0].ravel(),
                    }
                )[list(CURVE_COLUMNS)]
            )


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-10, 1 - 1e-10)
    return np.log(p / (1 - p))


def _logistic_fit(
    x: np.ndarray, y: np.ndarray, offset: np.ndarray | None = None, slope: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Maximum-likelihood logistic regression of ``y`` on ``[1, x]`` (or ``[1]`` with an offset), by Newton steps.

    Returns the coefficients and their standard errors.
    """
    design = np.column_stack([np.ones_like(x), x]) if slope else np.ones((x.size, 1))
    off = np.zeros_like(x) if offset is None else offset
    beta = np.zeros(design.shape[1])
    info = np.eye(design.shape[1])
    for _ in range(50):
        eta = np.clip(design @ beta + off, -30, 30)
        mu = 1 / (1 + np.exp(-eta))
        w = mu * (1 - mu)
        grad = design.T @ (y - mu)
        info = design.T @ (design * w[:, None])
        try:
            step = np.linalg.solve(info, grad)
        except np.linalg.LinAlgError:
            return np.full(design.shape[1], np.nan), np.full(design.shape[1], np.nan)
        beta = beta + step
        if np.max(np.abs(step)) < 1e-10:
            break
    try:
        se = np.sqrt(np.diag(np.linalg.inv(info)))
    except np.linalg.LinAlgError:
        se = np.full(design.shape[1], np.nan)
    return beta, se


def _ols_fit(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least squares of ``y`` on ``[1, x]`` with heteroscedasticity-robust (HC0) standard errors."""
    design = np.column_stack([np.ones_like(x), x])
    xtx = design.T @ design
    try:
        inv = np.linalg.inv(xtx)
    except np.linalg.LinAlgError:
        return np.full(2, np.nan), np.full(2, np.nan)
    beta = inv @ (design.T @ y)
    resid = y - design @ beta
    meat = design.T @ (design * (resid**2)[:, None])
    return beta, np.sqrt(np.diag(inv @ meat @ inv))


def _smoothed_errors(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    """|p - smoothed observed(p)| per person: a running mean of y over people sorted by p.

    A flexible calibration curve in the spirit of Austin & Steyerberg (2019), with a moving window of
    max(100, n / 20) people in place of loess.
    """
    order = np.argsort(p, kind="stable")
    ps, ys = p[order], y[order]
    window = int(max(100, ps.size // 20))
    window = min(window, ps.size)
    csum = np.concatenate([[0.0], np.cumsum(ys)])
    half = window // 2
    idx = np.arange(ps.size)
    lo = np.clip(idx - half, 0, ps.size - window)
    smooth = (csum[lo + window] - csum[lo]) / window
    return np.abs(ps - smooth)


def weak_calibration_rows(
    rows: RowBuilder,
    curves: list[pd.DataFrame],
    *,
    model: str,
    grouping: Grouping,
    scores: np.ndarray,
    target: str,
    observed: np.ndarray,
    min_group_size: int,
    n_boot: int,
    level: float,
    rng: np.random.Generator,
) -> str | None:
    """Calibration of a score that predicts ``target`` on its own scale, per group.

    Binary targets: calibration-in-the-large, intercept (slope fixed at 1) and slope of a logistic
    recalibration on logit p, ICI/E50/E90/Emax. Continuous targets: the same from least squares of
    observed on predicted. Returns a note when the analysis does not apply.
    """
    y = np.asarray(observed, dtype=np.float64)
    p = np.asarray(scores, dtype=np.float64)
    binary = bool(np.isin(np.unique(y), [0.0, 1.0]).all())
    if binary and (p.min() < 0 or p.max() > 1):
        return (
            f"{model}: scores are not probabilities (outside [0, 1]), so weak calibration against {target} is skipped"
        )
    labels, sizes = grouping.labels, grouping.sizes
    base: dict[str, Any] = {
        "model": model,
        "analysis": "calibration",
        "attribute": grouping.attribute,
        "target": target,
        "operating_point": "all",
    }
    # calibration-in-the-large with intervals, from the count bootstrap over groups
    ct = cell_table(grouping.codes, grouping.n_groups, np.column_stack([y, p]), n_boot=n_boot, rng=rng)
    mean_y = safe_div(ct.sums[..., 0], ct.counts)
    mean_p = safe_div(ct.sums[..., 1], ct.counts)
    small = np.where(sizes < min_group_size, f"group has fewer than {min_group_size} people", "")
    for metric, reps in (
        ("calibration_in_the_large", mean_y - mean_p),
        ("observed_expected_ratio", safe_div(mean_y, mean_p)),
    ):
        value = reps[0].copy()
        lo, hi = percentile_interval(reps[1:], level=level)
        value[small != ""], lo[small != ""], hi[small != ""] = np.nan, np.nan, np.nan
        rows.add(groups=labels, metric=metric, value=value, ci_low=lo, ci_high=hi, n=sizes, reason=small, **base)

    z = NormalDist().inv_cdf(1 - (1 - level) / 2)
    order = np.argsort(grouping.codes, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    for g, label in enumerate(labels):
        members = order[bounds[g] : bounds[g + 1]]
        pg, yg = p[members], y[members]
        reason = small[g]
        events = int(yg.sum()) if binary else -1
        if not reason and binary and (events == 0 or events == yg.size):
            reason = "the group has no events" if events == 0 else "every member of the group has the event"
        if reason:
            for metric in ("calibration_slope", "calibration_intercept", "ici", "e50", "e90", "emax"):
                rows.add(groups=[label], metric=metric, value=np.nan, n=yg.size, reason=reason, **base)
            continue
        if binary:
            lp = _logit(pg)
            (_, b), (_, se_b) = _logistic_fit(lp, yg)
            (a1,), (se_a1,) = _logistic_fit(lp, yg, offset=lp, slope=False)
        else:
            (_, b), (_, se_b) = _ols_fit(pg, yg)
            a1 = float(np.mean(yg - pg))
            se_a1 = float(np.std(yg - pg, ddof=1) / math.sqrt(yg.size))
        rows.add(
            groups=[label],
            metric="calibration_slope",
            value=b,
            ci_low=b - z * se_b,
            ci_high=b + z * se_b,
            n=yg.size,
            **base,
        )
        rows.add(
            groups=[label],
            metric="calibration_intercept",
            value=a1,
            ci_low=a1 - z * se_a1,
            ci_high=a1 + z * se_a1,
            n=yg.size,
            **base,
        )
        curve_reason = ""
        if binary and min(events, yg.size - events) < MIN_EVENTS_FOR_CURVE:
            curve_reason = (
                f"a flexible calibration curve needs about {MIN_EVENTS_FOR_CURVE} events and "
                f"{MIN_EVENTS_FOR_CURVE} non-events; the group has {events} and {yg.size - events}"
            )
        errors = _smoothed_errors(pg, yg) if not curve_reason else np.array([np.nan])
        for metric, val in (
            ("ici", np.mean(errors)),
            ("e50", np.quantile(errors, 0.5)),
            ("e90", np.quantile(errors, 0.9)),
            ("emax", np.max(errors)),
        ):
            # where the value is defined, the reason says why it has no interval
            rows.add(
                groups=[label],
                metric=metric,
                value=val,
                n=yg.size,
                reason=curve_reason or "no interval is computed for this statistic",
                **base,
            )

    # Reliability table: fixed-width probability bins (binary) or population deciles of the prediction;
    # empty bins are kept with their count of 0.
    if binary:
        edges = np.linspace(0, 1, 11)
        rb = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, 9)
        blow, bhigh = edges[:-1], edges[1:]
    else:
        rb, blow, bhigh = rank_bins(p, 10)
    nb = blow.size
    cells = grouping.codes * nb + rb
    rt = cell_table(cells, grouping.n_groups * nb, np.column_stack([y, p]), n_boot=n_boot, rng=rng)
    cn = rt.counts.reshape(-1, grouping.n_groups, nb)
    means = safe_div(rt.sums.reshape(-1, grouping.n_groups, nb, 2), cn[..., None])
    lo, hi = percentile_interval(means[1:], level=level)
    for j, name in enumerate((target, f"predicted {target}")):
        curves.append(
            pd.DataFrame(
                {
                    "model": model,
                    "attribute": grouping.attribute,
                    "group": np.repeat(np.asarray(labels, dtype=object), nb),
                    "target": name,
                    "bins": "reliability",
                    "bin": np.tile(np.arange(nb), grouping.n_groups),
                    "score_low": np.tile(blow, grouping.n_groups),
                    "score_high": np.tile(bhigh, grouping.n_groups),
                    "mean": means[0, :, :, j].ravel(),
                    "ci_low": lo[:, :, j].ravel(),
                    "ci_high": hi[:, :, j].ravel(),
                    "n": cn[0].ravel(),
                }
            )[list(CURVE_COLUMNS)]
        )
    return None
