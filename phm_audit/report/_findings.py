"""Graded findings in plain words: ``flag``, ``review`` or ``ok``, by documented, configurable rules.

Each rule reads one metric of the audit's tidy table, per model, attribute, group (never the
reference group) and operating point, and grades it against parity with the reference group:

``flag``
    The effect is at least as large as the rule's threshold *and* the whole confidence interval
    lies on the harmful side of parity. Where disclosure control suppresses a group's flagged
    count (1 to 7 people), the share ratio and the tpr difference are bounded instead: with at
    most 7 flagged, the group's share of the flagged (or of its high-need members flagged) is at
    most 7 over the published total; when that bound is beyond the threshold and an exact
    (Clopper-Pearson) upper confidence bound of 7 out of the total, set against the lower end of
    the comparison's interval, still lies on the harmful side of parity, the finding is a flag
    that says "fewer than 8".

``review``
    The interval excludes parity but the effect is smaller than the threshold (in either
    direction); or the effect reaches the threshold but the interval is wide enough to include
    parity, or there is no interval (``FindingRules.review_uncertain``); or the value is not
    defined (a group too small, no events, suppressed by disclosure control), with its reason.
``ok``
    Otherwise: the interval includes parity and the effect is below the threshold.

The rules and their defaults (see :class:`FindingRules`):

========================================  ==============  ================================================
metric (analysis)                         harmful side    flag when
========================================  ==============  ================================================
``flagged_to_high_need_ratio`` (fairness) below 1         < 0.8, interval below 1
``selection_ratio_at_equal_need``         below 1         < 0.8, interval below 1
``tpr_difference`` (fairness)             below 0         <= -0.10 (10 points), interval below 0
``need_ratio_at_equal_score``             above 1         > 1.1, interval above 1
``label_gap_at_equal_score``              above 1         > 1.1, interval above 1
``unmet_need_gap`` (allocation)           above 0         >= 0.10, interval above 0 (only where the
                                                          fairness tpr difference is absent)
``refused_rate_ratio`` (referral)         above 1         > 1.25, interval above 1
========================================  ==============  ================================================

Findings are sorted flags first, then reviews, then ok; within a grade, adverse effects (on the
harmful side of parity) come first, largest effect first, where the effect is the distance from
parity in units of the rule's threshold (1 = at the threshold).

False discoveries
-----------------
An audit grades thousands of comparisons (models x attributes x groups x metrics x operating
points); at 95% about one in twenty intervals that hold no effect exclude parity by chance. A flag
therefore also needs its comparison to be a discovery of the Benjamini-Hochberg procedure
(``scipy.stats.false_discovery_control``) at ``FindingRules.false_discovery_rate`` (default 5%),
applied once over every graded comparison with an interval. Each comparison's two-sided p-value
against parity is read from its bootstrap percentile interval by the normal approximation on the
rule's scale (the logarithm for a ratio, the value itself for a difference): the half of the
interval that faces parity, over the normal quantile of the interval's level, is the standard error
(so ``p`` is below ``1 - level`` exactly when the interval excludes parity). A comparison whose
interval excludes parity but that is not a discovery is graded ``review``. A comparison at equal score
(need ratio, label gap) of a group of fewer than ``FindingRules.min_calibration_n`` people (1,000)
is graded ``review`` at most, with the reason: its interval is too narrow in so small a group. Flags bounded from a
suppressed count (above) have no interval, so they are graded on their exact bound alone and are
not in the family. Each finding carries ``p_value`` and the adjusted ``q_value``; the raw per-cell
intervals are in ``metrics.csv``.

One finding per effect
----------------------
:func:`findings` grades every cell (model, attribute, group, metric, operating point).
:func:`one_per_effect` turns them into the findings a report lists: the cells of one model,
attribute, group and metric at every operating point are one finding, graded by the worst of them;
and findings with the same attribute, group, metric, grade and direction in several models are one
finding, led by the largest effect. Each lists its cells (``cells``: model, operating point, grade,
value and interval) beneath.

This module grades; the rules and the :class:`Finding` type are in :mod:`~phm_audit.report._rules`, the
words in :mod:`~phm_audit.report._sentences`, and the findings without a graded value (bounded from a
suppressed count, or not reported) in :mod:`~phm_audit.report._bounded`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from phm_audit.audit import parse_operating_point
from phm_audit.audit._result import AuditResult
from phm_audit.exceptions import PhmInputError
from phm_audit.report._bounded import BOUNDED, bounded_findings, few_people, undefined_findings
from phm_audit.report._control import DisclosureControl
from phm_audit.report._rules import GRADES, Finding, FindingRules, Rule, effect, graded_rules, row_fields
from phm_audit.report._sentences import METRIC_LABELS, Words, describe_group, describe_operating_point, sentence

__all__ = [
    "GRADES",
    "METRIC_LABELS",
    "Finding",
    "FindingRules",
    "describe_group",
    "describe_operating_point",
    "findings",
    "one_per_effect",
    "p_values",
    "primary_operating_point",
]

#: The documented defaults (one shared instance: FindingRules is frozen).
_DEFAULT_RULES = FindingRules()


def primary_operating_point(result: AuditResult) -> str:
    """Name of the operating point used by single-decision analyses (``top_3pct`` by default).

    The audit records it (``AuditResult.primary_operating_point``). A result without it (one made by
    hand, or read back from an older ``audit.json``) is read from its table: the allocation or
    judgement rows, else the fairness rows, which list operating points in the spec's order.
    """
    if result.primary_operating_point:
        return str(result.primary_operating_point)
    table = result.table()
    for analysis in ("allocation", "judgement"):
        ops = table.loc[table["analysis"] == analysis, "operating_point"]
        if len(ops):
            return str(ops.iloc[0])
    fair = list(dict.fromkeys(table.loc[table["analysis"] == "fairness", "operating_point"]))
    spec_ops = list(result.spec.operating_points)
    primary = str(result.spec.primary)
    if primary in spec_ops and len(fair) == len(spec_ops):
        return fair[spec_ops.index(primary)]
    try:
        return parse_operating_point(primary).name
    except PhmInputError:
        return fair[0] if fair else ""


def _group_sizes(result: AuditResult) -> dict[tuple[str, str], int | None]:
    out: dict[tuple[str, str], int | None] = {}
    for attribute, info in result.groups.items():
        for label, size in zip(info.get("labels", []), info.get("sizes", []), strict=False):
            out[(attribute, str(label))] = None if size is None else int(size)
    return out


def _grade(
    rule: Rule, v: np.ndarray, lo: np.ndarray, hi: np.ndarray, rules: FindingRules, discovery: np.ndarray
) -> np.ndarray:
    has_ci = np.isfinite(lo) & np.isfinite(hi)
    if rule.harm == "low":
        beyond = v < rule.threshold if rule.log else v <= rule.threshold
        harm_side, other_side = hi < rule.parity, lo > rule.parity
    else:
        beyond = v > rule.threshold if rule.log else v >= rule.threshold
        harm_side, other_side = lo > rule.parity, hi < rule.parity
    flag = beyond & harm_side & has_ci & discovery
    review = ~flag & (((harm_side | other_side) & has_ci) | (beyond & rules.review_uncertain))
    return np.where(flag, "flag", np.where(review, "review", "ok"))


def p_values(v: Any, lo: Any, hi: Any, *, parity: float, log: bool, level: float) -> np.ndarray:
    """Two-sided p-values against ``parity`` read from percentile intervals at ``level``.

    The normal approximation on the comparison's scale (the logarithm for a ratio): the half of the
    interval facing parity, over the normal quantile of the level, is the standard error, so a
    p-value is below ``1 - level`` exactly when the interval excludes parity. NaN without an interval.

    Examples
    --------
    >>> p = p_values([1.2, 1.2, 1.0], [1.1, 0.9, 0.9], [1.3, 1.5, 1.1], parity=1.0, log=True, level=0.95)
    >>> bool(p[0] < 0.05), bool(p[1] > 0.05), float(p[2])
    (True, True, 1.0)
    """
    from scipy.stats import norm

    v, lo, hi = (np.asarray(x, dtype=np.float64) for x in (v, lo, hi))
    z = float(norm.ppf(0.5 + level / 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        f = np.log if log else (lambda x: x)
        tv, tl, th, tp = f(v), f(lo), f(hi), f(np.float64(parity))
        half = np.where(tv >= tp, tv - tl, th - tv)
        stat = (tv - tp) / (half / z)
        p = 2 * norm.sf(np.abs(stat))
    excludes = (lo > parity) | (hi < parity)
    p = np.where(np.isfinite(p), p, np.where(excludes, 0.0, 1.0))
    p = np.where(tv == tp, 1.0, p)
    return np.where(np.isfinite(v) & np.isfinite(lo) & np.isfinite(hi), p, np.nan)


def _clean(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _adjust(p: np.ndarray, rules: FindingRules) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values over the whole family (NaN stays NaN, outside the family)."""
    q = np.full(p.shape, np.nan)
    inside = np.isfinite(p)
    if rules.false_discovery_rate is not None and inside.any():
        from scipy.stats import false_discovery_control

        q[inside] = false_discovery_control(p[inside], method="bh")
    elif inside.any():
        q[inside] = p[inside]
    return q


