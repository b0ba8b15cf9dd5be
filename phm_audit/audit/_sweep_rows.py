"""The threshold sweep, the one kernel behind ``analysis = thresholds`` and :func:`threshold_sweep`.

Each person gets two bucket numbers: the first capacity at which their score is flagged and the
first capacity at which their need counts as high (the k highest need, k the same capacity). With
one sort by score and one by need, every metric at every capacity is a cumulative sum over these
buckets per group (:func:`sweep_counts`), so the cost is one sort plus O(people + groups x
capacities^2) counting, and the bootstrap resamples the bucket counts (Poisson, cell by cell), not
people. :meth:`SweepCounts.parts` defines each metric as a numerator over a denominator, once, for
the audit's rows (:func:`sweep_rows`) and for the tidy table of
:func:`phm_audit.audit._sweep.threshold_sweep`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from phm_audit.audit._bootstrap import percentile_interval
from phm_audit.audit._cells import Cube
from phm_audit.audit._groups import Grouping
from phm_audit.audit._operating_points import capacity_for_share
from phm_audit.audit._result import RowBuilder
from phm_audit.audit._stats import safe_div

__all__ = [
    "DEFAULT_FRACTIONS",
    "SWEEP_METRICS",
    "SweepCounts",
    "buckets_from_order",
    "capacities",
    "counts_from_cells",
    "fraction_name",
    "sweep_counts",
    "sweep_rows",
]

#: Capacities of the default sweep: 100 points from 0.5% to 50% of the population.
DEFAULT_FRACTIONS = tuple(float(x) for x in np.round(np.linspace(0.005, 0.5, 100), 6))

#: Metrics of the sweep, in the order of the output, with why each is undefined when its denominator is 0.
_UNDEFINED = {
    "selection_rate": "group is empty",
    "flagged_share": "nobody is flagged",
    "high_need_share": "nobody has high need",
    "need_captured": "the group has no need",
    "unmet_need_rate": "no high-need members in the group",
    "tpr": "no high-need members in the group",
    "fpr": "every member of the group has high need",
    "ppv": "nobody in the group is flagged",
}
SWEEP_METRICS: tuple[str, ...] = tuple(_UNDEFINED)


def fraction_name(fraction: float) -> str:
    """Operating-point name of a capacity share: 0.03 -> ``top_3pct``, 0.005 -> ``top_0.5pct``."""
    return f"top_{round(100 * fraction, 4):g}pct"


def buckets_from_order(order: np.ndarray, ks: np.ndarray) -> np.ndarray:
    """Each person's first capacity index at which they are in the top k (``order``: highest first).

    ``ks`` must be ascending; people in the top k at no capacity get ``len(ks)``.
    """
    rank = np.empty(order.size, dtype=np.int64)
    rank[order] = np.arange(order.size)
    return np.searchsorted(ks, rank, side="right")  # in the top k_j iff bucket <= j


def capacities(
    n: int, fractions: Sequence[float] | np.ndarray | None, *, minimum: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """The sweep's shares of the population, ascending and distinct, and their capacities k = ceil(share * n).

    Sorted because :func:`buckets_from_order` needs ascending capacities (a spec may list its shares
    in any order); each k is at least ``minimum``.
    """
    fr = np.unique(np.asarray(DEFAULT_FRACTIONS if fractions is None else fractions, dtype=np.float64))
    ks = np.array([capacity_for_share(f, n) for f in fr], dtype=np.int64)  # the same k as flag() uses
    return fr, np.clip(ks, minimum, n)


@dataclass(frozen=True)
class SweepCounts:
    """Cumulative counts of a sweep, shape (R, G, T): replicate (0 = the data), group, capacity.

    Attributes
    ----------
    flagged, high_need, both : ndarray
        People flagged, with high need, and both, at each capacity.
    need_flagged : ndarray
        Total need of the people flagged.
    size, need : ndarray, shape (R, G, 1)
        The group's size and its total need.
    """

    flagged: np.ndarray
    high_need: np.ndarray
    both: np.ndarray
    need_flagged: np.ndarray
    size: np.ndarray
    need: np.ndarray

    def pooled(self) -> SweepCounts:
        """The same counts for everyone: the groups added up into one."""
        return SweepCounts(**{f.name: getattr(self, f.name).sum(axis=1, keepdims=True) for f in fields(self)})

    def parts(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Each metric of :data:`SWEEP_METRICS` as (numerator, denominator), broadcastable to (R, G, T).

        With F flagged, H with high need, TP both, n the group's size: selection_rate = F / n,
        flagged_share = F / (everyone flagged), high_need_share = H / (everyone with high need),
        need_captured = need of the flagged / need of all, unmet_need_rate = (H - TP) / H,
        tpr = TP / H, fpr = (F - TP) / (n - H), ppv = TP / F.
        """
        f, h, tp = self.flagged, self.high_need, self.both
        return {
            "selection_rate": (f, self.size),
            "flagged_share": (f, f.sum(axis=1, keepdims=True)),
            "high_need_share": (h, h.sum(axis=1, keepdims=True)),
            "need_captured": (self.need_flagged, self.need),
            "unmet_need_rate": (h - tp, h),
            "tpr": (tp, h),
            "fpr": (f - tp, self.size - h),
            "ppv": (tp, f),
        }


