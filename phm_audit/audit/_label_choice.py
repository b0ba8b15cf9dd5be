"""Label choice (``analysis = label_choice``): the same learner trained on each candidate label, audited.

Obermeyer et al. (2019, Table 2) retrained their algorithm on total cost, avoidable cost and active
chronic conditions and compared, in the top 3%, the share of Black patients and the share of all
need and of all cost that the flagged held. This does the same for any learner and any groups.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from phm_audit.audit._analyses import Context, LabelScores
from phm_audit.audit._bootstrap import cell_table, percentile_interval
from phm_audit.audit._operating_points import flag, parse_operating_point
from phm_audit.audit._result import AuditResult, RowBuilder
from phm_audit.audit._spec import AuditSpec
from phm_audit.audit._stats import safe_div
from phm_audit.exceptions import PhmInputError

__all__ = ["label_choice_rows", "label_choice_scores"]


def _shares(
    rows: RowBuilder,
    *,
    model: str,
    label: str,
    flagged: np.ndarray,
    groupings: list,
    targets: dict,
    op_name: str,
    spec: AuditSpec,
    rng: np.random.Generator,
) -> None:
    level = spec.confidence
    for grouping in groupings:
        t = cell_table(
            grouping.codes * 2 + flagged.astype(np.int64), grouping.n_groups * 2, n_boot=spec.n_boot, rng=rng
        )
        c = t.counts.reshape(-1, grouping.n_groups, 2)
        share = safe_div(c[:, :, 1], c[:, :, 1].sum(axis=1, keepdims=True))
        lo, hi = percentile_interval(share[1:], level=level)
        rows.add(
            model=model,
            analysis="label_choice",
            attribute=grouping.attribute,
            groups=grouping.labels,
            metric="flagged_share",
            value=share[0],
            ci_low=lo,
            ci_high=hi,
            n=c[0, :, 1].sum(),
            target=label,
            operating_point=op_name,
        )
    names = list(targets)
    values = np.column_stack([targets[k] for k in names])
    t = cell_table(flagged.astype(np.int64), 2, values, n_boot=spec.n_boot, rng=rng)
    captured = safe_div(t.sums[:, 1, :], t.sums.sum(axis=1))  # (R, K)
    lo, hi = percentile_interval(captured[1:], level=level)
    for j, name in enumerate(names):
        metric = "share_of_cost_captured" if name == spec.cost_target else "share_of_need_captured"
        rows.add(
            model=model,
            analysis="label_choice",
            attribute="all",
            groups=["all"],
            metric=metric,
            value=captured[0, j],
            ci_low=lo[j],
            ci_high=hi[j],
            n=int(flagged.sum()),
            target=name,
            operating_point=op_name,
        )


def label_choice_scores(
    scores: Mapping[str, Any],
    cohort: pd.DataFrame,
    spec: AuditSpec | None = None,
    *,
    learner: str = "actuarial_cost",
    kind: str = "actuarial",
    operating_point: str = "top_pct:3",
) -> AuditResult:
    """Compare whom one learner, trained on each label, flags at ``operating_point``.

    The audit never fits a model: ``scores`` holds, for each label, the scores of ``learner`` trained
    on it (:func:`phm_audit.pipeline.label_choice` fits them and calls this).

    Parameters
    ----------
    scores : mapping of str to array-like
        Label -> the learner's scores of ``cohort``'s people, trained on that label.
    cohort : pandas.DataFrame
        People audited.
    spec : AuditSpec, optional
        Groups, targets and bootstrap settings.
    learner : str, default "actuarial_cost"
        The learner's name (the rows' models are named ``learner[label]``).
    kind : str, default "actuarial"
        The learner's kind, recorded with each model.
    operating_point : str, default "top_pct:3"
        The decision compared (Obermeyer et al. used the top 3%).

    Returns
    -------
    AuditResult
        Rows with ``analysis = "label_choice"``: each group's ``flagged_share`` and the shares of all
        need and all cost captured, per label. Where the cohort has ground truth, a row set named
        ``flag by need_true_next`` shows the allocation that ranks people by true need.

    Examples
    --------
    >>> from phm_audit.synth import generate
    >>> cohort = generate("england", 3_000, seed=1)
    >>> result = label_choice_scores({"cost_prior": cohort["cost_prior"]}, cohort,
    ...                              AuditSpec(attributes=["sex"], intersections=[], n_boot=0), learner="prior")
    >>> sorted({m["name"] for m in result.models})
    ['flag by need_true_next', 'prior[cost_prior]']
    """
    from phm_audit.audit._audit import audit

    spec = dataclasses.replace(spec or AuditSpec(), analyses=("label_choice",))
    given = LabelScores(scores, learner=learner, kind=kind, operating_point=operating_point)
    return audit(cohort, [], spec, label_scores=given)


def label_choice_rows(ctx: Context, given: LabelScores) -> list[dict[str, Any]]:
    """The label-choice analysis of the registry: add its rows to ``ctx``, return the models it names."""
    cohort, spec = ctx.cohort, ctx.spec
    op = parse_operating_point(given.operating_point)
    places = ctx.places.get(op.by)
    compared: list[tuple[str, str, str, np.ndarray]] = []
    for label, scores in given.scores.items():
        values = np.asarray(scores, dtype=np.float64)
        if values.shape != (len(cohort),):
            raise PhmInputError(
                f"label_choice_scores: the scores of label '{label}' hold {values.size:,} values for "
                f"{len(cohort):,} people; give one score per audited person"
            )
        compared.append((f"{given.learner}[{label}]", given.kind, label, values))
    if "need_true_next" in cohort.columns:  # the allocation that ranks people by their true need
        compared.append(("flag by need_true_next", "oracle", "need_true_next", ctx.numeric("need_true_next")))
    for name, _kind, label, values in compared:
        _shares(
            ctx.rows,
            model=name,
            label=label,
            flagged=flag(values, op, places=places),
            groupings=ctx.groupings,
            targets=ctx.targets,
            op_name=op.name,
            spec=spec,
            rng=ctx.rng,
        )
    models = [{"name": name, "kind": kind, "target": label} for name, kind, label, _ in compared]
    return models
