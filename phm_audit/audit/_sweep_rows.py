"""The threshold sweep with bootstrap intervals, as rows of the tidy table (``analysis = thresholds``).

Each person gets two bucket numbers: the first capacity at which their score is flagged and the
first capacity at which their need counts as high (the k highest need, k the same capacity). With
one sort by score and one by need, every metric at every capacity is a cumulative sum over these
buckets per group, so the cost is one sort plus O(people + groups x capacities^2) counting, and the
bootstrap resamples the bucket counts (multinomially, group by group), not people.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from phm_audit.audit._bootstrap import percentile_interval
from phm_audit.audit._groups import Grouping
from phm_audit.audit._operating_points import capacity_for_share
from phm_audit.audit._result import RowBuilder
from phm_audit.audit._stats import safe_div

__all__ = ["DEFAULT_FRACTIONS", "fraction_name", "sweep_rows"]

#: Capacities of the default sweep: 100 points from 0.5% to 50% of the population.
DEFAULT_FRACTIONS = tuple(float(x) for x in np.round(np.linspace(0.005, 0.5, 100), 6))


def fraction_name(fraction: float) -> str:
    """Operating-point name of a capacity share: 0.03 -> ``top_3pct``, 0.005 -> ``top_0.5pct``."""
    return f"top_{round(100 * fraction, 4):g}pct"


def buckets_from_order(order: np.ndarray, ks: np.ndarray) -> np.ndarray:
    """Each person's first capacity index at which they are in the top k (``order``: highest first)."""
    rank = np.empty(order.size, dtype=np.int64)
    rank[order] = np.arange(order.size)
    return np.searchsorted(ks, rank, side="right")  # in the top k_j iff bucket <= j


def capacities(n: int, fractions: Sequence[float] | None) -> tuple[np.ndarray, np.ndarray]:
    """The sweep's shares of the population and their capacities k = ceil(share * n)."""
    fr = np.asarray(DEFAULT_FRACTIONS if fractions is None else fractions, dtype=np.float64)
    ks = np.array([capacity_for_share(f, n) for f in fr], dtype=np.int64)  # the same k as flag() uses
    return fr, np.clip(ks, 1, n)


def sweep_rows(
    rows: RowBuilder,
    *,
    model: str,
    grouping: Grouping,
    score_buckets: np.ndarray,
    need_buckets: np.ndarray,
    need: np.ndarray,
    fractions: np.ndarray,
    target: str,
    min_group_size: int,
    n_boot: int,
    level: float,
    rng: np.random.Generator,
) -> None:
    """Per group and capacity: selection_rate, flagged_share, high_need_share, need_captured,
    unmet_need_rate, tpr, fpr, ppv, with intervals.

    ``score_buckets`` and ``need_buckets`` come from :func:`buckets_from_order` (one sort each per
    audit). A person is flagged at capacity j when their score bucket is at most j, has high need when
    their need bucket is at most j, and is a true positive when the larger of the two is at most j,
    so three histograms per group give every metric at every capacity by cumulative sums.
    Intervals use the Poisson bootstrap of the non-empty (group, score bucket, need bucket) cells.
    """
    t = fractions.size
    side = t + 1
    g_n = grouping.n_groups
    cells = (grouping.codes * side + score_buckets) * side + need_buckets
    uniq, inverse, counts = np.unique(cells, return_inverse=True, return_counts=True)
    need_sums = np.bincount(inverse, weights=need, minlength=uniq.size)
    c_group, rest = np.divmod(uniq, side * side)
    c_score, c_need = np.divmod(rest, side)
    c_both = np.maximum(c_score, c_need)
    reps = np.empty((1 + n_boot, uniq.size))
    reps[0] = counts
    if n_boot:
        reps[1:] = rng.poisson(counts.astype(np.float64), size=(n_boot, uniq.size))
    mean_need = need_sums / counts
    need_reps = reps * mean_need  # a cell's need scales with its resampled count

    def hist(index: np.ndarray, weights: np.ndarray) -> np.ndarray:
        # (R, G, t): cumulative over buckets 0..t-1 of the weights per group
        flat = c_group * side + index
        out = np.zeros((weights.shape[0], g_n * side))
        for r in range(weights.shape[0]):  # a loop over replicates, each a bincount over cells
            out[r] = np.bincount(flat, weights=weights[r], minlength=g_n * side)
        return np.cumsum(out.reshape(-1, g_n, side), axis=2)[:, :, :t]

    by_score = hist(c_score, reps)
    by_need = hist(c_need, reps)
    tp = hist(c_both, reps)
    need_cum = hist(c_score, need_reps)
    group_total = np.zeros((reps.shape[0], g_n))
    need_total = np.zeros((reps.shape[0], g_n))
    for r in range(reps.shape[0]):  # a loop over replicates
        group_total[r] = np.bincount(c_group, weights=reps[r], minlength=g_n)
        need_total[r] = np.bincount(c_group, weights=need_reps[r], minlength=g_n)
    sizes = group_total[0]
    group_total = group_total[:, :, None]
    need_total = need_total[:, :, None]
    metrics = {
        "selection_rate": (safe_div(by_score, group_total), group_total[0, :, 0], "group is empty"),
        "flagged_share": (
            safe_div(by_score, by_score.sum(axis=1, keepdims=True)),
            by_score[0].sum(axis=0),
            "nobody is flagged",
        ),
        "high_need_share": (
            safe_div(by_need, by_need.sum(axis=1, keepdims=True)),
            by_need[0].sum(axis=0),
            "nobody has high need",
        ),
        "need_captured": (safe_div(need_cum, need_total), group_total[0, :, 0], "the group has no need"),
        "unmet_need_rate": (safe_div(by_need - tp, by_need), by_need[0], "no high-need members in the group"),
        "tpr": (safe_div(tp, by_need), by_need[0], "no high-need members in the group"),
        "fpr": (
            safe_div(by_score - tp, group_total - by_need),
            group_total[0] - by_need[0],
            "every member of the group has high need",
        ),
        "ppv": (safe_div(tp, by_score), by_score[0], "nobody in the group is flagged"),
    }
    small = sizes < min_group_size
    names = [fraction_name(f) for f in fractions]
    base: dict[str, Any] = {"model": model, "analysis": "thresholds", "attribute": grouping.attribute, "target": target}
    for metric, (values, den, why) in metrics.items():
        lo, hi = percentile_interval(values[1:], level=level)
        value = values[0].copy()
        den = np.asarray(den, dtype=np.float64)
        if den.ndim == 2:
            den_full = den
        elif den.shape[0] == t and metric in ("flagged_share", "high_need_share"):  # per capacity
            den_full = np.broadcast_to(den[None, :], (g_n, t))
        else:  # per group
            den_full = np.broadcast_to(den[:, None], (g_n, t))
        reason = np.where(
            small[:, None], f"group has fewer than {min_group_size} people", np.where(np.isfinite(value), "", why)
        )
        undefined = reason != ""
        value[undefined], lo[undefined], hi[undefined] = np.nan, np.nan, np.nan
        for j, name in enumerate(names):  # a loop over capacities, each vectorised over groups
            rows.add(
                groups=grouping.labels,
                metric=metric,
                value=value[:, j],
                ci_low=lo[:, j],
                ci_high=hi[:, j],
                n=den_full[:, j],
                reason=reason[:, j],
                operating_point=name,
                **base,
            )
