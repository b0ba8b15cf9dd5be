"""Decision curves (``analysis = net_benefit``): net benefit of acting on a probability, per group.

Net benefit at threshold probability pt (Vickers & Elkin 2006): NB(pt) = TP/N - FP/N * pt / (1 - pt),
where people with a predicted probability of at least pt are treated. Treat-all has
NB = prevalence - (1 - prevalence) * pt / (1 - pt); treat-none has NB = 0. Counts come from one
sort of the probabilities per audit (each person's number of thresholds at or below their
probability) and cumulative sums per group, so every threshold costs O(groups), not O(people).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from phm_audit.audit._bootstrap import cell_table, percentile_interval
from phm_audit.audit._groups import Grouping
from phm_audit.audit._result import RowBuilder
from phm_audit.audit._stats import safe_div

__all__ = ["DEFAULT_THRESHOLDS", "net_benefit_curve", "net_benefit_rows"]

#: Threshold probabilities 0.01, 0.02, ..., 0.50.
DEFAULT_THRESHOLDS = np.round(np.arange(1, 51) / 100, 2)


def _check(probabilities: np.ndarray, outcome: np.ndarray, thresholds: np.ndarray) -> str | None:
    if probabilities.min() < 0 or probabilities.max() > 1:
        return "scores are not probabilities (outside [0, 1])"
    if not np.isin(np.unique(outcome), [0.0, 1.0]).all():
        return "the outcome is not binary (0/1)"
    if np.any((thresholds <= 0) | (thresholds >= 1)):
        return "threshold probabilities must lie strictly between 0 and 1"
    return None


def net_benefit_curve(probabilities: np.ndarray, outcome: np.ndarray, thresholds: np.ndarray) -> dict[str, np.ndarray]:
    """Net benefit of the model, treat-all and treat-none at each threshold, for one population.

    Parameters
    ----------
    probabilities : ndarray
        Predicted probabilities.
    outcome : ndarray of {0, 1}
        Observed outcome.
    thresholds : ndarray
        Threshold probabilities, strictly between 0 and 1.

    Returns
    -------
    dict
        ``net_benefit``, ``treat_all``, ``treat_none``, ``tp``, ``fp`` (counts) per threshold.

    Examples
    --------
    >>> import numpy as np
    >>> nb = net_benefit_curve(np.array([0.9, 0.2, 0.6]), np.array([1, 0, 0]), np.array([0.5]))
    >>> float(nb["net_benefit"][0])
    0.0
    """
    p = np.asarray(probabilities, dtype=np.float64)
    y = np.asarray(outcome, dtype=np.float64)
    t = np.asarray(thresholds, dtype=np.float64)
    p_sorted = np.sort(p)
    y_sorted = y[np.argsort(p, kind="stable")]
    start = np.searchsorted(p_sorted, t, side="left")  # people from here on have p >= t
    tail_y = np.concatenate([np.cumsum(y_sorted[::-1])[::-1], [0.0]])
    tp = tail_y[start]
    fp = (p.size - start) - tp
    n = p.size
    odds = t / (1 - t)
    prevalence = y.mean() if n else np.nan
    return {
        "net_benefit": tp / n - fp / n * odds,
        "treat_all": prevalence - (1 - prevalence) * odds,
        "treat_none": np.zeros_like(t),
        "tp": tp,
        "fp": fp,
    }


def net_benefit_rows(
    rows: RowBuilder,
    *,
    model: str,
    grouping: Grouping,
    probabilities: np.ndarray,
    outcome: np.ndarray,
    target: str,
    thresholds: np.ndarray = DEFAULT_THRESHOLDS,
    min_group_size: int,
    n_boot: int,
    level: float,
    rng: np.random.Generator,
) -> str | None:
    """Net benefit per group (and for everyone) with bootstrap intervals. Returns a note if not applicable."""
    p = np.asarray(probabilities, dtype=np.float64)
    y = np.asarray(outcome, dtype=np.float64)
    t = np.asarray(thresholds, dtype=np.float64)
    problem = _check(p, y, t)
    if problem:
        return f"{model}: net benefit against {target} not computed: {problem}"
    n_t = t.size
    # each person's count of thresholds at or below their probability: treated at threshold j iff j < level
    treated_upto = np.searchsorted(t, p, side="right")
    labels = [*grouping.labels, "all"]
    codes = grouping.codes
    g_n = grouping.n_groups
    cells = (codes * (n_t + 1) + treated_upto) * 2 + y.astype(np.int64)
    table = cell_table(cells, g_n * (n_t + 1) * 2, n_boot=n_boot, rng=rng)
    c = table.counts.reshape(-1, g_n, n_t + 1, 2)
    c = np.concatenate([c, c.sum(axis=1, keepdims=True)], axis=1)  # add "all"
    # people treated at threshold j are those with treated_upto > j: reverse cumulative sum over levels
    tail = np.flip(np.cumsum(np.flip(c, axis=2), axis=2), axis=2)  # tail[..., j, :] = sum over levels >= j
    treated = tail[:, :, 1:, :]  # levels j + 1 .. n_t, i.e. treated at threshold j
    tp, fp = treated[..., 1], treated[..., 0]
    n = c.sum(axis=(2, 3))[:, :, None]
    events = c[..., 1].sum(axis=2)[:, :, None]
    odds = t / (1 - t)
    nb = safe_div(tp, n) - safe_div(fp, n) * odds
    prevalence = safe_div(events, n)
    treat_all = prevalence - (1 - prevalence) * odds
    sizes = n[0, :, 0]
    small = np.where(sizes < min_group_size, f"group has fewer than {min_group_size} people", "")
    base: dict[str, Any] = {
        "model": model,
        "analysis": "net_benefit",
        "attribute": grouping.attribute,
        "target": target,
    }
    for metric, reps in (
        ("net_benefit", nb),
        ("net_benefit_treat_all", treat_all),
        ("net_benefit_minus_treat_all", nb - treat_all),
    ):
        lo, hi = percentile_interval(reps[1:], level=level)
        for j, thr in enumerate(t):
            value = reps[0, :, j].copy()
            low, high = lo[:, j].copy(), hi[:, j].copy()
            value[small != ""], low[small != ""], high[small != ""] = np.nan, np.nan, np.nan
            rows.add(
                groups=labels,
                metric=metric,
                value=value,
                ci_low=low,
                ci_high=high,
                n=sizes,
                reason=small,
                operating_point=f"pt_{thr:g}",
                **base,
            )
    rows.add(
        groups=labels,
        metric="net_benefit_treat_none",
        value=0.0,
        ci_low=0.0,
        ci_high=0.0,
        n=sizes,
        operating_point="all",
        **base,
    )
    return None
