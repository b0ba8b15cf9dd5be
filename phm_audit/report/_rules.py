"""The rules that grade findings (:class:`FindingRules`), one graded finding (:class:`Finding`), and each
rule's metric with its parity and harmful side, read from the metric registry
(:mod:`phm_audit.audit._metrics`). How findings are graded is documented in :mod:`phm_audit.report._findings`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal, TypedDict

import numpy as np

from phm_audit.audit import lookup
from phm_audit.exceptions import PhmInputError

__all__ = ["GRADES", "Finding", "FindingRules", "Grade", "Rule", "effect", "graded_rules"]

Grade = Literal["flag", "review", "ok"]
GRADES: tuple[Grade, ...] = ("flag", "review", "ok")


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
class Rule:
    """One grading rule: a metric of an analysis, its parity, harmful side and flag threshold."""

    analysis: str
    metric: str
    parity: float
    harm: Literal["low", "high"]
    threshold: float
    log: bool  # a ratio (effect on the log scale) or a difference


class RowFields(TypedDict):
    """The columns that say which row of the tidy table a finding is about."""

    model: str
    analysis: str
    attribute: str
    group: str
    operating_point: str
    metric: str
    target: str


def row_fields(row: Any) -> RowFields:
    """The identifying fields of a table row (a named tuple), as a finding carries them."""
    return RowFields(
        model=str(row.model),
        analysis=str(row.analysis),
        attribute=str(row.attribute),
        group=str(row.group),
        operating_point=str(row.operating_point),
        metric=str(row.metric),
        target=str(row.target),
    )


def graded_rules(rules: FindingRules) -> list[Rule]:
    """The rules, in order, with their thresholds from ``rules``; each metric's kind (a ratio, parity 1, or a
    difference, parity 0) and harmful side come from the metric registry."""
    thresholds = (
        ("fairness", "flagged_to_high_need_ratio", rules.share_ratio),
        ("fairness", "selection_ratio_at_equal_need", rules.selection_ratio),
        ("fairness", "tpr_difference", -rules.tpr_gap),
        ("calibration", "need_ratio_at_equal_score", rules.need_ratio),
        ("calibration", "label_gap_at_equal_score", rules.label_gap),
        ("allocation", "unmet_need_gap", rules.unmet_need_gap),
        ("referral", "refused_rate_ratio", rules.refused_ratio),
    )
    out = []
    for analysis, metric, threshold in thresholds:
        decl = lookup(metric, analysis)
        if decl.kind not in ("ratio", "difference") or decl.harmful not in ("lower", "higher"):
            raise ValueError(f"metric {metric}: a graded metric must be a ratio or a difference with a harmful side")
        ratio = decl.kind == "ratio"
        harm: Literal["low", "high"] = "low" if decl.harmful == "lower" else "high"
        out.append(Rule(analysis, metric, 1.0 if ratio else 0.0, harm, threshold, ratio))
    return out


def effect(rule: Rule, v: np.ndarray) -> np.ndarray:
    """Distance of each value from parity in units of the rule's threshold (1 = at the threshold); 0 if undefined."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if rule.log:
            out = np.abs(np.log(v)) / abs(math.log(rule.threshold))
        else:
            out = np.abs(v - rule.parity) / abs(rule.threshold - rule.parity)
    return np.where(np.isfinite(out), out, 0.0)
