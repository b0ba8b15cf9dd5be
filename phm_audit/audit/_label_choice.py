"""Label choice (``analysis = label_choice``): the same learner trained on each candidate label, audited.

Obermeyer et al. (2019, Table 2) retrained their algorithm on total cost, avoidable cost and active
chronic conditions and compared, in the top 3%, the share of Black patients and the share of all
need and of all cost that the flagged held. This does the same for any learner and any groups.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from phm_audit._checks import check_columns
from phm_audit.audit._audit import prepare
from phm_audit.audit._bootstrap import cell_table, percentile_interval
from phm_audit.audit._operating_points import flag, parse_operating_point
from phm_audit.audit._result import CURVE_COLUMNS, AuditResult, RowBuilder
from phm_audit.audit._spec import AuditSpec
from phm_audit.audit._stats import safe_div
from phm_audit.exceptions import PhmInputError

__all__ = ["label_choice_scores"]


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
    spec = spec or AuditSpec()
    groupings, targets, notes, high = prepare(cohort, spec)
    op = parse_operating_point(operating_point)
    if op.by is not None:
        check_columns(cohort, [op.by], f"operating point '{op.name}'")
    places = None if op.by is None else cohort[op.by].to_numpy()
    rng = np.random.default_rng(spec.seed + 1)
    rows = RowBuilder()
    models = []
    for label, given in scores.items():
        values = np.asarray(given, dtype=np.float64)
        if values.shape != (len(cohort),):
            raise PhmInputError(
                f"label_choice_scores: the scores of label '{label}' hold {values.size:,} values for "
                f"{len(cohort):,} people; give one score per audited person"
            )
        name = f"{learner}[{label}]"
        _shares(
            rows,
            model=name,
            label=label,
            flagged=flag(values, op, places=places),
            groupings=groupings,
            targets=targets,
            op_name=op.name,
            spec=spec,
            rng=rng,
        )
        models.append({"name": name, "kind": kind, "target": label})
    if "need_true_next" in cohort.columns:
        need = cohort["need_true_next"].to_numpy(np.float64)
        name = "flag by need_true_next"
        _shares(
            rows,
            model=name,
            label="need_true_next",
            flagged=flag(need, op, places=places),
            groupings=groupings,
            targets=targets,
            op_name=op.name,
            spec=spec,
            rng=rng,
        )
        models.append({"name": name, "kind": "oracle", "target": "need_true_next"})
    return AuditResult(
        spec=spec,
        models=tuple(models),
        groups={g.attribute: g.describe() for g in groupings},
        cohort={"n": len(cohort), "high_need_target": high},
        notes=tuple(notes),
        _metrics=rows.frame(),
        _curves=pd.DataFrame(columns=list(CURVE_COLUMNS)),
    )