def findings(
    result: AuditResult, rules: FindingRules = _DEFAULT_RULES, *, disclosure: DisclosureControl | None = None
) -> list[Finding]:
    """Grade the audit's disparities as ``flag``, ``review`` or ``ok`` and say each in plain words.

    Works with whatever analyses the result holds; rows of analyses it lacks are simply absent.

    Parameters
    ----------
    result : AuditResult
        The audit (pass the disclosure-controlled result for anything to be published).
    rules : FindingRules, optional
        The thresholds (default: the documented defaults).
    disclosure : DisclosureControl, optional
        The disclosure control applied to ``result``: a count it suppressed (``reason_code``
        ``"suppressed"``) is at most its ``threshold``, which bounds the flags of suppressed groups.
        Default ``DisclosureControl()`` (threshold 7).

    Returns
    -------
    list of Finding
        Flags first, then reviews, then ok; within a grade, adverse effects (on the harmful side of
        parity) before the others, largest first.

    Examples
    --------
    >>> from phm_audit.synth import generate
    >>> from phm_audit.audit import AuditSpec, audit
    >>> cohort = generate("england", n=5_000, seed=1)
    >>> result = audit(cohort, {"prior_cost": cohort["cost_prior"].to_numpy()},
    ...                AuditSpec(attributes=["sex"], intersections=[], n_boot=20))
    >>> {f.grade for f in findings(result)} <= {"flag", "review", "ok"}
    True
    """
    table = result.table()
    if table.empty:
        return []
    level = float(result.spec.confidence)
    cost_target = str(result.spec.cost_target)
    sizes = _group_sizes(result)
    refs = {a: str(info.get("reference", "")) for a, info in result.groups.items()}
    high_need = result.cohort.get("high_need_target")
    need_targets = rules.need_targets or ((str(high_need),) if high_need else None)
    primary = primary_operating_point(result)
    words = Words.of(result)
    threshold = (DisclosureControl() if disclosure is None else disclosure).threshold
    key_cols = ["model", "analysis", "attribute", "group", "operating_point", "metric"]
    quoted = table[table["metric"].isin(["high_need_share", "flagged_share", "tpr", "unmet_need_rate"])]
    quoted_keys = list(map(tuple, quoted[key_cols].astype(str).to_numpy()))
    lookup = dict(zip(quoted_keys, quoted["value"].to_numpy(dtype=np.float64), strict=True))
    lookup_n = dict(zip(quoted_keys, quoted["n"].to_numpy(dtype=np.float64, na_value=np.nan), strict=True))
    lookup_low = dict(zip(quoted_keys, quoted["ci_low"].to_numpy(dtype=np.float64), strict=True))
    out: list[Finding] = []
    undefined: list[pd.DataFrame] = []
    graded: list[tuple[Rule, pd.DataFrame, np.ndarray]] = []
    for rule in graded_rules(rules):
        rows = table[(table["analysis"] == rule.analysis) & (table["metric"] == rule.metric)]
        if rows.empty:
            continue
        ref_of = rows["attribute"].map(refs)
        rows = rows[(rows["group"] != ref_of) & ref_of.notna() & (rows["group"] != "all")]
        if rule.analysis == "calibration" and need_targets:
            chosen = rows[rows["target"].isin(need_targets)]
            rows = chosen if len(chosen) else rows
        if rules.operating_points is not None and rule.analysis != "calibration":
            rows = rows[rows["operating_point"].isin(rules.operating_points)]
        if rows.empty:
            continue
        v = rows["value"].to_numpy(dtype=np.float64)
        defined = np.isfinite(v)
        if rule.metric in BOUNDED:
            bounded = bounded_findings(
                rows[~defined],
                rule,
                lookup,
                lookup_n,
                lookup_low,
                refs,
                sizes,
                level=level,
                threshold=threshold,
                words=words,
            )
            out.extend(bounded)
            done = {(f.model, f.attribute, f.group, f.operating_point) for f in bounded}
            keep = [
                (m, a, g, o) not in done
                for m, a, g, o in zip(
                    rows["model"], rows["attribute"], rows["group"], rows["operating_point"], strict=True
                )
            ]
            rows, v, defined = rows[keep], v[keep], defined[keep]
        if rules.report_undefined:
            at_primary = (rows["operating_point"] == primary).to_numpy() | (rule.analysis == "calibration")
            undefined.append(rows[~defined & at_primary])
        rows = rows[defined]
        p = p_values(rows["value"], rows["ci_low"], rows["ci_high"], parity=rule.parity, log=rule.log, level=level)
        graded.append((rule, rows, p))
    # the allocation's unmet-need gap repeats the fairness tpr difference where both exist: not graded twice
    cell_cols = ["model", "attribute", "group", "operating_point"]
    seen = {
        tuple(k)
        for rule, rows, _ in graded
        if rule.metric == "tpr_difference"
        for k in rows[cell_cols].astype(str).to_numpy()
    } | {(f.model, f.attribute, f.group, f.operating_point) for f in out if f.metric == "tpr_difference"}
    for i, (rule, rows, p) in enumerate(graded):
        if rule.metric == "unmet_need_gap" and seen:
            fresh = np.array([tuple(k) not in seen for k in rows[cell_cols].astype(str).to_numpy()], dtype=bool)
            graded[i] = (rule, rows[fresh], p[fresh])
    q_of = _adjust(np.concatenate([p for _, _, p in graded]) if graded else np.zeros(0), rules)
    start = 0
    for rule, rows, p in graded:
        q = q_of[start : start + len(p)]
        start += len(p)
        v = rows["value"].to_numpy(dtype=np.float64)
        lo = rows["ci_low"].to_numpy(dtype=np.float64)
        hi = rows["ci_high"].to_numpy(dtype=np.float64)
        fdr = rules.false_discovery_rate
        discovery = np.ones(len(v), dtype=bool) if fdr is None else np.nan_to_num(q, nan=1.0) <= fdr
        grades = _grade(rule, v, lo, hi, rules, discovery)
        effects = effect(rule, v)
        adverse = v < rule.parity if rule.harm == "low" else v > rule.parity
        for row, grade, size, bad, pv, qv in zip(
            rows.itertuples(index=False), grades, effects, adverse, p, q, strict=True
        ):
            ref = refs[row.attribute]
            n = sizes.get((row.attribute, row.group))
            reason = ""
            if grade == "flag" and rule.analysis == "calibration" and (n is None or n < rules.min_calibration_n):
                grade = "review"
                reason = few_people(rules.min_calibration_n)
            out.append(
                Finding(
                    grade=grade,
                    reason=reason,
                    text=sentence(rule, row, ref, n, level, lookup, cost_target, words)
                    + (f" {reason[0].upper()}{reason[1:]}." if reason else ""),
                    **row_fields(row),
                    reference=ref,
                    value=_clean(row.value),
                    ci_low=_clean(row.ci_low),
                    ci_high=_clean(row.ci_high),
                    n=n,
                    effect=float(size),
                    adverse=bool(bad),
                    p_value=_clean(pv),
                    q_value=_clean(qv),
                )
            )
    # the allocation's unmet-need gap repeats the fairness tpr difference where both exist
    tpr_seen = {(f.model, f.attribute, f.group, f.operating_point) for f in out if f.metric == "tpr_difference"}
    out = [
        f
        for f in out
        if not (f.metric == "unmet_need_gap" and (f.model, f.attribute, f.group, f.operating_point) in tpr_seen)
    ]
    if undefined:
        out.extend(undefined_findings(pd.concat(undefined, ignore_index=True), refs, sizes, words))
    order = {g: i for i, g in enumerate(GRADES)}
    return sorted(out, key=lambda f: (order[f.grade], not f.adverse, -f.effect))


