"""What a decision rule does to who gets care (``analysis = allocation``, ``raise_bar``, ``referral``).

- Counterfactual allocation: at the same capacity, the groups' shares if people were flagged by need,
  or by another model's score.
- The replacement simulation of Obermeyer et al. (2019, Figure 1b): swap the healthiest flagged member
  of the reference group for the sickest unflagged member of the audited group while that raises
  need. Both lists are sorted once, so the number of swaps is the count of positions where the
  sickest unflagged still exceeds the healthiest flagged (the two sequences cross once).
- Equal true-positive rates at the same capacity: group-specific cut-offs chosen so that every group
  has the same share of its high-need members flagged and the total flagged equals the capacity.
- Raising the bar: a schedule of shrinking capacities, who is dropped at each step and the need
  left unmet.
- Referral management: a gate that refers onward only scores above a cut-off; of the people with
  true need for specialist care, who is refused.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from phm_audit.audit._bootstrap import cell_table, grouped_table, percentile_interval
from phm_audit.audit._cells import Cube
from phm_audit.audit._groups import Grouping
from phm_audit.audit._result import RowBuilder
from phm_audit.audit._stats import descending_order, safe_div, top_k_mask

__all__ = [
    "counterfactual_rows",
    "equal_tpr_flags",
    "raise_bar_rows",
    "referral_rows",
    "replacement_swaps",
]


def _share_rows(
    rows: RowBuilder,
    base: dict[str, Any],
    grouping: Grouping,
    flagged: np.ndarray,
    metric: str,
    *,
    n_boot: int,
    level: float,
    rng: np.random.Generator,
) -> None:
    table = cell_table(grouping.codes * 2 + flagged.astype(np.int64), grouping.n_groups * 2, n_boot=n_boot, rng=rng)
    c = table.counts.reshape(-1, grouping.n_groups, 2)
    share = safe_div(c[:, :, 1], c[:, :, 1].sum(axis=1, keepdims=True))
    lo, hi = percentile_interval(share[1:], level=level)
    rows.add(groups=grouping.labels, metric=metric, value=share[0], ci_low=lo, ci_high=hi, n=c[0, :, 1], **base)


def _unmet_rows(
    rows: RowBuilder,
    base: dict[str, Any],
    grouping: Grouping,
    flagged: np.ndarray,
    high_need: np.ndarray,
    alternative: np.ndarray | None,
    name: str,
    *,
    n_boot: int,
    level: float,
    rng: np.random.Generator,
) -> None:
    """Unmet-need rates and their gap to the reference group; with an alternative rule, jointly resampled.

    ``unmet_need_rate`` is the share of a group's high-need members not flagged; ``unmet_need_gap`` is
    the group's rate minus the reference group's. With an alternative, the same people are resampled
    for both rules, so ``unmet_need_gap_change_if_by_<name>`` (alternative gap minus current gap) has
    an honest interval.
    """
    alt = flagged if alternative is None else alternative
    ref = grouping.reference
    cells = ((grouping.codes * 2 + high_need.astype(np.int64)) * 2 + flagged.astype(np.int64)) * 2 + alt.astype(
        np.int64
    )
    c = cell_table(cells, grouping.n_groups * 8, n_boot=n_boot, rng=rng).counts.reshape(-1, grouping.n_groups, 2, 2, 2)
    high = c[:, :, 1].sum(axis=(2, 3))
    unmet_now = safe_div(c[:, :, 1, 0, :].sum(axis=2), high)
    unmet_alt = safe_div(c[:, :, 1, :, 0].sum(axis=2), high)
    gap_now = unmet_now - unmet_now[:, ref : ref + 1]
    gap_alt = unmet_alt - unmet_alt[:, ref : ref + 1]
    why = np.where(high[0] > 0, "", "no high-need members in the group")
    if alternative is None:
        series = {"unmet_need_rate": unmet_now, "unmet_need_gap": gap_now}
    else:
        series = {
            f"unmet_need_rate_if_by_{name}": unmet_alt,
            f"unmet_need_gap_if_by_{name}": gap_alt,
            f"unmet_need_gap_change_if_by_{name}": gap_alt - gap_now,
        }
    for metric, reps in series.items():
        lo, hi = percentile_interval(reps[1:], level=level)
        rows.add(
            groups=grouping.labels, metric=metric, value=reps[0], ci_low=lo, ci_high=hi, n=high[0], reason=why, **base
        )


def replacement_swaps(need_flagged_ref: np.ndarray, need_unflagged_group: np.ndarray) -> int:
    """Number of swaps of the replacement simulation.

    Swap the healthiest flagged reference-group member for the sickest unflagged audited-group
    member while the newcomer's need is higher. Sorted, the j-th swap happens exactly when the j-th
    highest unflagged need exceeds the j-th lowest flagged need.

    Examples
    --------
    >>> replacement_swaps(np.array([1.0, 5.0, 9.0]), np.array([8.0, 2.0, 0.5]))
    1
    """
    low_first = np.sort(np.asarray(need_flagged_ref, dtype=np.float64))
    high_first = np.sort(np.asarray(need_unflagged_group, dtype=np.float64))[::-1]
    m = min(low_first.size, high_first.size)
    return int(np.count_nonzero(high_first[:m] > low_first[:m]))


def equal_tpr_flags(scores: np.ndarray, codes: np.ndarray, high_need: np.ndarray, k: int) -> np.ndarray:
    """Flag ``k`` people with group-specific cut-offs that equalise the true-positive rate.

    For a common rate r, each group flags its highest scores down to the point where a share r of its
    high-need members is flagged; r is raised until ``k`` people are flagged (ties between groups at
    the last step go to the groups in code order). Groups without high-need members flag nobody.

    phm-audit solves this itself because fairlearn's ``ThresholdOptimizer`` cannot hold the number flagged
    fixed: it picks the common rate by an objective (accuracy, balanced accuracy, selection rate, TPR or
    TNR) and randomises between cut-offs, so it flags an expected, not an exact, number. The tests check
    this function against ``ThresholdOptimizer`` at ``ThresholdOptimizer``'s own (expected) capacity.
    """
    n_groups = int(codes.max()) + 1
    order = descending_order(scores)
    g_sorted = codes[order]
    h_sorted = high_need[order].astype(np.int64)
    # within-group rank of each person in score order, and cumulative high-need count at that rank
    within = np.empty(order.size, dtype=np.int64)
    cum_high = np.empty(order.size, dtype=np.int64)
    positions = []
    for g in range(n_groups):  # a loop over groups; each step is vectorised over the group's people
        idx = np.flatnonzero(g_sorted == g)
        positions.append(idx)
        within[idx] = np.arange(idx.size)
        cum_high[idx] = np.cumsum(h_sorted[idx])
    totals = np.array([h_sorted[p].sum() for p in positions])

    def flagged_count(rate: float) -> np.ndarray:
        # people needed per group to reach `rate` of its high-need members: first index with cum_high >= target
        counts = np.zeros(n_groups, dtype=np.int64)
        for g, p in enumerate(positions):
            if totals[g] == 0:
                continue
            target = int(np.ceil(rate * totals[g] - 1e-12))
            counts[g] = 0 if target == 0 else int(np.searchsorted(cum_high[p], target, side="left")) + 1
        return counts

    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if flagged_count(mid).sum() <= k:
            lo = mid
        else:
            hi = mid
    counts = flagged_count(lo)
    extra = k - int(counts.sum())
    if extra > 0:  # fill the remaining places with the next highest scores, keeping each group's order
        nxt = flagged_count(hi) - counts
        for g in range(n_groups):
            take = min(extra, int(nxt[g]), positions[g].size - int(counts[g]))
            counts[g] += take
            extra -= take
        for g in range(n_groups):
            take = min(extra, positions[g].size - int(counts[g]))
            counts[g] += take
            extra -= take
    flags_sorted = within < counts[g_sorted]
    out = np.zeros(order.size, dtype=bool)
    out[order] = flags_sorted
    return out


def counterfactual_rows(
    rows: RowBuilder,
    *,
    model: str,
    grouping: Grouping,
    scores: np.ndarray,
    flagged: np.ndarray,
    need: np.ndarray,
    high_need: np.ndarray,
    operating_point: str,
    target: str,
    alternatives: Mapping[str, np.ndarray],
    n_boot: int,
    level: float,
    rng: np.random.Generator,
) -> None:
    """Group shares as flagged, if flagged by need, by other models, and with equal TPR; replacement shares."""
    k = int(flagged.sum())
    base: dict[str, Any] = {
        "model": model,
        "analysis": "allocation",
        "attribute": grouping.attribute,
        "operating_point": operating_point,
        "target": target,
    }
    _share_rows(rows, base, grouping, flagged, "flagged_share", n_boot=n_boot, level=level, rng=rng)
    _share_rows(
        rows, base, grouping, top_k_mask(need, k), "flagged_share_if_by_need", n_boot=n_boot, level=level, rng=rng
    )
    _unmet_rows(rows, base, grouping, flagged, high_need, None, "", n_boot=n_boot, level=level, rng=rng)
    for name, other in alternatives.items():
        alt = top_k_mask(other, k)
        _share_rows(rows, base, grouping, alt, f"flagged_share_if_by_{name}", n_boot=n_boot, level=level, rng=rng)
        _unmet_rows(rows, base, grouping, flagged, high_need, alt, name, n_boot=n_boot, level=level, rng=rng)
    fair = equal_tpr_flags(scores, grouping.codes, high_need, k)
    now = np.bincount(grouping.codes[flagged], minlength=grouping.n_groups)
    then = np.bincount(grouping.codes[fair], minlength=grouping.n_groups)
    rows.add(
        groups=grouping.labels,
        metric="equal_tpr_change_in_flagged",
        value=then - now,
        n=grouping.sizes,
        reason="no interval: a what-if on the audited population",
        **base,
    )
    high_g = np.bincount(grouping.codes[high_need], minlength=grouping.n_groups)
    tpr_fair = safe_div(np.bincount(grouping.codes[fair & high_need], minlength=grouping.n_groups), high_g)
    rows.add(
        groups=grouping.labels,
        metric="equal_tpr_tpr",
        value=tpr_fair,
        n=high_g,
        reason=np.where(
            high_g > 0, "no interval: a what-if on the audited population", "no high-need members in the group"
        ),
        **base,
    )
    # Obermeyer et al.'s replacement simulation, each group against the reference group
    ref = grouping.reference
    ref_flagged = need[flagged & (grouping.codes == ref)]
    shares = np.full(grouping.n_groups, np.nan)
    swaps = np.zeros(grouping.n_groups)
    for g in range(grouping.n_groups):  # a loop over groups
        if g == ref:
            continue
        m = replacement_swaps(ref_flagged, need[~flagged & (grouping.codes == g)])
        swaps[g] = m
        shares[g] = (now[g] + m) / max(k, 1)
    reason = np.where(
        np.arange(grouping.n_groups) == ref,
        "reference group",
        "no interval: a deterministic simulation on the audited population",
    )
    rows.add(groups=grouping.labels, metric="replacement_share", value=shares, n=now, reason=reason, **base)
    rows.add(
        groups=grouping.labels,
        metric="replacement_swaps",
        value=np.where(np.arange(grouping.n_groups) == ref, np.nan, swaps),
        n=now,
        reason=np.where(np.arange(grouping.n_groups) == ref, "reference group", ""),
        **base,
    )


def raise_bar_rows(
    rows: RowBuilder,
    *,
    model: str,
    grouping: Grouping,
    scores: np.ndarray,
    need: np.ndarray,
    capacities: Sequence[int],
    target: str,
    n_boot: int,
    level: float,
    rng: np.random.Generator,
) -> None:
    """At each step of a shrinking capacity: who is dropped by group, and the need left unmet.

    High need is fixed at the first step's capacity (the people the service was sized for); the
    unmet-need rate is the share of each group's high-need members no longer flagged, and the unmet
    need share is the share of those members' total need that is left unmet.
    """
    order = descending_order(scores)
    rank = np.empty(order.size, dtype=np.int64)
    rank[order] = np.arange(order.size)
    k0 = int(capacities[0])
    high = top_k_mask(need, k0)
    base: dict[str, Any] = {"model": model, "analysis": "raise_bar", "attribute": grouping.attribute, "target": target}
    previous = rank < k0
    for step, k in enumerate(capacities):
        flagged = rank < int(k)
        dropped = previous & ~flagged
        op = f"step_{step}_k_{int(k)}"
        cells = (grouping.codes * 2 + dropped.astype(np.int64)) * 2 + (high & ~flagged).astype(np.int64)
        table = cell_table(cells, grouping.n_groups * 4, np.where(high, need, 0.0)[:, None], n_boot=n_boot, rng=rng)
        c = table.counts.reshape(-1, grouping.n_groups, 2, 2)
        s = table.sums[..., 0].reshape(-1, grouping.n_groups, 2, 2)
        dropped_g = c[:, :, 1, :].sum(axis=2)
        dropped_share = safe_div(dropped_g, dropped_g.sum(axis=1, keepdims=True))
        high_g = np.bincount(grouping.codes[high], minlength=grouping.n_groups)
        unmet = c[:, :, :, 1].sum(axis=2)
        unmet_need = s[:, :, :, 1].sum(axis=2)
        total_high_need = np.bincount(grouping.codes, weights=np.where(high, need, 0.0), minlength=grouping.n_groups)
        for metric, reps, den in (
            ("dropped", dropped_g, dropped_g[0]),
            ("dropped_share", dropped_share, np.broadcast_to(dropped_g[0].sum(), dropped_g[0].shape)),
            ("unmet_need_rate", safe_div(unmet, high_g[None, :]), high_g),
            ("unmet_need_share", safe_div(unmet_need, total_high_need[None, :]), high_g),
        ):
            lo, hi = percentile_interval(reps[1:], level=level)
            why = "nobody dropped at this step" if metric == "dropped_share" else "no high-need members in the group"
            rows.add(
                groups=grouping.labels,
                metric=metric,
                value=reps[0],
                ci_low=lo,
                ci_high=hi,
                n=den,
                operating_point=op,
                reason=np.where(np.isfinite(reps[0]), "", why),
                **base,
            )
        previous = flagged


def referral_rows(
    rows: RowBuilder,
    *,
    model: str,
    grouping: Grouping,
    cube: Cube,
    operating_point: str,
    target: str,
    min_group_size: int,
    n_boot: int,
    level: float,
    rng: np.random.Generator,
) -> None:
    """A referral gate: of the people who need specialist care, the share refused (not referred on), by group.

    ``cube`` holds the cells (stratum, needs specialist care, passed the gate).
    """
    passed = cube.dense(grouping.by_stratum(), grouping.n_groups)[0]  # (G, needs, passed)
    c = grouped_table(grouping.canonical, passed[:, :, ::-1], n_boot=n_boot, rng=rng)[0]  # (R, G, needs, refused)
    needing = c[:, :, 1, :].sum(axis=2)
    rate = safe_div(c[:, :, 1, 1], needing)
    ref = grouping.reference
    base: dict[str, Any] = {
        "model": model,
        "analysis": "referral",
        "attribute": grouping.attribute,
        "operating_point": operating_point,
        "target": target,
    }
    small = np.where(needing[0] < min_group_size, f"fewer than {min_group_size} people in the group need it", "")
    for metric, reps in (
        ("refused_rate_among_needing", rate),
        ("refused_rate_ratio", safe_div(rate, rate[:, ref : ref + 1])),
        ("refused_share", safe_div(c[:, :, 1, 1], c[:, :, 1, 1].sum(axis=1, keepdims=True))),
        ("needing_share", safe_div(needing, needing.sum(axis=1, keepdims=True))),
    ):
        lo, hi = percentile_interval(reps[1:], level=level)
        value = reps[0].copy()
        value[small != ""], lo[small != ""], hi[small != ""] = np.nan, np.nan, np.nan
        rows.add(
            groups=grouping.labels,
            metric=metric,
            value=value,
            ci_low=lo,
            ci_high=hi,
            n=needing[0],
            reason=small,
            **base,
        )
