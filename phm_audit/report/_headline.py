"""The headline of a report, "What this audit found": at most 12 statements, one per distinct effect.

The headline answers, for the audited models at the primary operating point:

- **Who is under-served** (``kind = "under_served"``): a group whose share of the flagged is below
  its share of the highest need (``flagged_to_high_need_ratio`` graded ``flag``), said as a ratio
  and as the number of the group's high-need people missing from the flagged, per 100,000 of the
  audited population.
- **Whether the score under-states the group's need, and why** (``kind = "under_stated"``, and the
  ``mechanism`` of every statement on a group):

  ``label``
      The model ranks by cost (its label is the spec's cost target or names a cost:
      ``cost_next``, ``avoidable_cost_next``) and the label gap at equal score (need ratio over cost ratio)
      is graded ``flag``: at the same score the group has more need per pound than the reference
      group, so a cost label under-states its need. What would fix it: a need label.
  ``base_rate``
      The model is not trained on cost (its label is a measure of need or health) and the need
      ratio at equal score is graded ``flag``, and not explained by the label (below): at the same
      score the group is sicker, as a noisy
      score of a group with a higher base rate of need is (regression towards the group's mean).
      The label gap says nothing about such a score: it describes cost against need in the
      population, and is much the same for every score. What would fix it: calibration within
      groups or a group-aware threshold.

  A model trained on a recorded proxy of need (``n_conditions_next``), audited against ground truth
  (``need_true_next``), is under-stated by its label where the need ratio against ground truth over
  the need ratio against its own label exceeds ``FindingRules.label_gap`` and their intervals do not
  overlap: the score is fair to its label, and the recorded label under-states the group's need.

  For a group already found under-served, the mechanism needs less: its comparison at equal score
  (the label gap, or the need ratio) a discovery on the harmful side of parity, at least half-way to
  the flag threshold (1.05 for the default 1.1), on a group of at least
  ``FindingRules.min_calibration_n`` people. The flag threshold is for reporting a comparison on its
  own; a cost label that under-states a deprived group's need by 8% still explains why that group is
  under-served.

  For a model whose label is not known (a supplied model without a target), the data decide:
  ``label`` where the label gap is a flag and the cost ratio at equal score is at 1 (its interval
  holds 1: the score tracks cost alike in both groups), ``base_rate`` where the need ratio is a
  flag and the label gap's interval holds 1, and no mechanism otherwise.
- **What capacity changes** (``kind = "capacity"``): for each of the first under-served or
  under-stated effects, the unmet need of the group and of the reference group at twice the
  capacity, from the threshold sweep.
- **What allocation changes** (``kind = "allocation"``): the same number of places given by need,
  or by a need-trained model audited alongside, and the people moved into the group.

Every statement carries its grade (the graded finding it rests on, after the false-discovery
control of :mod:`phm_audit.report._findings`), model, attribute, group, reference group, metric,
value, interval, n and ``people_affected``: the number of the group's high-need people missing
from the flagged (or moved, or still missing at twice the capacity) per 100,000 of the audited
population, from published numbers only (shares of the flagged and of the highest need and the
published number flagged, all after disclosure control).

Order: statements on the equity attributes (``AuditSpec.equity``; by default NHS England's
Core20PLUS5: deprivation, ethnicity and their intersection) that say who is under-served or whose
need is under-stated and leave people out, most people affected first; then what capacity and
allocation would change for the first two of them (these keep up to a third of the places); then
equity statements that leave nobody out at the primary operating point; then label gaps on other
attributes. Age and sex, clinical risk factors as well as protected
characteristics, reach the headline only when named as equity attributes or when the effect is a
label gap. The same effect in several models (same attribute, group, kind and mechanism) is one
statement, led by the model with the most people affected, naming the others.

Need measures: each statement names the need it is measured against. ``need_true_next`` is ground
truth, known only on a synthetic cohort; any other need target (``n_conditions_next``) is a recorded
proxy, which carries the access gap it is meant to detect (Obermeyer et al. used a count of
conditions). Where both are audited, a label or base-rate statement gives the same comparison
against the other measure beside it.

This module ranks and chooses the statements; the mechanisms are in :mod:`~phm_audit.report._mechanism`,
the candidates (combined across models, capacity, allocation) in :mod:`~phm_audit.report._candidates` and
the words in :mod:`~phm_audit.report._statements`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from phm_audit.audit._result import AuditResult
from phm_audit.report._candidates import Candidate, allocation, capacity, combine, distinct
from phm_audit.report._control import DisclosureControl
from phm_audit.report._findings import findings, one_per_effect, primary_operating_point
from phm_audit.report._mechanism import (
    GROUND_TRUTH_TARGETS,
    TableIndex,
    label_kind,
    mechanism_of,
    model_label,
    shown,
)
from phm_audit.report._rules import Finding, FindingRules
from phm_audit.report._sentences import Words
from phm_audit.report._statements import Statement, statement

__all__ = [
    "GROUND_TRUTH_TARGETS",
    "MAX_STATEMENTS",
    "Statement",
    "headline",
    "headline_markdown",
    "model_label",
    "report_findings",
]

#: At most this many statements.
MAX_STATEMENTS = 12


def headline(
    result: AuditResult,
    cells: Sequence[Finding],
    *,
    max_statements: int = MAX_STATEMENTS,
    label_gap: float = 1.1,
    false_discovery_rate: float | None = 0.05,
) -> list[Statement]:
    """What the audit found, in at most ``max_statements`` statements (see the module documentation).

    Parameters
    ----------
    result : AuditResult
        The audit under disclosure control (the published numbers).
    cells : sequence of Finding
        Its graded cells, from :func:`~phm_audit.report._findings.findings` (not combined).
    max_statements : int, default 12
        Most statements.
    label_gap : float, default 1.1
        For a model trained on a recorded proxy of need: the need ratio against ground truth over the
        need ratio against its own label above which the label is the mechanism (``FindingRules.label_gap``).
    false_discovery_rate : float or None, default 0.05
        A comparison is shown where it is on the harmful side of parity and a discovery at this rate
        (its ``q_value``; ``FindingRules.false_discovery_rate``); None: where its interval excludes parity.

    Returns
    -------
    list of Statement
        Equity attributes' under-served and under-stated groups first, most people affected first;
        then capacity and allocation; then label gaps on other attributes.

    Examples
    --------
    >>> from phm_audit.synth import generate
    >>> from phm_audit.audit import AuditSpec, audit
    >>> from phm_audit.report import findings
    >>> cohort = generate("england", n=5_000, seed=1)
    >>> result = audit(cohort, {"prior_cost": cohort["cost_prior"].to_numpy()},
    ...                AuditSpec(attributes=["imd_quintile"], intersections=[], n_boot=20))
    >>> statements = headline(result, findings(result))
    >>> len(statements) <= 12 and all(s.kind in ("under_served", "under_stated", "capacity", "allocation")
    ...                                for s in statements)
    True
    """
    table = result.table()
    if table.empty or not cells:
        return []
    fdr = false_discovery_rate
    level = float(result.spec.confidence)
    primary = primary_operating_point(result)
    population = result.cohort.get("n")
    population = float(population) if isinstance(population, int | float) and population else math.nan
    index = TableIndex(table)
    equity = set(result.spec.equity)
    model_labels = {str(m["name"]): model_label(m) for m in result.models}
    labels = {name: label_kind(label, result.spec) for name, label in model_labels.items()}
    words = Words.of(result)
    by_cell: dict[tuple[str, ...], Finding] = {}
    for f in cells:
        for op in (f.operating_point, "*") if f.analysis == "calibration" else (f.operating_point,):
            if f.value is None and f.reason:
                by_cell.setdefault((f.model, f.metric, f.attribute, f.group, op), f)
            else:
                by_cell[(f.model, f.metric, f.attribute, f.group, op)] = f
    calib_ops = {(f.model, f.attribute, f.group): f.operating_point for f in cells if f.analysis == "calibration"}

    def shortfall(model: str, attribute: str, group: str) -> float:
        hs = index.get(model, "fairness", attribute, group, primary, "high_need_share")
        fs = index.get(model, "fairness", attribute, group, primary, "flagged_share")
        if hs[0] is None or fs[0] is None or fs[3] is None or not math.isfinite(population):
            return 0.0
        return max(hs[0] - fs[0], 0.0) * fs[3] / population * 1e5

    candidates: list[Candidate] = []
    seen_groups = {(f.model, f.attribute, f.group) for f in cells if f.analysis in ("fairness", "calibration")}
    for model, attribute, group in sorted(seen_groups):
        op = calib_ops.get((model, attribute, group), "")
        lg = by_cell.get((model, "label_gap_at_equal_score", attribute, group, op))
        nr = by_cell.get((model, "need_ratio_at_equal_score", attribute, group, op))
        args = (model_labels.get(model), lg, nr, index, model, attribute, group, op, result.spec)
        mechanism = mechanism_of(*args, label_gap, fdr)
        sel = by_cell.get((model, "flagged_to_high_need_ratio", attribute, group, primary))
        people = shortfall(model, attribute, group)
        on_equity = attribute in equity
        if not (on_equity or mechanism == "label"):
            continue
        if sel is not None and shown(sel, fdr):
            # why a group already found under-served is: its comparison at equal score needs to be a
            # discovery, not also beyond the flag threshold (which is for reporting it on its own)
            why = mechanism or mechanism_of(*args, label_gap, fdr, strict=False)
            candidates.append(Candidate("under_served", why, model, attribute, group, people, sel.effect, sel))
            mechanism = why
        elif mechanism is not None:
            lead = lg if mechanism == "label" and labels.get(model) != "need" else nr
            if lead is not None:
                candidates.append(
                    Candidate("under_stated", mechanism, model, attribute, group, people, lead.effect, lead)
                )
        if candidates and candidates[-1].model == model and candidates[-1].group == group:
            candidates[-1].extra["cost_label"] = mechanism == "label" and labels.get(model) != "need"
            candidates[-1].extra["label"] = model_labels.get(model)
    candidates = [c for c in candidates if distinct(c, by_cell, result, fdr)]

    def tier(c: Candidate) -> int:
        if c.kind in ("capacity", "allocation"):
            return 1
        if c.attribute in equity:
            return 0 if c.people > 0 else 2
        return 3

    def rank(c: Candidate) -> tuple[Any, ...]:
        return (tier(c), -round(c.people, 6), -c.effect, c.model, c.attribute, c.group)

    statements = sorted(combine(candidates), key=rank)
    # capacity and allocation for the first effects on the equity attributes that leave people out
    follow: list[Candidate] = []
    for c in [s for s in statements if s.attribute in equity and s.people > 0][:2]:
        cap = capacity(c, index, primary, population, result.operating_points)
        if cap is not None:
            follow.append(cap)
        alloc = allocation(c, index, primary, population, labels)
        if alloc is not None:
            follow.append(alloc)
    # what capacity and allocation would change keeps its places: the other statements fill the rest
    follow = follow[: max(max_statements // 3, 0)]
    ranked = sorted(statements, key=rank)
    leading = [c for c in ranked if tier(c) == 0][: max(max_statements - len(follow), 0)]
    taken = {id(c) for c in leading}
    chosen = sorted(leading + follow, key=rank) + [c for c in ranked if id(c) not in taken]
    out = [statement(c, result, index, level, primary, by_cell, words) for c in chosen[:max_statements]]
    return out


def headline_markdown(statements: Sequence[Statement]) -> list[str]:
    """The headline as Markdown lines: a heading and one numbered line per statement."""
    lines = ["## What this audit found", ""]
    if not statements:
        lines += [
            "No group of the equity attributes is graded as under-served, and no score is graded as "
            "under-stating a group's need, after the control of false discoveries. The detail follows.",
            "",
        ]
        return lines
    for i, s in enumerate(statements, 1):
        tag = f"[{s.grade}" + (f", {s.mechanism.replace('_', ' ')}" if s.mechanism else "") + "]"
        lines.append(f"{i}. **{tag}** {s.statement}")
    lines.append("")
    return lines


def report_findings(
    published: AuditResult, rules: FindingRules | None = None, disclosure: DisclosureControl | None = None
) -> tuple[list[Finding], list[Statement]]:
    """The findings and the headline a report publishes, from the audit under disclosure control.

    Every cell is graded once (:func:`~phm_audit.report._findings.findings`, with the control of
    false discoveries over all of them); the report lists one finding per effect
    (:func:`~phm_audit.report._findings.one_per_effect`) and heads them with :func:`headline`. The
    ``--fail-on`` gate of ``phm-audit audit`` reads these same findings back from ``audit.json``.

    Parameters
    ----------
    published : AuditResult
        The audit under disclosure control.
    rules : FindingRules, optional
        Default ``FindingRules()``.
    disclosure : DisclosureControl, optional
        The disclosure control applied to ``published`` (its threshold bounds the flags of suppressed
        counts); default ``DisclosureControl()``.

    Returns
    -------
    (findings, statements) : tuple of lists
    """
    rules = FindingRules() if rules is None else rules
    cells = findings(published, rules, disclosure=disclosure)
    return one_per_effect(cells, primary_operating_point(published)), headline(
        published, cells, label_gap=rules.label_gap, false_discovery_rate=rules.false_discovery_rate
    )
