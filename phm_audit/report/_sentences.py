"""Findings in words: groups, operating points and metrics as a reader says them, and one sentence per
graded comparison.

What an operating point means is read from the audit (``AuditResult.operating_points``, built by
:func:`phm_audit.audit.describe_point`), and an intersection's parts from ``AuditResult.groups``
(``components`` and ``parts``): names are never parsed here. A metric's words are the registry's label
(:mod:`phm_audit.audit._metrics`) unless :data:`METRIC_LABELS` holds shorter words of the same meaning.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from phm_audit.audit import describe_point, lookup
from phm_audit.audit._metrics import UndeclaredMetricError
from phm_audit.audit._result import AuditResult
from phm_audit.report._rules import Rule
from phm_audit.report._suppression import Structure, group_structure

__all__ = [
    "METRIC_LABELS",
    "Words",
    "describe_group",
    "describe_operating_point",
    "interval",
    "metric_words",
    "n_text",
    "num",
    "pct",
    "point_info",
    "points_text",
    "sentence",
    "signed",
]

#: The report's words for graded metrics where they differ from the registry's label (same meaning).
METRIC_LABELS = {
    "flagged_to_high_need_ratio": "share flagged over share of highest need",
    "tpr_difference": "difference in the share of high-need people flagged",
    "need_ratio_at_equal_score": "need ratio at equal score",
    "label_gap_at_equal_score": "label gap at equal score",
    "unmet_need_gap": "gap in unmet need",
    "refused_rate_ratio": "ratio of refusal rates among people who need specialist care",
}


def metric_words(metric: str, analysis: str = "*") -> str:
    """A metric in words: :data:`METRIC_LABELS`, else the registry's label, else its name.

    Examples
    --------
    >>> metric_words("selection_ratio_at_equal_need"), metric_words("tpr_difference")
    ('selection ratio at equal need', 'difference in the share of high-need people flagged')
    """
    if metric in METRIC_LABELS:
        return METRIC_LABELS[metric]
    try:
        return lookup(metric, analysis).label
    except UndeclaredMetricError:
        return metric


_QUINTILES = {
    "1": "the most deprived fifth (IMD quintile 1)",
    "5": "the least deprived fifth (IMD quintile 5)",
}


def describe_group(attribute: str, group: str, structure: Structure | None = None) -> str:
    """Words that complete "people ...": ``describe_group("imd_quintile", "1")`` gives
    ``"in the most deprived fifth (IMD quintile 1)"``.

    An intersection's label is said part by part, its parts read from ``structure``
    (:func:`~phm_audit.report._suppression.group_structure` of ``AuditResult.groups``). Without a
    structure (no result at hand) the label is read in the audit's grammar (``"a x b"``, ``"1 | 2"``).

    Examples
    --------
    >>> describe_group("age_band", "85+")
    'aged 85+'
    >>> describe_group("digitally_excluded", "True")
    'who are digitally excluded'
    >>> describe_group("sex x age_band", "Female | 85+", {"sex x age_band": (("sex", "age_band"),
    ...                                                   {"Female | 85+": ("Female", "85+")})})
    'recorded as Female and aged 85+'
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
    if structure is None:
        attributes, groups = tuple(attribute.split(" x ")), tuple(group.split(" | "))
    else:
        components, parts = structure.get(attribute, ((), {}))
        attributes, groups = tuple(components), tuple(parts.get(group, ()))
    if len(attributes) > 1 and len(attributes) == len(groups):
        return " and ".join(describe_group(a, g, structure) for a, g in zip(attributes, groups, strict=True))
    return f"with {attribute} {group}"


def point_info(name: str, points: Mapping[str, Mapping[str, Any]] | None = None) -> Mapping[str, Any]:
    """What an operating point means: its entry in ``points`` (``AuditResult.operating_points``), else
    :func:`phm_audit.audit.describe_point` of the name."""
    found = points.get(name) if points is not None else None
    return found if found is not None else describe_point(name)


def describe_operating_point(name: str, points: Mapping[str, Mapping[str, Any]] | None = None) -> str:
    """An operating point in words: ``top_3pct`` -> ``the top 3%``.

    Read from ``points`` (``AuditResult.operating_points``) where given, else from
    :func:`phm_audit.audit.describe_point`.

    Examples
    --------
    >>> describe_operating_point("top_0.5pct")
    'the top 0.5%'
    >>> describe_operating_point("top_3pct", {"top_3pct": {"words": "the top 3% of scores"}})
    'the top 3% of scores'
    """
    return str(point_info(name, points)["words"])


