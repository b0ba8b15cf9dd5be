"""The headline's statements in words: one :class:`Statement` per effect, with its interval, n, people
affected, mechanism and what would fix it (see :mod:`phm_audit.report._headline`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from phm_audit.audit._result import AuditResult
from phm_audit.report._candidates import Candidate, beside_of, main_need_cell
from phm_audit.report._mechanism import TableIndex, clean, is_proxy
from phm_audit.report._rules import Finding
from phm_audit.report._sentences import Words

__all__ = ["Statement", "statement"]

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


def _measure(target: str) -> str:
    return (
        f"{target}, ground truth known only on a synthetic cohort"
        if not is_proxy(target)
        else (f"{target}, a recorded proxy of need")
    )


def _why(c: Candidate, level: float, by_cell: Mapping[tuple[str, ...], Finding], beside: Any, words: Words) -> str:
    cell = main_need_cell(c, by_cell)
    if c.mechanism is None or cell is None:
        return (
            " Why: not settled here (the need ratio and the label gap at equal score are not both conclusive); "
            "see the calibration detail."
        )
    rgrp = words.group(c.attribute, cell.reference)
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


def _fix_key(c: Candidate) -> str:
    if c.mechanism == "label" and not c.extra.get("cost_label"):
        return "proxy_label"
    return c.mechanism or ""


def _also(c: Candidate) -> str:
    others = list(c.extra.get("others", []))
    if not others:
        return ""
    shown = ", ".join(others[:4]) + (f" and {len(others) - 4} more" if len(others) > 4 else "")
    return f" The same in {shown}."


def statement(
    c: Candidate,
    result: AuditResult,
    index: TableIndex,
    level: float,
    primary: str,
    by_cell: Mapping[tuple[str, ...], Finding],
    words: Words,
) -> Statement:
    """The statement of one candidate."""
    f = c.finding
    grp = words.group(c.attribute, c.group)
    rgrp = words.group(c.attribute, f.reference)
    op = words.point(primary)
    people = _per_100k(c.people)
    metric, value, lo, hi = f.metric, f.value, f.ci_low, f.ci_high
    target = ""
    beside = None
    if c.kind == "under_served":
        hs = index.get(c.model, "fairness", c.attribute, c.group, primary, "high_need_share")[0]
        fs = index.get(c.model, "fairness", c.attribute, c.group, primary, "flagged_share")[0]
        beside = beside_of(c, result, index, by_cell)
        cell = main_need_cell(c, by_cell)
        target = cell.target if cell is not None else str(result.cohort.get("high_need_target") or "")
        text = (
            f"{c.model} under-serves people {grp}: at {op} of its scores they are {_pct(hs)} of those with the "
            f"highest need but {_pct(fs)} of those flagged (ratio {_num(value)}, {_ci(lo, hi, level)}; {_n(f.n)}), "
            f"about {people} high-need people per 100,000 of the population left out."
            + _why(c, level, by_cell, beside, words)
            + _also(c)
        )
    elif c.kind == "under_stated":
        beside = beside_of(c, result, index, by_cell)
        target = f.target
        text = (
            f"{c.model} under-states the need of people {grp}"
            + (
                f" (about {people} high-need people per 100,000 of the population left out of {op})."
                if c.people > 0
                else f" (at {op} they are not flagged less than their share of the highest need)."
            )
            + _why(c, level, by_cell, beside, words)
            + f" ({_n(f.n)}.)"
            + _also(c)
        )
    elif c.kind == "capacity":
        e = c.extra
        cause: Candidate = e["cause"]
        g_now, r_now, g_then, r_then = e["g_now"], e["r_now"], e["g_then"], e["r_then"]
        metric, value, lo, hi = "unmet_need_rate", g_then[0], g_then[1], g_then[2]
        gap_now = g_now[0] - r_now[0]
        gap_then = g_then[0] - r_then[0]
        change = _gap_change(gap_now, gap_then)
        text = (
            f"Capacity: with twice the places ({words.point(e['op'])} of {c.model} scores instead of "
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
    c: Candidate,
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
        value=clean(value),
        ci_low=clean(lo),
        ci_high=clean(hi),
        n=n,
        people_affected=round(float(c.people), 1),
        mechanism=c.mechanism,
        kind=c.kind,
        target=target,
        need_is_proxy=bool(target) and is_proxy(target),
        models=(c.model, *c.extra.get("others", [])) if c.kind in ("under_served", "under_stated") else (c.model,),
        fix=fix,
        evidence=_EVIDENCE[c.kind],
        beside=beside,
    )
