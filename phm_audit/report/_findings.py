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
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal, NamedTuple

import numpy as np
import pandas as pd

from phm_audit.audit._result import AuditResult
from phm_audit.exceptions import PhmInputError

__all__ = [
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

Grade = Literal["flag", "review", "ok"]
GRADES: tuple[Grade, ...] = ("flag", "review", "ok")

#: Plain names of the metrics that appear in findings and report tables.
METRIC_LABELS = {
    "flagged_to_high_need_ratio": "share flagged over share of highest need",
    "selection_ratio_at_equal_need": "selection ratio at equal need",
    "tpr_difference": "difference in the share of high-need people flagged",
    "need_ratio_at_equal_score": "need ratio at equal score",
    "cost_ratio_at_equal_score": "cost ratio at equal score",
    "label_gap_at_equal_score": "label gap at equal score",
    "unmet_need_gap": "gap in unmet need",
    "refused_rate_ratio": "ratio of refusal rates among people who need specialist care",
    "flagged_share": "share of those flagged",
    "high_need_share": "share of those with the highest need",
    "selection_rate": "selection rate",
    "tpr": "share of high-need people flagged (tpr)",
    "unmet_need_rate": "share of high-need people not flagged",
}


@dataclass(frozen=True)
class FindingRules:
    """Thresholds that grade findings; every default is documented in :mod:`phm_audit.report._findings`.

    Parameters
    ----------
    share_ratio : float, default 0.8
        Flag a group whose share of the flagged over its share of the highest need
        (``flagged_to_high_need_ratio``) is below this, with the whole interval below 1.
    selection_ratio : float, default 0.8
        Flag a ``selection_ratio_at_equal_need`` below this, with the interval below 1.
    tpr_gap : float, default 0.10
        Flag a ``tpr_difference`` (group minus reference) at or below minus this, interval below 0.
    need_ratio : float, default 1.1
        Flag a ``need_ratio_at_equal_score`` above this, interval above 1 (sicker at the same score).
    label_gap : float, default 1.1
        Flag a ``label_gap_at_equal_score`` above this, interval above 1 (cost under-states need).
    unmet_need_gap : float, default 0.10
        Flag an ``unmet_need_gap`` (allocation) at or above this, interval above 0.
    refused_ratio : float, default 1.25
        Flag a ``refused_rate_ratio`` (referral gate) above this, interval above 1.
    review_uncertain : bool, default True
        Grade ``review`` (not ``ok``) an effect at or beyond a flag threshold whose interval includes
        parity or is missing.
    report_undefined : bool, default True
        Report undefined values of the graded metrics as ``review`` findings with their reason (at
        the primary operating point only, to keep the list readable).
    need_targets : tuple of str, optional
        Need targets whose calibration ratios are graded; default the audit's high-need target.
    operating_points : tuple of str, optional
        Operating-point names (``top_3pct``) whose rows are graded; default all of them.
    false_discovery_rate : float or None, default 0.05
        Control of false discoveries across the whole audit: a finding is a flag only if its
        comparison is a discovery of the Benjamini-Hochberg procedure at this rate, over every
        graded comparison of the call (p-values from the intervals; see the module documentation).
        None grades each interval on its own (no multiplicity control).
    min_calibration_n : int, default 1000
        A calibration comparison at equal score (``need_ratio_at_equal_score``,
        ``label_gap_at_equal_score``) of a group of fewer audited people is graded ``review`` at most,
        with the reason. Its bootstrap interval, a ratio of means of skewed costs over a few people per
        score bin, is too narrow: on ``no_gap`` (100,000 people, seeds 1-20, truth from 2,000,000
        people) the label gap's 95% interval lay wholly above the truth for 12 of 281 groups under
        1,000 people (4.3%, against 2.5%) and 1 of 240 groups over 5,000; on the ``no_gap`` demo such
        groups gave the only false label statements of the headline. 0 grades every group.

    Examples
    --------
    >>> FindingRules(share_ratio=0.9).share_ratio
    0.9
    """

    share_ratio: float = 0.8
    selection_ratio: float = 0.8
    tpr_gap: float = 0.10
    need_ratio: float = 1.1
    label_gap: float = 1.1
    unmet_need_gap: float = 0.10
    refused_ratio: float = 1.25
    review_uncertain: bool = True
    report_undefined: bool = True
    need_targets: tuple[str, ...] | None = None
    operating_points: tuple[str, ...] | None = None
    false_discovery_rate: float | None = 0.05
    min_calibration_n: int = 1000

    def __post_init__(self) -> None:
        m = self.min_calibration_n
        if isinstance(m, bool) or not isinstance(m, int) or m < 0:
            raise PhmInputError(
                f"FindingRules min_calibration_n must be a whole number of people, 0 or more; got {m!r}"
            )
        fdr = self.false_discovery_rate
        if fdr is not None and (isinstance(fdr, bool) or not isinstance(fdr, int | float) or not 0 < fdr < 1):
            raise PhmInputError(
                f"FindingRules false_discovery_rate must lie between 0 and 1 (e.g. 0.05), or be None; got {fdr!r}"
            )
        for name in ("share_ratio", "selection_ratio"):
            value = getattr(self, name)
            if not 0 < value < 1:
                raise PhmInputError(f"FindingRules {name} must lie between 0 and 1 (e.g. 0.8); got {value}")
        for name in ("need_ratio", "label_gap", "refused_ratio"):
            value = getattr(self, name)
            if not value > 1:
                raise PhmInputError(f"FindingRules {name} must be above 1 (e.g. 1.1); got {value}")
        for name in ("tpr_gap", "unmet_need_gap"):
            value = getattr(self, name)
            if not 0 < value < 1:
                raise PhmInputError(f"FindingRules {name} must lie between 0 and 1 (e.g. 0.1); got {value}")
        for name in ("need_targets", "operating_points"):
            value = getattr(self, name)
            if value is not None:
                if isinstance(value, str):
                    raise PhmInputError(f"FindingRules {name} must be a list of names, not the string '{value}'")
                object.__setattr__(self, name, tuple(str(v) for v in value))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        out = asdict(self)
        for name in ("need_targets", "operating_points"):
            out[name] = None if out[name] is None else list(out[name])
        return out


@dataclass(frozen=True)
class Finding:
    """One graded finding.

    Attributes
    ----------
    grade : {"flag", "review", "ok"}
    text : str
        The finding in plain words, with the interval and the group's n.
    model, analysis, attribute, group, reference, operating_point, metric, target : str
        Where the finding comes from in the tidy table (``reference`` is the comparison group).
    value, ci_low, ci_high : float or None
        The graded value and its interval (None where undefined).
    n : int or None
        Number of people in the group (after disclosure control; None if suppressed).
    effect : float
        Distance from parity in units of the rule's threshold (1 = at the threshold); 0 if undefined.
    adverse : bool
        Whether the value lies on the harmful side of parity (for example a group flagged less often
        than the reference at equal need), as opposed to the other side.
    reason : str
        Why the value is undefined, if it is.
    p_value, q_value : float or None
        Two-sided p-value against parity, read from the interval, and its Benjamini-Hochberg
        adjusted value over the whole audit (None where the comparison is not in the family).
    cells : tuple of dict
        For a finding that stands for one effect in several models or at several operating points
        (:func:`one_per_effect`), every graded cell: ``model``, ``operating_point``, ``grade``,
        ``value``, ``ci_low``, ``ci_high`` and ``q_value``; empty for a single cell.
    """

    grade: Grade
    text: str
    model: str
    analysis: str
    attribute: str
    group: str
    reference: str
    operating_point: str
    metric: str
    target: str
    value: float | None
    ci_low: float | None
    ci_high: float | None
    n: int | None
    effect: float
    adverse: bool = False
    reason: str = ""
    p_value: float | None = None
    q_value: float | None = None
    cells: tuple[dict[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        out = asdict(self)
        out["cells"] = [dict(c) for c in self.cells]
        return out

    def cell(self) -> dict[str, Any]:
        """This finding as one cell of a combined finding."""
        return {
            "model": self.model,
            "operating_point": self.operating_point,
            "grade": self.grade,
            "value": self.value,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "q_value": self.q_value,
        }

    def all_cells(self) -> tuple[dict[str, Any], ...]:
        """Every graded cell this finding stands for (itself alone, if it is a single cell)."""
        return self.cells or (self.cell(),)


@dataclass(frozen=True)
class _Rule:
    analysis: str
    metric: str
    parity: float
    harm: Literal["low", "high"]
    threshold: float
    log: bool  # a ratio (effect on the log scale) or a difference


def _rules(rules: FindingRules) -> list[_Rule]:
    return [
        _Rule("fairness", "flagged_to_high_need_ratio", 1.0, "low", rules.share_ratio, True),
        _Rule("fairness", "selection_ratio_at_equal_need", 1.0, "low", rules.selection_ratio, True),
        _Rule("fairness", "tpr_difference", 0.0, "low", -rules.tpr_gap, False),
        _Rule("calibration", "need_ratio_at_equal_score", 1.0, "high", rules.need_ratio, True),
        _Rule("calibration", "label_gap_at_equal_score", 1.0, "high", rules.label_gap, True),
        _Rule("allocation", "unmet_need_gap", 0.0, "high", rules.unmet_need_gap, False),
        _Rule("referral", "refused_rate_ratio", 1.0, "high", rules.refused_ratio, True),
    ]


# --- words ---------------------------------------------------------------------------------------

_QUINTILES = {
    "1": "the most deprived fifth (IMD quintile 1)",
    "5": "the least deprived fifth (IMD quintile 5)",
}


def describe_group(attribute: str, group: str) -> str:
    """Words that complete "people ...": ``describe_group("imd_quintile", "1")`` gives
    ``"in the most deprived fifth (IMD quintile 1)"``.

    Examples
    --------
    >>> describe_group("age_band", "85+")
    'aged 85+'
    >>> describe_group("digitally_excluded", "True")
    'who are digitally excluded'
    """
    if attribute == "imd_quintile":
        return "in " + _QUINTILES.get(group, f"IMD quintile {group}")
    if attribute == "digitally_excluded" and group in ("True", "False"):
        return "who are digitally excluded" if group == "True" else "who are not digitally excluded"
    if attribute == "age_band":
        return f"aged {group}"
    if attribute == "sex":
        return f"recorded as {group}"
    if attribute == "ethnicity":
        return f"in the {group} ethnic group"
    attributes, groups = attribute.split(" x "), group.split(" | ")
    if len(attributes) > 1 and len(attributes) == len(groups):
        return " and ".join(describe_group(a, g) for a, g in zip(attributes, groups, strict=True))
    return f"with {attribute} {group}"


def describe_operating_point(name: str) -> str:
    """``top_3pct`` -> ``the top 3%``; other operating-point names in words where known.

    Examples
    --------
    >>> describe_operating_point("top_0.5pct")
    'the top 0.5%'
    """
    patterns = (
        (r"top_([\d.]+)pct", "the top {0}%"),
        (r"top_k_(\d+)", "the top {0} people"),
        (r"top_(\d+)", "the top {0} people"),
        (r"score_ge_(.+)", "a score of at least {0}"),
        (r"per_100k_(.+)", "{0} places per 100,000 people"),
        (r"pt_(.+)", "a threshold probability of {0}"),
        (r"step_(\d+)_k_(\d+)", "step {0} (capacity {1})"),
    )
    for pattern, words in patterns:
        m = re.fullmatch(pattern, name)
        if m:
            return words.format(*m.groups())
    return name


def _pct(x: float) -> str:
    if not math.isfinite(x):
        return "undefined"
    return f"{100 * x:.0f}%" if abs(x) >= 0.095 else f"{100 * x:.1f}%"


def _num(x: float) -> str:
    return f"{x:.2f}" if math.isfinite(x) else "undefined"


def _points(x: float) -> str:
    return f"{100 * x:+.0f} percentage points" if abs(x) >= 0.095 else f"{100 * x:+.1f} percentage points"


def _signed(x: float) -> str:
    return f"{100 * x:+.0f}" if abs(x) >= 0.095 else f"{100 * x:+.1f}"


def _interval(lo: float, hi: float, level: float, fmt: Any) -> str:
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "no interval"
    return f"{100 * level:g}% CI {fmt(lo)} to {fmt(hi)}"


def _n_text(n: int | None) -> str:
    return "n suppressed" if n is None else f"n = {n:,}"


def primary_operating_point(result: AuditResult) -> str:
    """Name of the operating point used by single-decision analyses (``top_3pct`` by default).

    Found from the result alone: the fairness rows list operating points in the spec's order.
    """
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
    m = re.fullmatch(r"top_pct:([\d.]+)", primary)
    if m:
        return f"top_{float(m.group(1)):g}pct"
    return fair[0] if fair else ""


def _group_sizes(result: AuditResult) -> dict[tuple[str, str], int | None]:
    out: dict[tuple[str, str], int | None] = {}
    for attribute, info in result.groups.items():
        for label, size in zip(info.get("labels", []), info.get("sizes", []), strict=False):
            out[(attribute, str(label))] = None if size is None else int(size)
    return out


def _sentence(
    rule: _Rule,
    row: Any,
    ref: str,
    n: int | None,
    level: float,
    lookup: Mapping[tuple[str, ...], float],
    cost_target: str,
) -> str:
    grp = describe_group(row.attribute, row.group)
    rgrp = describe_group(row.attribute, ref)
    op = describe_operating_point(row.operating_point)
    v, lo, hi = float(row.value), float(row.ci_low), float(row.ci_high)
    tail = f"({{}}{_interval(lo, hi, level, _num)}; {_n_text(n)})"

    def get(metric: str, group: str, analysis: str | None = None) -> float:
        key = (row.model, analysis or row.analysis, row.attribute, group, row.operating_point, metric)
        return lookup.get(key, math.nan)

    if rule.metric == "flagged_to_high_need_ratio":
        hs, fs = get("high_need_share", row.group), get("flagged_share", row.group)
        joint = "but" if (math.isfinite(fs) and math.isfinite(hs) and fs < hs) else "and"
        return (
            f"At {op} of {row.model} scores, people {grp} are {_pct(hs)} of those with the highest need "
            f"{joint} {_pct(fs)} of those flagged " + tail.format(f"ratio {_num(v)}, ") + "."
        )
    if rule.metric == "selection_ratio_at_equal_need":
        return (
            f"At {op} of {row.model} scores, people {grp} are flagged {_num(v)} times as often as people {rgrp} "
            "with the same level of need " + tail.format("") + "."
        )
    if rule.metric == "tpr_difference":
        tg, tr = get("tpr", row.group), get("tpr", ref)
        return (
            f"At {op} of {row.model} scores, {_pct(tg)} of people {grp} with the highest need are flagged, "
            f"against {_pct(tr)} of people {rgrp} "
            + f"(difference {_points(v)}, {_interval(lo, hi, level, _signed)}; {_n_text(n)})."
        )
    if rule.metric == "need_ratio_at_equal_score":
        more = "more" if v >= 1 else "less"
        return (
            f"At the same {row.model} score, people {grp} have {abs(v - 1) * 100:.0f}% {more} need ({row.target}) "
            f"than people {rgrp} " + tail.format(f"ratio {_num(v)}, ") + "."
        )
    if rule.metric == "label_gap_at_equal_score":
        side = "under-states" if v >= 1 else "over-states"
        return (
            f"At the same {row.model} score, the need ({row.target}) of people {grp} relative to people {rgrp} "
            f"is {_num(v)} times their cost ({cost_target}) relative to them "
            + tail.format("label gap, ")
            + f": a cost label {side} their need."
        )
    if rule.metric == "unmet_need_gap":
        ug, ur = get("unmet_need_rate", row.group), get("unmet_need_rate", ref)
        return (
            f"At {op} of {row.model} scores, {_pct(ug)} of people {grp} with the highest need are not flagged, "
            f"against {_pct(ur)} of people {rgrp} "
            + f"(gap {_points(v)}, {_interval(lo, hi, level, _signed)}; {_n_text(n)})."
        )
    return (
        f"With the referral gate at {op} of {row.model} scores, people {grp} who need specialist care are refused "
        f"{_num(v)} times as often as people {rgrp} " + tail.format("") + "."
    )


def _grade(
    rule: _Rule, v: np.ndarray, lo: np.ndarray, hi: np.ndarray, rules: FindingRules, discovery: np.ndarray
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


def _effect(rule: _Rule, v: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        if rule.log:
            out = np.abs(np.log(v)) / abs(math.log(rule.threshold))
        else:
            out = np.abs(v - rule.parity) / abs(rule.threshold - rule.parity)
    return np.where(np.isfinite(out), out, 0.0)


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


def findings(result: AuditResult, rules: FindingRules = FindingRules()) -> list[Finding]:
    """Grade the audit's disparities as ``flag``, ``review`` or ``ok`` and say each in plain words.

    Works with whatever analyses the result holds; rows of analyses it lacks are simply absent.

    Parameters
    ----------
    result : AuditResult
        The audit (pass the disclosure-controlled result for anything to be published).
    rules : FindingRules, optional
        The thresholds (default: the documented defaults).

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
    key_cols = ["model", "analysis", "attribute", "group", "operating_point", "metric"]
    quoted = table[table["metric"].isin(["high_need_share", "flagged_share", "tpr", "unmet_need_rate"])]
    quoted_keys = list(map(tuple, quoted[key_cols].astype(str).to_numpy()))
    lookup = dict(zip(quoted_keys, quoted["value"].to_numpy(dtype=np.float64), strict=True))
    lookup_n = dict(zip(quoted_keys, quoted["n"].to_numpy(dtype=np.float64, na_value=np.nan), strict=True))
    lookup_low = dict(zip(quoted_keys, quoted["ci_low"].to_numpy(dtype=np.float64), strict=True))
    out: list[Finding] = []
    undefined: list[pd.DataFrame] = []
    graded: list[tuple[_Rule, pd.DataFrame, np.ndarray]] = []
    for rule in _rules(rules):
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
        if rule.metric in _BOUNDED:
            bounded = _bounded_findings(rows[~defined], rule, lookup, lookup_n, lookup_low, refs, sizes, level=level)
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
        effects = _effect(rule, v)
        adverse = v < rule.parity if rule.harm == "low" else v > rule.parity
        for row, grade, effect, bad, pv, qv in zip(
            rows.itertuples(index=False), grades, effects, adverse, p, q, strict=True
        ):
            ref = refs[row.attribute]
            n = sizes.get((row.attribute, row.group))
            reason = ""
            if grade == "flag" and rule.analysis == "calibration" and (n is None or n < rules.min_calibration_n):
                grade = "review"
                reason = _few_people(rules.min_calibration_n)
            out.append(
                Finding(
                    grade=grade,
                    reason=reason,
                    text=_sentence(rule, row, ref, n, level, lookup, cost_target)
                    + (f" {reason[0].upper()}{reason[1:]}." if reason else ""),
                    model=row.model,
                    analysis=row.analysis,
                    attribute=row.attribute,
                    group=row.group,
                    reference=ref,
                    operating_point=row.operating_point,
                    metric=row.metric,
                    target=row.target,
                    value=_clean(row.value),
                    ci_low=_clean(row.ci_low),
                    ci_high=_clean(row.ci_high),
                    n=n,
                    effect=float(effect),
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
        out.extend(_undefined_findings(pd.concat(undefined, ignore_index=True), refs, sizes))
    order = {g: i for i, g in enumerate(GRADES)}
    return sorted(out, key=lambda f: (order[f.grade], not f.adverse, -f.effect))


_BOUNDED = ("flagged_to_high_need_ratio", "tpr_difference")


def _few_people(minimum: int) -> str:
    return (
        f"graded review, not flag: the group has fewer than {minimum:,} people, too few for a reliable interval "
        "of a comparison at equal score (FindingRules.min_calibration_n)"
    )


class _Row(NamedTuple):
    model: str
    analysis: str
    attribute: str
    group: str
    operating_point: str
    metric: str
    target: str
    reason: str


_FEWER = re.compile(r"^suppressed \(disclosure control\): fewer than (\d+) people$")


def _bounded_findings(
    rows: pd.DataFrame,
    rule: _Rule,
    lookup: Mapping[tuple[str, ...], float],
    lookup_n: Mapping[tuple[str, ...], float],
    lookup_low: Mapping[tuple[str, ...], float],
    refs: Mapping[str, str],
    sizes: Mapping[tuple[str, str], int | None],
    *,
    level: float,
) -> list[Finding]:
    """Flags that survive disclosure control.

    Where a group's flagged count is suppressed (at most 7), its share of the flagged, or of its
    high-need members flagged, is at most 7 over the published total. That bound gives the effect;
    the interval is replaced by a conservative one: the exact (Clopper-Pearson) upper confidence
    bound of 7 out of the total, against the lower end of the comparison's own interval. Both
    must clear the flag rule, as for any other flag.
    """
    from scipy.stats import beta

    def upper(count: int, total: float) -> float:
        # one-sided upper bound at the interval's level, for a count of at most `count` out of `total`
        if count >= total:
            return 1.0
        return float(beta.ppf(1 - (1 - level) / 2, count + 1, total - count))

    out: list[Finding] = []
    for record in rows.to_dict(orient="records"):
        m = _FEWER.match(str(record["reason"]))
        if not m:
            continue
        row = _Row(**{k: str(record[k]) for k in _Row._fields})
        most = int(m.group(1)) - 1
        ref = refs[row.attribute]
        grp, rgrp = describe_group(row.attribute, row.group), describe_group(row.attribute, ref)
        op = describe_operating_point(row.operating_point)
        key = (row.model, row.analysis, row.attribute)
        n = sizes.get((row.attribute, row.group))
        if rule.metric == "flagged_to_high_need_ratio":
            hs = lookup.get((*key, row.group, row.operating_point, "high_need_share"), math.nan)
            hs_low = lookup_low.get((*key, row.group, row.operating_point, "high_need_share"), math.nan)
            flagged = lookup_n.get((*key, row.group, row.operating_point, "flagged_share"), math.nan)
            if not all(math.isfinite(x) and x > 0 for x in (hs, hs_low, flagged)):
                continue
            bound = most / flagged / hs
            if bound >= rule.threshold or upper(most, flagged) / hs_low >= rule.parity:
                continue
            text = (
                f"At {op} of {row.model} scores, people {grp} are {_pct(hs)} of those with the highest need but "
                f"fewer than {most + 1} of the {flagged:,.0f} flagged (at most {_pct(most / flagged)}; ratio at most "
                f"{_num(bound)}; {_n_text(n)})."
            )
        else:
            high = lookup_n.get((*key, row.group, row.operating_point, "tpr"), math.nan)
            ref_tpr = lookup.get((*key, ref, row.operating_point, "tpr"), math.nan)
            ref_low = lookup_low.get((*key, ref, row.operating_point, "tpr"), math.nan)
            if not (math.isfinite(high) and math.isfinite(ref_tpr) and math.isfinite(ref_low) and high > 0):
                continue
            bound = most / high - ref_tpr
            if bound > rule.threshold or upper(most, high) - ref_low >= rule.parity:
                continue
            text = (
                f"At {op} of {row.model} scores, fewer than {most + 1} of the {high:,.0f} people {grp} with the "
                f"highest need are flagged (at most {_pct(most / high)}), against {_pct(ref_tpr)} of people {rgrp} "
                f"(difference at most {_points(bound)}; {_n_text(n)})."
            )
        out.append(
            Finding(
                grade="flag",
                text=text,
                model=row.model,
                analysis=row.analysis,
                attribute=row.attribute,
                group=row.group,
                reference=ref,
                operating_point=row.operating_point,
                metric=row.metric,
                target=row.target,
                value=None,
                ci_low=None,
                ci_high=None,
                n=n,
                effect=float(_effect(rule, np.array([bound]))[0]),
                adverse=True,
                reason=str(row.reason),
            )
        )
    return out


def _undefined_findings(
    rows: pd.DataFrame, refs: Mapping[str, str], sizes: Mapping[tuple[str, str], int | None]
) -> list[Finding]:
    """One ``review`` finding per model, group, operating point and reason, naming the metrics."""
    out: list[Finding] = []
    if rows.empty:
        return out
    keys = ["model", "analysis", "attribute", "group", "operating_point", "reason"]
    for key, sub in rows.groupby(keys, sort=False):
        model, analysis, attribute, group, op, reason = (str(k) for k in key)
        metrics = list(dict.fromkeys(sub["metric"]))
        names = ", ".join(METRIC_LABELS.get(m, m) for m in metrics)
        where = (
            f"at the same {model} score"
            if analysis == "calibration"
            else f"at {describe_operating_point(op)} of {model} scores"
        )
        n = sizes.get((attribute, group))
        out.append(
            Finding(
                grade="review",
                adverse=True,
                text=(
                    f"Not reported for people {describe_group(attribute, group)} {where} ({names}): "
                    f"{reason or 'undefined'} ({_n_text(n)})."
                ),
                model=model,
                analysis=analysis,
                attribute=attribute,
                group=group,
                reference=refs.get(attribute, ""),
                operating_point=op,
                metric=", ".join(metrics),
                target=str(sub["target"].iloc[0]),
                value=None,
                ci_low=None,
                ci_high=None,
                n=n,
                effect=0.0,
                reason=reason or "undefined",
            )
        )
    return out


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
