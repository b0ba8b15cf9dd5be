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
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from phm_audit.audit._result import AuditResult
from phm_audit.report._disclosure import group_structure
from phm_audit.report._findings import (
    Finding,
    describe_group,
    describe_operating_point,
    primary_operating_point,
)

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
#: Need targets that are ground truth (synthetic cohorts only); every other need target is a recorded proxy.
GROUND_TRUTH_TARGETS = ("need_true_next",)

_FIX = {
    "label": "train the score on a measure of need, not cost (a need label)",
    "proxy_label": "train the score on a measure of need recorded alike in every group, not on this recorded proxy",
    "base_rate": "calibrate the score within groups, or set a group-aware threshold",
}
_EVIDENCE = {
    "under_served": "bias",
    "under_stated": "calibration",
    "capacity": "thresholds",
    "allocation": "thresholds",
}


@dataclass(frozen=True)
class Statement:
    """One statement of the headline.

    Attributes
    ----------
    statement : str
        The statement in plain words, with its interval, n and people affected.
    grade : {"flag", "review", "ok"}
        Grade of the finding the statement rests on.
    model, attribute, group, reference, metric : str
        Where the number comes from (the lead model, where several show the effect).
    value, ci_low, ci_high : float or None
        The number and its interval.
    n : int or None
        People in the group (after disclosure control).
    people_affected : float or None
        The group's high-need people missing from the flagged (or moved, or still missing), per
        100,000 of the audited population.
    mechanism : {"label", "base_rate", "capacity", "allocation"} or None
    kind : str
        ``under_served``, ``under_stated``, ``capacity`` or ``allocation``.
    target : str
        The need measure.
    need_is_proxy : bool
        Whether the need measure is a recorded proxy (not ground truth).
    models : tuple of str
        Every model showing the effect, the lead first.
    fix : str
        What would fix it (empty where no mechanism is known).
    evidence : str
        Id of the report section holding the detail (``index.html#<evidence>``).
    beside : dict or None
        The same comparison against the other need measure (``target``, ``need_is_proxy``,
        ``metric``, ``value``, ``ci_low``, ``ci_high``, ``grade``), where both are audited.
    """

    statement: str
    grade: str
    model: str
    attribute: str
    group: str
    reference: str
    metric: str
    value: float | None
    ci_low: float | None
    ci_high: float | None
    n: int | None
    people_affected: float | None
    mechanism: str | None
    kind: str
    target: str = ""
    need_is_proxy: bool = False
    models: tuple[str, ...] = ()
    fix: str = ""
    evidence: str = ""
    beside: dict[str, Any] | None = None
    _rank: tuple[float, ...] = field(default=(), repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        out = asdict(self)
        out.pop("_rank")
        out["models"] = list(self.models)
        return out


def _clean(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _num(x: float | None) -> str:
    return "undefined" if x is None else f"{x:.2f}"


def _pct(x: float | None) -> str:
    if x is None:
        return "undefined"
    return f"{100 * x:.0f}%" if abs(x) >= 0.095 else f"{100 * x:.1f}%"


def _ci(lo: float | None, hi: float | None, level: float, fmt: Any = _num) -> str:
    if lo is None or hi is None:
        return "no interval"
    return f"{100 * level:g}% CI {fmt(lo)} to {fmt(hi)}"


def _n(n: int | None) -> str:
    return "n suppressed" if n is None else f"n = {n:,}"


def _points(x: float) -> str:
    """A difference of two rates in percentage points, signed, with no "-0" or "+0" for a difference under 0.5."""
    points = round(100 * x)
    return "0" if points == 0 else f"{points:+d}"


def _per_100k(x: float) -> str:
    return f"{x:,.0f}" if x >= 10 else f"{x:.1f}"


def model_label(model: Mapping[str, Any]) -> str | None:
    """The label a model was trained on (or a rule ranks by): the label in its name
    (``actuarial_cost[n_conditions_next]``), its ``label`` (:class:`~phm_audit.audit.ScoredModel`), or
    its target; None if not known.

    Examples
    --------
    >>> model_label({"name": "prior_cost", "kind": "rule", "target": None, "label": "cost_next"})
    'cost_next'
    >>> model_label({"name": "actuarial_cost[n_conditions_next]", "kind": "clinical", "target": None})
    'n_conditions_next'
    >>> model_label({"name": "mine", "kind": "supplied", "target": None}) is None
    True
    """
    name = str(model.get("name", ""))
    m = re.fullmatch(r"(.+)\[(.+)\]", name)
    if m:
        return m.group(2)
    for key in ("label", "target"):
        if model.get(key):
            return str(model[key])
    return None


def _label_kind(label: str | None, cost_target: str) -> str | None:
    """``cost`` for a cost label (the spec's cost target, or any label naming a cost), ``need`` otherwise."""
    if label is None:
        return None
    return "cost" if label == cost_target or "cost" in label else "need"


def _proxy(target: str) -> bool:
    return target not in GROUND_TRUTH_TARGETS


def _measure(target: str) -> str:
    return (
        f"{target}, ground truth known only on a synthetic cohort"
        if not _proxy(target)
        else (f"{target}, a recorded proxy of need")
    )


class _Table:
    """Single values of the published tidy table, by model, analysis, attribute, group, operating point,
    metric and target."""

    def __init__(self, table: pd.DataFrame) -> None:
        analysis, metric = table["analysis"], table["metric"]
        wanted = (
            ((analysis == "fairness") & metric.isin(["flagged_share", "high_need_share"]))
            | ((analysis == "calibration") & metric.str.endswith("_at_equal_score"))
            | ((analysis == "thresholds") & (metric == "unmet_need_rate"))
            | ((analysis == "allocation") & metric.str.startswith("flagged_share"))
        )
        sub = table[wanted]
        keys = sub[["model", "analysis", "attribute", "group", "operating_point", "metric", "target"]].astype(str)
        values = sub["value"].to_numpy(dtype=np.float64)
        lows = sub["ci_low"].to_numpy(dtype=np.float64)
        highs = sub["ci_high"].to_numpy(dtype=np.float64)
        ns = sub["n"].to_numpy(dtype=np.float64, na_value=np.nan)
        self.rows: dict[tuple[str, ...], tuple[float | None, float | None, float | None, int | None]] = {}
        for key, v, lo, hi, n in zip(
            map(tuple, keys.to_numpy()), values.tolist(), lows.tolist(), highs.tolist(), ns.tolist(), strict=True
        ):
            row = (_clean(v), _clean(lo), _clean(hi), None if not math.isfinite(n) else int(n))
            self.rows[key] = row
            self.rows.setdefault((*key[:6], "*"), row)
        th = sub[sub["analysis"] == "thresholds"]
        self.sweep_ops: dict[str, list[str]] = {
            str(model): list(dict.fromkeys(map(str, ops)))
            for model, ops in th.groupby("model", sort=False)["operating_point"]
        }

    def get(
        self, model: str, analysis: str, attribute: str, group: str, op: str, metric: str, target: str = "*"
    ) -> tuple[float | None, float | None, float | None, int | None]:
        return self.rows.get((model, analysis, attribute, group, op, metric, target), (None, None, None, None))


def _fraction(op: str) -> float | None:
    m = re.fullmatch(r"top_([\d.]+)pct", op)
    return float(m.group(1)) / 100 if m else None


@dataclass
class _Candidate:
    kind: str
    mechanism: str | None
    model: str
    attribute: str
    group: str
    people: float
    effect: float
    finding: Finding
    extra: dict[str, Any] = field(default_factory=dict)


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
    index = _Table(table)
    equity = set(result.spec.equity)
    model_labels = {str(m["name"]): model_label(m) for m in result.models}
    labels = {name: _label_kind(label, result.spec.cost_target) for name, label in model_labels.items()}
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

    candidates: list[_Candidate] = []
    seen_groups = {(f.model, f.attribute, f.group) for f in cells if f.analysis in ("fairness", "calibration")}
    for model, attribute, group in sorted(seen_groups):
        op = calib_ops.get((model, attribute, group), "")
        lg = by_cell.get((model, "label_gap_at_equal_score", attribute, group, op))
        nr = by_cell.get((model, "need_ratio_at_equal_score", attribute, group, op))
        args = (model_labels.get(model), lg, nr, index, model, attribute, group, op, result.spec.cost_target)
        mechanism = _mechanism(*args, label_gap, fdr)
        sel = by_cell.get((model, "flagged_to_high_need_ratio", attribute, group, primary))
        people = shortfall(model, attribute, group)
        on_equity = attribute in equity
        if not (on_equity or mechanism == "label"):
            continue
        if sel is not None and _shown(sel, fdr):
            # why a group already found under-served is: its comparison at equal score needs to be a
            # discovery, not also beyond the flag threshold (which is for reporting it on its own)
            why = mechanism or _mechanism(*args, label_gap, fdr, strict=False)
            candidates.append(_Candidate("under_served", why, model, attribute, group, people, sel.effect, sel))
            mechanism = why
        elif mechanism is not None:
            lead = lg if mechanism == "label" and labels.get(model) != "need" else nr
            if lead is not None:
                candidates.append(
                    _Candidate("under_stated", mechanism, model, attribute, group, people, lead.effect, lead)
                )
        if candidates and candidates[-1].model == model and candidates[-1].group == group:
            candidates[-1].extra["cost_label"] = mechanism == "label" and labels.get(model) != "need"
            candidates[-1].extra["label"] = model_labels.get(model)
    candidates = [c for c in candidates if _distinct(c, by_cell, result, fdr)]

    def tier(c: _Candidate) -> int:
        if c.kind in ("capacity", "allocation"):
            return 1
        if c.attribute in equity:
            return 0 if c.people > 0 else 2
        return 3

    def rank(c: _Candidate) -> tuple[Any, ...]:
        return (tier(c), -round(c.people, 6), -c.effect, c.model, c.attribute, c.group)

    statements = sorted(_combine(candidates), key=rank)
    # capacity and allocation for the first effects on the equity attributes that leave people out
    follow: list[_Candidate] = []
    for c in [s for s in statements if s.attribute in equity and s.people > 0][:2]:
        cap = _capacity(c, index, primary, population)
        if cap is not None:
            follow.append(cap)
        alloc = _allocation(c, index, primary, population, labels)
        if alloc is not None:
            follow.append(alloc)
    # what capacity and allocation would change keeps its places: the other statements fill the rest
    follow = follow[: max(max_statements // 3, 0)]
    ranked = sorted(statements, key=rank)
    leading = [c for c in ranked if tier(c) == 0][: max(max_statements - len(follow), 0)]
    taken = {id(c) for c in leading}
    chosen = sorted(leading + follow, key=rank) + [c for c in ranked if id(c) not in taken]
    out = [_statement(c, result, index, level, primary, by_cell) for c in chosen[:max_statements]]
    return out


def _shown(f: Finding | None, fdr: float | None) -> bool:
    """A comparison on the harmful side of parity that is a discovery (or, without multiplicity control,
    whose interval excludes parity): the headline reports it, whatever its size; its grade says how large."""
    if f is None or not f.adverse or f.value is None or f.ci_low is None or f.ci_high is None:
        return False
    if fdr is None:
        return f.ci_low > _parity(f) or f.ci_high < _parity(f)
    return f.q_value is not None and f.q_value <= fdr and (f.ci_low > _parity(f) or f.ci_high < _parity(f))


def _parity(f: Finding) -> float:
    return 0.0 if f.metric.endswith(("_difference", "_gap")) else 1.0


def _mechanism(
    label: str | None,
    lg: Finding | None,
    nr: Finding | None,
    index: _Table,
    model: str,
    attribute: str,
    group: str,
    op: str,
    cost_target: str,
    label_gap: float,
    fdr: float | None,
    *,
    strict: bool = True,
) -> str | None:
    """``label``, ``base_rate`` or None for a model's calibration cells of one group (see the module docs).

    ``strict``: a mechanism needs its comparison graded flag (beyond the rule's threshold and a
    discovery); otherwise, for a group already found under-served, a discovery on the harmful side
    of parity at least half-way to the threshold, on a group of at least
    ``FindingRules.min_calibration_n`` people, is enough.
    """

    def evidence(f: Finding | None) -> bool:
        if f is None:
            return False
        if strict:
            return f.grade == "flag" and f.adverse
        # a discovery at least half-way to the flag threshold (a label gap of 1.05 for the default 1.1)
        return _shown(f, fdr) and not f.reason and f.effect >= 0.5

    lg_flag, nr_flag = evidence(lg), evidence(nr)

    def holds_one(lo: float | None, hi: float | None) -> bool:
        return lo is not None and hi is not None and lo <= 1 <= hi

    kind = _label_kind(label, cost_target)
    if kind == "cost":
        return "label" if lg_flag else None
    if kind == "need" and label is not None:
        if not nr_flag or nr is None:
            return None
        if label in GROUND_TRUTH_TARGETS or nr.target == label:
            return "base_rate"
        # a recorded proxy as the label, need measured otherwise (ground truth): the label is the mechanism
        # where the score is calibrated to its own label across groups (its ratio against the label holds 1)
        own = index.get(model, "calibration", attribute, group, op, "need_ratio_at_equal_score", label)
        if own[0] is None or nr.value is None or nr.ci_low is None or own[2] is None:
            return None
        # the part of the need ratio the label accounts for: need over the label at equal score, beyond the
        # flag threshold of a label gap, with the two intervals apart
        if nr.value / own[0] > label_gap and own[2] < nr.ci_low:
            return "label"
        return "base_rate"
    if lg_flag and lg is not None:
        cr = index.get(model, "calibration", attribute, group, op, "cost_ratio_at_equal_score")
        if holds_one(cr[1], cr[2]):
            return "label"
    if nr_flag and lg is not None and holds_one(lg.ci_low, lg.ci_high):
        return "base_rate"
    return None


def _distinct(
    c: _Candidate, by_cell: Mapping[tuple[str, ...], Finding], result: AuditResult, fdr: float | None
) -> bool:
    """Whether an intersection's effect is its own. A single attribute's always is. An intersection's cell
    must refine an effect of one of its components: at least one component group (not its attribute's
    reference group) shows the same comparison on the harmful side (a discovery), and the cell's effect is
    further from parity than every component's (a reference component stands at parity). The many small
    cells of an intersection have wide, and for the smallest somewhat optimistic, intervals: on no_gap, a
    cell alone gave chance label gaps in some seeds."""
    # an intersection's parts as the audit recorded them (never split out of a name a group may fool)
    structure = group_structure(result.groups).get(c.attribute)
    parts = None if structure is None else structure[1].get(c.group)
    if structure is None or parts is None:
        return True
    attributes, groups = structure[0], parts
    f = c.finding
    if f.value is None:
        return False
    low = f.metric == "flagged_to_high_need_ratio"
    supported = False
    for attribute, group in zip(attributes, groups, strict=True):
        if str(result.groups.get(attribute, {}).get("reference", "")) == group:
            continue
        op = f.operating_point if f.analysis != "calibration" else "*"
        part = by_cell.get((c.model, f.metric, attribute, group, op))
        if part is None or part.value is None:
            continue
        if (low and part.value <= f.value) or (not low and part.value >= f.value):
            return False
        supported = supported or _shown(part, fdr)
    return supported


def _combine(candidates: list[_Candidate]) -> list[_Candidate]:
    """One candidate per (kind, attribute, group, mechanism), led by the most people affected."""
    groups: dict[tuple[Any, ...], list[_Candidate]] = {}
    for c in candidates:
        key = (c.kind, c.attribute, c.group, c.mechanism, bool(c.extra.get("cost_label")))
        groups.setdefault(key, []).append(c)
    out = []
    for members in groups.values():
        members.sort(key=lambda c: (-round(c.people, 6), -c.effect, c.model))
        lead = members[0]
        lead.extra["others"] = [m.model for m in members[1:]]
        out.append(lead)
    return out


def _capacity(c: _Candidate, index: _Table, primary: str, population: float) -> _Candidate | None:
    """The group's and the reference group's unmet need at twice the capacity, from the sweep."""
    now = _fraction(primary)
    ops = index.sweep_ops.get(c.model, [])
    if now is None or not ops:
        return None
    fractions = {op: _fraction(op) for op in ops}
    later = [op for op, f in fractions.items() if f is not None and f > now * 1.5]
    if not later:
        return None
    target = min(later, key=lambda op: abs((fractions[op] or 0) - 2 * now))
    ref = c.finding.reference
    g_now = index.get(c.model, "thresholds", c.attribute, c.group, primary, "unmet_need_rate")
    r_now = index.get(c.model, "thresholds", c.attribute, ref, primary, "unmet_need_rate")
    g_then = index.get(c.model, "thresholds", c.attribute, c.group, target, "unmet_need_rate")
    r_then = index.get(c.model, "thresholds", c.attribute, ref, target, "unmet_need_rate")
    if any(x[0] is None for x in (g_now, r_now, g_then, r_then)) or g_then[3] is None:
        return None
    gap_then = (g_then[0] or 0.0) - (r_then[0] or 0.0)
    people = max(gap_then, 0.0) * g_then[3] / population * 1e5 if math.isfinite(population) else 0.0
    out = _Candidate("capacity", "capacity", c.model, c.attribute, c.group, people, 0.0, c.finding)
    out.extra = {"op": target, "g_now": g_now, "r_now": r_now, "g_then": g_then, "r_then": r_then, "cause": c}
    return out


def _allocation(
    c: _Candidate, index: _Table, primary: str, population: float, labels: Mapping[str, str | None]
) -> _Candidate | None:
    """The people moved into the group if the same places were given by need, or by a need-trained model."""
    now = index.get(c.model, "allocation", c.attribute, c.group, primary, "flagged_share")
    by_need = index.get(c.model, "allocation", c.attribute, c.group, primary, "flagged_share_if_by_need")
    total = index.get(c.model, "fairness", c.attribute, c.group, primary, "flagged_share")[3]
    if now[0] is None or by_need[0] is None or total is None or not math.isfinite(population):
        return None
    alternatives = []
    for name, kind in labels.items():
        if kind != "need" or name == c.model:
            continue
        alt = index.get(c.model, "allocation", c.attribute, c.group, primary, f"flagged_share_if_by_{name}")
        if alt[0] is not None:
            alternatives.append((name, alt))
    moved = (by_need[0] - now[0]) * total / population * 1e5
    out = _Candidate("allocation", "allocation", c.model, c.attribute, c.group, abs(moved), 0.0, c.finding)
    out.extra = {"now": now, "by_need": by_need, "alternatives": alternatives, "total": total, "moved": moved}
    return out


def _beside(
    c: _Candidate, result: AuditResult, index: _Table, by_cell: Mapping[tuple[str, ...], Finding]
) -> dict[str, Any] | None:
    """The same comparison against the other need measure, where both are audited."""
    f = c.finding
    if f.analysis != "calibration" and c.mechanism not in ("label", "base_rate"):
        return None
    metric = "label_gap_at_equal_score" if c.extra.get("cost_label") else "need_ratio_at_equal_score"
    main = _main_need_cell(c, by_cell)
    if main is None:
        return None
    for target in result.spec.need_targets:
        if target == main.target:
            continue
        v, lo, hi, _ = index.get(c.model, "calibration", c.attribute, c.group, main.operating_point, metric, target)
        if v is None:
            continue
        return {
            "target": target,
            "need_is_proxy": _proxy(target),
            "metric": metric,
            "value": v,
            "ci_low": lo,
            "ci_high": hi,
        }
    return None


def _main_need_cell(c: _Candidate, by_cell: Mapping[tuple[str, ...], Finding]) -> Finding | None:
    if c.finding.analysis == "calibration":
        return c.finding
    metric = "label_gap_at_equal_score" if c.extra.get("cost_label") else "need_ratio_at_equal_score"
    return by_cell.get((c.model, metric, c.attribute, c.group, "*"))


def _why(c: _Candidate, level: float, by_cell: Mapping[tuple[str, ...], Finding], beside: Any) -> str:
    cell = _main_need_cell(c, by_cell)
    if c.mechanism is None or cell is None:
        return (
            " Why: not settled here (the need ratio and the label gap at equal score are not both conclusive); "
            "see the calibration detail."
        )
    rgrp = describe_group(c.attribute, cell.reference)
    if c.mechanism == "label" and c.extra.get("cost_label"):
        text = (
            f" Why: the label. At the same {c.model} score, the need ({_measure(cell.target)}) of these people "
            f"relative to people {rgrp} is {_num(cell.value)} times their cost relative to them (label gap, "
            f"{_ci(cell.ci_low, cell.ci_high, level)}): a cost label under-states their need."
        )
    elif c.mechanism == "label":
        text = (
            f" Why: the label. {c.model} is trained on {c.extra.get('label')}, a recorded proxy of need: at the same "
            f"score these people have {abs((cell.value or 1) - 1) * 100:.0f}% more need ({_measure(cell.target)}) "
            f"than people {rgrp} (need ratio {_num(cell.value)}, {_ci(cell.ci_low, cell.ci_high, level)}), far more "
            "than against its own label (below): the recorded measure under-states their need."
        )
    else:
        text = (
            f" Why: base rate and noise. At the same {c.model} score these people have "
            f"{abs((cell.value or 1) - 1) * 100:.0f}% more need ({_measure(cell.target)}) than people {rgrp} "
            f"(need ratio {_num(cell.value)}, {_ci(cell.ci_low, cell.ci_high, level)}), as a noisy score of a group "
            "with more need shows; the score is not trained on cost"
            + (f" (its label is {c.extra.get('label')})." if c.extra.get("label") else ".")
        )
    if beside:
        name = "label gap" if beside["metric"] == "label_gap_at_equal_score" else "need ratio"
        text += (
            f" Against {_measure(beside['target'])}, the {name} is {_num(beside['value'])} "
            f"({_ci(beside['ci_low'], beside['ci_high'], level)})."
        )
    return text + f" What would fix it: {_FIX[_fix_key(c)]}."


def _gap_change(now: float, then: float, tol: float = 0.005) -> str:
    """How a group's unmet-need gap to the reference group (group minus reference) moves with more places.

    >>> _gap_change(0.08, 0.03), _gap_change(0.03, 0.08), _gap_change(0.05, -0.01), _gap_change(0.0, -0.07)
    ('narrows', 'widens', 'closes', 'turns in their favour')
    """
    if then < -tol:
        return "stays in their favour" if now < -tol else ("turns in their favour" if now <= tol else "closes")
    if now > tol >= then:
        return "closes"
    if abs(then) < abs(now) - tol:
        return "narrows"
    return "widens" if abs(then) > abs(now) + tol else "stays"


def _fix_key(c: _Candidate) -> str:
    if c.mechanism == "label" and not c.extra.get("cost_label"):
        return "proxy_label"
    return c.mechanism or ""


def _also(c: _Candidate) -> str:
    others = list(c.extra.get("others", []))
    if not others:
        return ""
    shown = ", ".join(others[:4]) + (f" and {len(others) - 4} more" if len(others) > 4 else "")
    return f" The same in {shown}."


def _statement(
    c: _Candidate,
    result: AuditResult,
    index: _Table,
    level: float,
    primary: str,
    by_cell: Mapping[tuple[str, ...], Finding],
) -> Statement:
    f = c.finding
    grp = describe_group(c.attribute, c.group)
    rgrp = describe_group(c.attribute, f.reference)
    op = describe_operating_point(primary)
    people = _per_100k(c.people)
    metric, value, lo, hi = f.metric, f.value, f.ci_low, f.ci_high
    target = ""
    beside = None
    if c.kind == "under_served":
        hs = index.get(c.model, "fairness", c.attribute, c.group, primary, "high_need_share")[0]
        fs = index.get(c.model, "fairness", c.attribute, c.group, primary, "flagged_share")[0]
        beside = _beside(c, result, index, by_cell)
        cell = _main_need_cell(c, by_cell)
        target = cell.target if cell is not None else str(result.cohort.get("high_need_target") or "")
        text = (
            f"{c.model} under-serves people {grp}: at {op} of its scores they are {_pct(hs)} of those with the "
            f"highest need but {_pct(fs)} of those flagged (ratio {_num(value)}, {_ci(lo, hi, level)}; {_n(f.n)}), "
            f"about {people} high-need people per 100,000 of the population left out."
            + _why(c, level, by_cell, beside)
            + _also(c)
        )
    elif c.kind == "under_stated":
        beside = _beside(c, result, index, by_cell)
        target = f.target
        text = (
            f"{c.model} under-states the need of people {grp}"
            + (
                f" (about {people} high-need people per 100,000 of the population left out of {op})."
                if c.people > 0
                else f" (at {op} they are not flagged less than their share of the highest need)."
            )
            + _why(c, level, by_cell, beside)
            + f" ({_n(f.n)}.)"
            + _also(c)
        )
    elif c.kind == "capacity":
        e = c.extra
        cause: _Candidate = e["cause"]
        g_now, r_now, g_then, r_then = e["g_now"], e["r_now"], e["g_then"], e["r_then"]
        metric, value, lo, hi = "unmet_need_rate", g_then[0], g_then[1], g_then[2]
        gap_now = g_now[0] - r_now[0]
        gap_then = g_then[0] - r_then[0]
        change = _gap_change(gap_now, gap_then)
        text = (
            f"Capacity: with twice the places ({describe_operating_point(e['op'])} of {c.model} scores instead of "
            f"{op}), {_pct(g_then[0])} of people {grp} with the highest need would still not be flagged "
            f"({_ci(g_then[1], g_then[2], level, _pct)}), against {_pct(r_then[0])} of people {rgrp} "
            f"(now {_pct(g_now[0])} against {_pct(r_now[0])}): the gap {change} "
            f"({_points(gap_now)} to {_points(gap_then)} percentage points), "
            + (
                f"about {people} of their high-need people per 100,000 of the population still left out beyond "
                "the reference group's rate."
                + (
                    f" More places do not remove the cause ({cause.mechanism.replace('_', ' ')})."
                    if cause.mechanism
                    else ""
                )
                if c.people >= 0.05
                else "no more of their high-need people left out than the reference group's rate."
            )
        )
        target = str(result.cohort.get("high_need_target") or "")
        return _make(c, text, metric, value, lo, hi, g_then[3], target, "", None)
    else:
        e = c.extra
        now, by_need, moved = e["now"], e["by_need"], e["moved"]
        metric, value, lo, hi = "flagged_share_if_by_need", by_need[0], by_need[1], by_need[2]
        direction = "into" if moved >= 0 else "out of"
        alts = "".join(
            f"; by the need-trained {name}, {_pct(alt[0])} ({_ci(alt[1], alt[2], level, _pct)})"
            for name, alt in e["alternatives"][:2]
        )
        text = (
            f"Allocation: giving the same {e['total']:,} places by need instead of by {c.model} scores would move "
            f"about {people} people per 100,000 of the population {direction} the group of people {grp}: "
            f"{_pct(now[0])} of the flagged now, {_pct(by_need[0])} by need ({_ci(lo, hi, level, _pct)}){alts}."
        )
        target = str(result.cohort.get("high_need_target") or "")
        return _make(c, text, metric, value, lo, hi, f.n, target, "", None)
    fix = _FIX.get(_fix_key(c), "")
    return _make(c, text, metric, value, lo, hi, f.n, target, fix, beside)


def _make(
    c: _Candidate,
    text: str,
    metric: str,
    value: float | None,
    lo: float | None,
    hi: float | None,
    n: int | None,
    target: str,
    fix: str,
    beside: dict[str, Any] | None,
) -> Statement:
    f = c.finding
    return Statement(
        statement=text,
        grade=f.grade,
        model=c.model,
        attribute=c.attribute,
        group=c.group,
        reference=f.reference,
        metric=metric,
        value=_clean(value),
        ci_low=_clean(lo),
        ci_high=_clean(hi),
        n=n,
        people_affected=round(float(c.people), 1),
        mechanism=c.mechanism,
        kind=c.kind,
        target=target,
        need_is_proxy=bool(target) and _proxy(target),
        models=(c.model, *c.extra.get("others", [])) if c.kind in ("under_served", "under_stated") else (c.model,),
        fix=fix,
        evidence=_EVIDENCE[c.kind],
        beside=beside,
    )


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


def report_findings(published: AuditResult, rules: Any = None) -> tuple[list[Finding], list[Statement]]:
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

    Returns
    -------
    (findings, statements) : tuple of lists
    """
    from phm_audit.report._findings import FindingRules, findings, one_per_effect

    cells = findings(published, FindingRules() if rules is None else rules)
    rules = FindingRules() if rules is None else rules
    return one_per_effect(cells, primary_operating_point(published)), headline(
        published, cells, label_gap=rules.label_gap, false_discovery_rate=rules.false_discovery_rate
    )