@dataclass(frozen=True)
class Words:
    """How one result's groups and operating points are said (its operating points and intersections)."""

    points: Mapping[str, Mapping[str, Any]]
    structure: Structure

    @classmethod
    def of(cls, result: AuditResult) -> Words:
        """The words of ``result``."""
        return cls(result.operating_points, group_structure(result.groups))

    def group(self, attribute: str, group: str) -> str:
        """:func:`describe_group` with this result's intersections."""
        return describe_group(attribute, group, self.structure)

    def point(self, name: str) -> str:
        """:func:`describe_operating_point` with this result's operating points."""
        return describe_operating_point(name, self.points)


def pct(x: float) -> str:
    """A share as a per cent (one decimal under 9.5%)."""
    if not math.isfinite(x):
        return "undefined"
    return f"{100 * x:.0f}%" if abs(x) >= 0.095 else f"{100 * x:.1f}%"


def num(x: float) -> str:
    """A ratio to two decimals."""
    return f"{x:.2f}" if math.isfinite(x) else "undefined"


def points_text(x: float) -> str:
    """A difference of two shares in signed percentage points."""
    return f"{100 * x:+.0f} percentage points" if abs(x) >= 0.095 else f"{100 * x:+.1f} percentage points"


def signed(x: float) -> str:
    """A difference of two shares as a signed number of points."""
    return f"{100 * x:+.0f}" if abs(x) >= 0.095 else f"{100 * x:+.1f}"


def interval(lo: float, hi: float, level: float, fmt: Any) -> str:
    """An interval in words, or "no interval"."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "no interval"
    return f"{100 * level:g}% CI {fmt(lo)} to {fmt(hi)}"


def n_text(n: int | None) -> str:
    """A group's n, or that it is suppressed."""
    return "n suppressed" if n is None else f"n = {n:,}"


def sentence(
    rule: Rule,
    row: Any,
    ref: str,
    n: int | None,
    level: float,
    quoted: Mapping[tuple[str, ...], float],
    cost_target: str,
    words: Words,
) -> str:
    """One graded comparison in words, with its interval and the group's n."""
    grp = words.group(row.attribute, row.group)
    rgrp = words.group(row.attribute, ref)
    op = words.point(row.operating_point)
    v, lo, hi = float(row.value), float(row.ci_low), float(row.ci_high)
    tail = f"({{}}{interval(lo, hi, level, num)}; {n_text(n)})"

    def get(metric: str, group: str, analysis: str | None = None) -> float:
        key = (row.model, analysis or row.analysis, row.attribute, group, row.operating_point, metric)
        return quoted.get(key, math.nan)

    if rule.metric == "flagged_to_high_need_ratio":
        hs, fs = get("high_need_share", row.group), get("flagged_share", row.group)
        joint = "but" if (math.isfinite(fs) and math.isfinite(hs) and fs < hs) else "and"
        return (
            f"At {op} of {row.model} scores, people {grp} are {pct(hs)} of those with the highest need "
            f"{joint} {pct(fs)} of those flagged " + tail.format(f"ratio {num(v)}, ") + "."
        )
    if rule.metric == "selection_ratio_at_equal_need":
        return (
            f"At {op} of {row.model} scores, people {grp} are flagged {num(v)} times as often as people {rgrp} "
            "with the same level of need " + tail.format("") + "."
        )
    if rule.metric == "tpr_difference":
        tg, tr = get("tpr", row.group), get("tpr", ref)
        return (
            f"At {op} of {row.model} scores, {pct(tg)} of people {grp} with the highest need are flagged, "
            f"against {pct(tr)} of people {rgrp} "
            + f"(difference {points_text(v)}, {interval(lo, hi, level, signed)}; {n_text(n)})."
        )
    if rule.metric == "need_ratio_at_equal_score":
        more = "more" if v >= 1 else "less"
        return (
            f"At the same {row.model} score, people {grp} have {abs(v - 1) * 100:.0f}% {more} need ({row.target}) "
            f"than people {rgrp} " + tail.format(f"ratio {num(v)}, ") + "."
        )
    if rule.metric == "label_gap_at_equal_score":
        side = "under-states" if v >= 1 else "over-states"
        return (
            f"At the same {row.model} score, the need ({row.target}) of people {grp} relative to people {rgrp} "
            f"is {num(v)} times their cost ({cost_target}) relative to them "
            + tail.format("label gap, ")
            + f": a cost label {side} their need."
        )
    if rule.metric == "unmet_need_gap":
        ug, ur = get("unmet_need_rate", row.group), get("unmet_need_rate", ref)
        return (
            f"At {op} of {row.model} scores, {pct(ug)} of people {grp} with the highest need are not flagged, "
            f"against {pct(ur)} of people {rgrp} "
            + f"(gap {points_text(v)}, {interval(lo, hi, level, signed)}; {n_text(n)})."
        )
    return (
        f"With the referral gate at {op} of {row.model} scores, people {grp} who need specialist care are refused "
        f"{num(v)} times as often as people {rgrp} " + tail.format("") + "."
    )
