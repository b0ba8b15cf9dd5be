"""Candidates for the headline: an effect on a group in one model, combined across models, and what capacity
and allocation would change for it (see :mod:`phm_audit.report._headline`)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from phm_audit.audit._result import AuditResult
from phm_audit.report._mechanism import TableIndex, is_proxy, shown
from phm_audit.report._rules import Finding
from phm_audit.report._sentences import point_info
from phm_audit.report._suppression import group_structure

__all__ = ["Candidate", "allocation", "beside_of", "capacity", "combine", "distinct", "main_need_cell"]


@dataclass
class Candidate:
    """One effect on a group in one model that the headline may state."""

    kind: str
    mechanism: str | None
    model: str
    attribute: str
    group: str
    people: float
    effect: float
    finding: Finding
    extra: dict[str, Any] = field(default_factory=dict)


def distinct(c: Candidate, by_cell: Mapping[tuple[str, ...], Finding], result: AuditResult, fdr: float | None) -> bool:
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
        supported = supported or shown(part, fdr)
    return supported


def combine(candidates: list[Candidate]) -> list[Candidate]:
    """One candidate per (kind, attribute, group, mechanism), led by the most people affected."""
    groups: dict[tuple[Any, ...], list[Candidate]] = {}
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


def capacity(
    c: Candidate, index: TableIndex, primary: str, population: float, points: Mapping[str, Mapping[str, Any]]
) -> Candidate | None:
    """The group's and the reference group's unmet need at twice the capacity, from the sweep.

    The share of the population each operating point flags is read from ``points``
    (``AuditResult.operating_points``); only a share (``top_pct``) can be doubled."""
    now = point_info(primary, points).get("fraction")
    ops = index.sweep_ops.get(c.model, [])
    if now is None or not ops:
        return None
    fractions = {op: point_info(op, points).get("fraction") for op in ops}
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
    out = Candidate("capacity", "capacity", c.model, c.attribute, c.group, people, 0.0, c.finding)
    out.extra = {"op": target, "g_now": g_now, "r_now": r_now, "g_then": g_then, "r_then": r_then, "cause": c}
    return out


def allocation(
    c: Candidate, index: TableIndex, primary: str, population: float, labels: Mapping[str, str | None]
) -> Candidate | None:
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
    out = Candidate("allocation", "allocation", c.model, c.attribute, c.group, abs(moved), 0.0, c.finding)
    out.extra = {"now": now, "by_need": by_need, "alternatives": alternatives, "total": total, "moved": moved}
    return out


def beside_of(
    c: Candidate, result: AuditResult, index: TableIndex, by_cell: Mapping[tuple[str, ...], Finding]
) -> dict[str, Any] | None:
    """The same comparison against the other need measure, where both are audited."""
    f = c.finding
    if f.analysis != "calibration" and c.mechanism not in ("label", "base_rate"):
        return None
    metric = "label_gap_at_equal_score" if c.extra.get("cost_label") else "need_ratio_at_equal_score"
    main = main_need_cell(c, by_cell)
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
            "need_is_proxy": is_proxy(target),
            "metric": metric,
            "value": v,
            "ci_low": lo,
            "ci_high": hi,
        }
    return None


def main_need_cell(c: Candidate, by_cell: Mapping[tuple[str, ...], Finding]) -> Finding | None:
    if c.finding.analysis == "calibration":
        return c.finding
    metric = "label_gap_at_equal_score" if c.extra.get("cost_label") else "need_ratio_at_equal_score"
    return by_cell.get((c.model, metric, c.attribute, c.group, "*"))
