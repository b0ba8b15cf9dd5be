"""Actuarial versus clinical judgement (``analysis = judgement``).

Compares every audited score (actuarial, clinical, rule, simulated clinician judgement, and a
combined pathway) on one footing: how well it ranks people with high need and people with high
cost (AUROC), how much of all need and cost its flagged hold at the same capacity, and, per group,
the share of high-need members it reaches (tpr).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from statistics import NormalDist
from typing import Any

import numpy as np

from phm_audit.audit._bootstrap import cell_table, percentile_interval
from phm_audit.audit._groups import Grouping
from phm_audit.audit._result import RowBuilder
from phm_audit.audit._spec import ScoredModel
from phm_audit.audit._stats import descending_order, safe_div, top_k_mask

__all__ = ["auroc", "combined_pathway_scores", "judgement_rows"]


def auroc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve from ranks (ties count one half), as scikit-learn's ``roc_auc_score``."""
    from scipy.stats import rankdata

    pos = positive.astype(bool)
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return math.nan
    ranks = rankdata(scores)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _hanley_mcneil(auc: float, n_pos: int, n_neg: int, level: float) -> tuple[float, float]:
    if not np.isfinite(auc) or n_pos == 0 or n_neg == 0:
        return math.nan, math.nan
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    var = (auc * (1 - auc) + (n_pos - 1) * (q1 - auc * auc) + (n_neg - 1) * (q2 - auc * auc)) / (n_pos * n_neg)
    z = NormalDist().inv_cdf(1 - (1 - level) / 2)
    half = z * math.sqrt(max(var, 0.0))
    return max(0.0, auc - half), min(1.0, auc + half)


def combined_pathway_scores(
    actuarial: np.ndarray, judgement: np.ndarray, *, auto_share: float, review_share: float
) -> np.ndarray:
    """Scores whose top ranks are the combined pathway of the US programme Obermeyer et al. studied.

    People in the top ``auto_share`` of the actuarial score come first (auto-enrolled); the next
    ``review_share`` of the population by actuarial score is reviewed by a clinician and ordered by
    the clinician's judgement; everyone else follows in actuarial order. Flagging the top k of these
    scores enrols the auto-enrolled and fills the remaining places from the reviewed band.
    """
    n = actuarial.size
    order = descending_order(actuarial)
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    auto = rank < math.ceil(auto_share * n)
    band = ~auto & (rank < math.ceil((auto_share + review_share) * n))
    j_rank = np.empty(n, dtype=np.float64)
    j_rank[descending_order(judgement)] = np.arange(n)
    return np.where(auto, 3.0 - rank / n, np.where(band, 2.0 - j_rank / n, 1.0 - rank / n))


def judgement_rows(
    rows: RowBuilder,
    *,
    models: Sequence[ScoredModel],
    groupings: Sequence[Grouping],
    need: np.ndarray,
    cost: np.ndarray,
    k: int,
    operating_point: str,
    need_target: str,
    cost_target: str,
    n_boot: int,
    level: float,
    rng: Callable[[str], np.random.Generator],
) -> list[str]:
    """Compare the models on need, cost and groups at the same capacity; return plain-words findings.

    ``rng(name)`` gives each model's random numbers, so a model's intervals do not depend on which
    other models are compared or in what order.
    """
    high_need = top_k_mask(need, k)
    high_cost = top_k_mask(cost, k)
    captured: dict[str, float] = {}
    base: dict[str, Any] = {"analysis": "judgement", "operating_point": operating_point}
    for m in models:
        model_rng = rng(m.name)
        flagged = top_k_mask(m.scores, k)
        for metric, positive, target in (
            ("auroc_high_need", high_need, need_target),
            ("auroc_high_cost", high_cost, cost_target),
        ):
            value = auroc(m.scores, positive)
            lo, hi = _hanley_mcneil(value, int(positive.sum()), int((~positive).sum()), level)
            rows.add(
                model=m.name,
                attribute="all",
                groups=["all"],
                metric=metric,
                value=value,
                ci_low=lo,
                ci_high=hi,
                n=positive.size,
                target=target,
                **base,
            )
        t = cell_table(flagged.astype(np.int64), 2, np.column_stack([need, cost]), n_boot=n_boot, rng=model_rng)
        share = safe_div(t.sums[:, 1, :], t.sums.sum(axis=1))
        share_lo, share_hi = percentile_interval(share[1:], level=level)
        captured[m.name] = float(share[0, 0])
        for j, (metric, target) in enumerate(
            (("share_of_need_captured", need_target), ("share_of_cost_captured", cost_target))
        ):
            rows.add(
                model=m.name,
                attribute="all",
                groups=["all"],
                metric=metric,
                value=share[0, j],
                ci_low=share_lo[j],
                ci_high=share_hi[j],
                n=k,
                target=target,
                **base,
            )
        for grouping in groupings:
            cells = (grouping.codes * 2 + high_need.astype(np.int64)) * 2 + flagged.astype(np.int64)
            c = cell_table(cells, grouping.n_groups * 4, n_boot=n_boot, rng=model_rng).counts.reshape(
                -1, grouping.n_groups, 2, 2
            )
            tpr = safe_div(c[:, :, 1, 1], c[:, :, 1, :].sum(axis=2))
            lo_g, hi_g = percentile_interval(tpr[1:], level=level)
            rows.add(
                model=m.name,
                attribute=grouping.attribute,
                groups=grouping.labels,
                metric="tpr",
                value=tpr[0],
                ci_low=lo_g,
                ci_high=hi_g,
                n=c[0, :, 1, :].sum(axis=1),
                target=need_target,
                reason=np.where(np.isfinite(tpr[0]), "", "no high-need members in the group"),
                **base,
            )
    findings = []
    if len(captured) > 1:
        best = max(captured, key=lambda name: captured[name])
        worst = min(captured, key=lambda name: captured[name])
        findings.append(
            f"At {operating_point}, {best} flags the people holding the most need ({100 * captured[best]:.1f}% of all "
            f"{need_target}), and {worst} the least ({100 * captured[worst]:.1f}%)."
        )
    return findings