def sweep_counts(
    codes: np.ndarray,
    n_groups: int,
    score_buckets: np.ndarray,
    need_buckets: np.ndarray,
    need: np.ndarray,
    n_capacities: int,
    *,
    n_boot: int = 0,
    rng: np.random.Generator | None = None,
) -> SweepCounts:
    """Cumulative counts per group and capacity from the buckets of :func:`buckets_from_order`.

    A person is flagged at capacity j when their score bucket is at most j, has high need when
    their need bucket is at most j, and is a true positive when the larger of the two is at most j,
    so histograms of the non-empty (group, score bucket, need bucket) cells, summed cumulatively
    over the buckets, give every count at every capacity. Replicates 1..``n_boot`` resample each
    cell's count (Poisson bootstrap, ``rng``); a cell's need scales with its count.
    """
    side = n_capacities + 1
    cells = (codes * side + score_buckets) * side + need_buckets
    uniq, inverse, counts = np.unique(cells, return_inverse=True, return_counts=True)
    need_sums = np.bincount(inverse, weights=need, minlength=uniq.size)
    return counts_from_cells(uniq, counts, need_sums, n_groups, n_capacities, n_boot=n_boot, rng=rng)


def counts_from_cells(
    uniq: np.ndarray,
    counts: np.ndarray,
    need_sums: np.ndarray,
    n_groups: int,
    n_capacities: int,
    *,
    n_boot: int = 0,
    rng: np.random.Generator | None = None,
) -> SweepCounts:
    """:func:`sweep_counts` from the non-empty cells: ascending (group, score bucket, need bucket) numbers,
    their counts and their sums of need."""
    t = n_capacities
    side = t + 1
    g_n = n_groups
    c_group, rest = np.divmod(uniq, side * side)
    c_score, c_need = np.divmod(rest, side)
    c_both = np.maximum(c_score, c_need)
    reps = np.empty((1 + n_boot, uniq.size))
    reps[0] = counts
    if n_boot:
        if rng is None:
            raise ValueError("sweep_counts needs rng for a bootstrap")
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

    group_total = np.zeros((reps.shape[0], g_n))
    need_total = np.zeros((reps.shape[0], g_n))
    for r in range(reps.shape[0]):  # a loop over replicates
        group_total[r] = np.bincount(c_group, weights=reps[r], minlength=g_n)
        need_total[r] = np.bincount(c_group, weights=need_reps[r], minlength=g_n)
    return SweepCounts(
        flagged=hist(c_score, reps),
        high_need=hist(c_need, reps),
        both=hist(c_both, reps),
        need_flagged=hist(c_score, need_reps),
        size=group_total[:, :, None],
        need=need_total[:, :, None],
    )


def sweep_rows(
    rows: RowBuilder,
    *,
    model: str,
    grouping: Grouping,
    cube: Cube,
    fractions: np.ndarray,
    target: str,
    min_group_size: int,
    n_boot: int,
    level: float,
    rng: np.random.Generator,
) -> None:
    """Per group and capacity: the metrics of :data:`SWEEP_METRICS`, with intervals.

    ``cube`` holds the cells (stratum, score bucket, need bucket) with the sum of need, the buckets
    of :func:`buckets_from_order` (one order by score and one by need per audit); intervals use the
    Poisson bootstrap of the (group, score bucket, need bucket) cells. Each row's ``n`` is the
    metric's denominator, except need_captured's, which is the group's size.
    """
    t = fractions.size
    g_n = grouping.n_groups
    dense_counts, dense_sums, _ = cube.dense(grouping.by_stratum(), g_n)
    order = grouping.canonical  # the draws go group by group in the labels' order, whatever the engine
    flat = dense_counts[order].ravel()
    uniq = np.flatnonzero(flat)
    drawn = counts_from_cells(uniq, flat[uniq], dense_sums[order].reshape(-1)[uniq], g_n, t, n_boot=n_boot, rng=rng)
    back = np.argsort(order)
    counts = SweepCounts(**{f.name: getattr(drawn, f.name)[:, back] for f in fields(drawn)})
    parts = counts.parts()
    small = counts.size[0, :, 0] < min_group_size
    names = [fraction_name(f) for f in fractions]
    base: dict[str, Any] = {"model": model, "analysis": "thresholds", "attribute": grouping.attribute, "target": target}
    for metric in SWEEP_METRICS:
        num, den = parts[metric]
        values = safe_div(num, den)
        lo, hi = percentile_interval(values[1:], level=level)
        value = values[0].copy()
        shown = counts.size if metric == "need_captured" else den
        den_full = np.broadcast_to(np.asarray(shown[0], dtype=np.float64), (g_n, t))
        reason = np.where(
            small[:, None],
            f"group has fewer than {min_group_size} people",
            np.where(np.isfinite(value), "", _UNDEFINED[metric]),
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
