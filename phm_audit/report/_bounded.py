"""Findings without a graded value: flags bounded from a count suppressed by disclosure control, and
``review`` findings for values not reported (see :mod:`phm_audit.report._findings`).

A row is suppressed for its own small count where its ``reason_code`` is ``"suppressed"``, whatever its
``reason`` says; the bound is the threshold of the :class:`~phm_audit.report.DisclosureControl` applied.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np
import pandas as pd

from phm_audit.report._rules import Finding, Rule, effect, row_fields
from phm_audit.report._sentences import Words, metric_words, n_text, num, pct, points_text

__all__ = ["BOUNDED", "bounded_findings", "few_people", "undefined_findings"]

BOUNDED = ("flagged_to_high_need_ratio", "tpr_difference")


def few_people(minimum: int) -> str:
    """Why a comparison at equal score of a small group is graded review, not flag."""
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


def bounded_findings(
    rows: pd.DataFrame,
    rule: Rule,
    lookup: Mapping[tuple[str, ...], float],
    lookup_n: Mapping[tuple[str, ...], float],
    lookup_low: Mapping[tuple[str, ...], float],
    refs: Mapping[str, str],
    sizes: Mapping[tuple[str, str], int | None],
    *,
    level: float,
    threshold: int,
    words: Words,
) -> list[Finding]:
    """Flags that survive disclosure control.

    Where a group's flagged count is suppressed (``reason_code`` ``"suppressed"``: at most ``threshold``,
    7 by default), its share of the flagged, or of its high-need members flagged, is at most
    ``threshold`` over the published total. That bound gives the effect; the interval is replaced by a
    conservative one: the exact (Clopper-Pearson) upper confidence bound of ``threshold`` out of the
    total, against the lower end of the comparison's own interval. Both must clear the flag rule, as for
    any other flag.
    """
    from scipy.stats import beta

    def upper(count: int, total: float) -> float:
        # one-sided upper bound at the interval's level, for a count of at most `count` out of `total`
        if count >= total:
            return 1.0
        return float(beta.ppf(1 - (1 - level) / 2, count + 1, total - count))

    out: list[Finding] = []
    for record in rows.to_dict(orient="records"):
        if str(record.get("reason_code", "")) != "suppressed":
            continue
        row = _Row(**{k: str(record[k]) for k in _Row._fields})
        most = threshold
        ref = refs[row.attribute]
        grp, rgrp = words.group(row.attribute, row.group), words.group(row.attribute, ref)
        op = words.point(row.operating_point)
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
                f"At {op} of {row.model} scores, people {grp} are {pct(hs)} of those with the highest need but "
                f"fewer than {most + 1} of the {flagged:,.0f} flagged (at most {pct(most / flagged)}; ratio at most "
                f"{num(bound)}; {n_text(n)})."
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
                f"highest need are flagged (at most {pct(most / high)}), against {pct(ref_tpr)} of people {rgrp} "
                f"(difference at most {points_text(bound)}; {n_text(n)})."
            )
        out.append(
            Finding(
                grade="flag",
                text=text,
                **row_fields(row),
                reference=ref,
                value=None,
                ci_low=None,
                ci_high=None,
                n=n,
                effect=float(effect(rule, np.array([bound]))[0]),
                adverse=True,
                reason=str(row.reason),
            )
        )
    return out


def undefined_findings(
    rows: pd.DataFrame, refs: Mapping[str, str], sizes: Mapping[tuple[str, str], int | None], words: Words
) -> list[Finding]:
    """One ``review`` finding per model, group, operating point and reason, naming the metrics."""
    out: list[Finding] = []
    if rows.empty:
        return out
    keys = ["model", "analysis", "attribute", "group", "operating_point", "reason"]
    for key, sub in rows.groupby(keys, sort=False):
        model, analysis, attribute, group, op, reason = (str(k) for k in key)
        metrics = list(dict.fromkeys(sub["metric"]))
        names = ", ".join(metric_words(m, analysis) for m in metrics)
        where = f"at the same {model} score" if analysis == "calibration" else f"at {words.point(op)} of {model} scores"
        n = sizes.get((attribute, group))
        out.append(
            Finding(
                grade="review",
                adverse=True,
                text=(
                    f"Not reported for people {words.group(attribute, group)} {where} ({names}): "
                    f"{reason or 'undefined'} ({n_text(n)})."
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