def _sort_key(f: Finding) -> tuple[int, bool, float]:
    return ({g: i for i, g in enumerate(GRADES)}[f.grade], not f.adverse, -f.effect)


def _more(names: list[str], most: int = 3) -> str:
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def one_per_effect(found: Sequence[Finding], primary: str = "") -> list[Finding]:
    """One finding per effect: the graded cells of :func:`findings` combined, each with its cells beneath.

    First the cells of one model, attribute, group, metric and target at every operating point
    become one finding, graded by the worst of them and led by the primary operating point where it
    has that grade (otherwise by the largest effect of that grade). Then findings with the same
    analysis, metric, target, attribute, group, grade and direction (and, for values not reported,
    the same reason) in several models become one, led by the largest effect. The lead's words are
    kept, followed by where else the effect is seen; ``cells`` lists every cell with its grade.

    Parameters
    ----------
    found : sequence of Finding
        Graded cells, from :func:`findings`.
    primary : str, optional
        Name of the primary operating point (``top_3pct``).

    Returns
    -------
    list of Finding
        Sorted as :func:`findings` sorts (flags first, adverse first, largest effect first).

    Examples
    --------
    >>> cell = dict(text="t.", analysis="fairness", attribute="sex", group="F", reference="M", metric="tpr_difference",
    ...             target="need", ci_low=None, ci_high=None, n=10, effect=1.5, adverse=True)
    >>> cells = [Finding(grade="flag", model=m, operating_point=o, value=-0.2, **cell)
    ...          for m in ("a", "b") for o in ("top_1pct", "top_3pct")]
    >>> combined = one_per_effect(cells, "top_3pct")
    >>> len(combined), combined[0].operating_point, len(combined[0].cells)
    (1, 'top_3pct', 4)
    """
    order = {g: i for i, g in enumerate(GRADES)}
    per_model: dict[tuple[Any, ...], list[Finding]] = {}
    for f in found:
        per_model.setdefault((f.model, f.analysis, f.metric, f.target, f.attribute, f.group), []).append(f)
    firsts: list[tuple[Finding, list[dict[str, Any]]]] = []
    for members in per_model.values():
        worst = min(order[f.grade] for f in members)
        top = sorted((f for f in members if order[f.grade] == worst), key=_sort_key)
        at_primary = [f for f in top if f.operating_point == primary]
        lead = at_primary[0] if at_primary else top[0]
        firsts.append((lead, [c for f in members for c in f.all_cells()]))
    across: dict[tuple[Any, ...], list[tuple[Finding, list[dict[str, Any]]]]] = {}
    for lead, cells in firsts:
        undefined = lead.reason if lead.value is None and lead.grade == "review" else ""
        key = (lead.analysis, lead.metric, lead.target, lead.attribute, lead.group, lead.grade, lead.adverse, undefined)
        across.setdefault(key, []).append((lead, cells))
    out: list[Finding] = []
    for group in across.values():
        ranked = sorted(group, key=lambda m: _sort_key(m[0]))
        lead = ranked[0][0]
        cells = [c for _, cs in ranked for c in cs]
        if len(cells) == 1:
            out.append(lead)
            continue
        models = list(dict.fromkeys(str(c["model"]) for c in cells))
        ops = list(dict.fromkeys(str(c["operating_point"]) for c in cells))
        where = []
        if len(models) > 1:
            where.append(f"{len(models)} models ({_more(models)})")
        if len(ops) > 1:
            where.append(f"{len(ops)} operating points")
        text = lead.text + f" Seen in {' at '.join(where)}: {len(cells)} cells, each listed with its grade."
        out.append(
            Finding(**{**{k: getattr(lead, k) for k in lead.__dataclass_fields__}, "text": text, "cells": tuple(cells)})
        )
    return sorted(out, key=_sort_key)
