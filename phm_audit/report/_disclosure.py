"""Statistical disclosure control for every published output of an audit.

The rules follow NHS Digital's practice for secondary-care statistics (since September 2018):

1. **Primary suppression.** A count of 1 to ``threshold`` people (default 7) in any cell is not
   published: the count becomes missing, the ``reason`` says ``suppressed (disclosure control):
   fewer than 8 people`` and the ``reason_code`` is ``suppressed`` (``suppressed_complement`` or
   ``suppressed_secondary`` for the hidden cells of rules 3 and 5). A value the audit had already left
   undefined keeps its own reason and the code ``undefined``. Zero is published (it is not a person).
2. **Rounding.** Every other count is rounded to the nearest multiple of ``rounding`` (default 5;
   halves round up). A count above the threshold never rounds down into ``1 .. threshold`` or to 0:
   it is raised to the first multiple of ``rounding`` above the threshold.
3. **Rates from rounded counts.** A rate of counts is recomputed as rounded numerator over rounded
   denominator, and suppressed when either falls in ``1 .. threshold``; see :data:`DENOMINATOR_RATES`
   (``n`` is the denominator, so the numerator is ``value * n``) and :data:`NUMERATOR_SHARES` (``n`` is
   the numerator, the denominator is ``n / value``). The net benefit of treating everyone is a
   transformed prevalence and is recomputed from the rounded count of events. Where a value so
   recomputed falls outside its bootstrap interval (made from the exact counts), the interval is
   widened to hold it: a published interval always holds its published value.
4. **Statistics on few people.** Any statistic whose ``n`` is suppressed is suppressed with it
   (value and interval), whatever the statistic: a mean, a ratio or a difference on 1 to 7 people
   is not published.
5. **Secondary (complementary) suppression.** Within every set of cells bound by a published total —
   the groups of one attribute for one model, analysis, operating point, metric and target; for an
   intersection such as ``ethnicity x imd_quintile``, the cells that share one component (all of
   ``Black | *``) with that component's own group (``Black``); a group's need bands
   (``selection_rate_need_*``) with the group's ``selection_rate`` — a set never holds exactly one
   suppressed cell: the smallest other published cell (preferring one with people) is suppressed as
   well, and this repeats, across all sets and all counts (n, numerators, count values), until none
   has a lone suppressed cell. A published total of 0 with a hidden part is hidden too (0 would tell
   every part). An intersection's components are read from the structured ``components`` and
   ``parts`` of ``AuditResult.groups``, never by splitting a label. Calibration curves are a two-way
   table (groups by score bins), partitioned both by group and by bin. What each metric's ``n`` and
   value count comes from the registry :mod:`phm_audit.audit._metrics`; an undeclared metric raises.
6. **Curve means** are means of outcomes, not counts: they are suppressed where the bin holds 1 to
   ``threshold`` people, and otherwise published as computed.
7. **Text.** Numbers in reasons and notes (for example "the group has 3 events") are treated as
   counts: 1 to ``threshold`` becomes ``*`` and others are rounded.

Other statistics (ratios at equal score, differences, AUROC, net benefit, shares of need captured)
are published as computed when their ``n`` is published: each depends on many people and on
several counts at once, so it does not reveal one small count.

This module applies the rules to a table and a result; the settings and reasons are in
:mod:`~phm_audit.report._control`, the suppression grid (rule 5) in :mod:`~phm_audit.report._suppression`,
the recomputation of derived statistics in :mod:`~phm_audit.report._derived`, and text (rule 7) in
:mod:`~phm_audit.report._disclosure_text`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from phm_audit.audit import describe_point
from phm_audit.audit._metrics import METRICS, lookup
from phm_audit.audit._result import AuditResult
from phm_audit.exceptions import PhmTypeError
from phm_audit.report._control import (
    COMPLEMENT_SMALL,
    OWN_SMALL,
    PROTECTS,
    SECONDARY_REASON,
    DisclosureControl,
    complement_reason,
    is_small,
    rounded_counts,
    suppressed_reason,
)
from phm_audit.report._derived import derive, infer_references
from phm_audit.report._disclosure_text import disclose_label, disclose_provenance, scrub_text
from phm_audit.report._suppression import (
    Structure,
    complementary_suppression,
    group_structure,
    infer_structure,
    relations,
    suppress_grid,
)

__all__ = [
    "COUNT_METRICS",
    "DENOMINATOR_RATES",
    "NUMERATOR_SHARES",
    "SECONDARY_REASON",
    "DisclosureControl",
    "apply_disclosure",
    "complementary_suppression",
    "disclose_label",
    "disclose_provenance",
    "disclose_result",
    "group_structure",
    "scrub_text",
    "suppressed_reason",
]

#: Metrics whose value is itself a number of people (from the registry, :mod:`phm_audit.audit._metrics`).
COUNT_METRICS = frozenset(d.name for d in METRICS if d.n_role == "value" and not d.family)

#: Rates whose ``n`` is the denominator (from the registry); names ending in ``*`` are families.
DENOMINATOR_RATES = tuple(d.name + ("*" if d.family else "") for d in METRICS if d.n_role == "denominator")

#: Shares whose ``n`` is the numerator, as ``(analysis, metric or family*)`` (from the registry).
NUMERATOR_SHARES = tuple((d.analysis, d.name + ("*" if d.family else "")) for d in METRICS if d.n_role == "numerator")

#: Rates that are each other's complement (1 - x) on the same denominator: suppressing one suppresses both.
#: The unmet-need rate is the fnr of the threshold sweep and of the allocation analyses.
COMPLEMENTS = (("tpr", "fnr"), ("tpr", "unmet_need_rate"))

#: The keys that, with the group, identify one cell of the tidy table.
_KEY = ["model", "analysis", "attribute", "operating_point", "metric", "target", "feature"]
_CURVE_KEY = ["model", "attribute", "target", "bins"]


def _table_disclosure(
    table: pd.DataFrame,
    control: DisclosureControl,
    references: Mapping[str, str],
    structure: Structure,
    points: Mapping[str, Mapping[str, Any]] | None = None,
) -> pd.DataFrame:
    out = table.copy()
    if out.empty:
        return out
    value = out["value"].to_numpy(dtype=np.float64).copy()
    low = out["ci_low"].to_numpy(dtype=np.float64).copy()
    high = out["ci_high"].to_numpy(dtype=np.float64).copy()
    n = out["n"].to_numpy(dtype=np.float64, na_value=np.nan).copy()
    reason = out["reason"].to_numpy(dtype=object).astype(str).copy()
    metric = out["metric"]
    analysis = out["analysis"].to_numpy(dtype=object).astype(str)

    # what each row's n and value count, from the registry; an undeclared metric fails here, unpublished
    pair_code = pd.MultiIndex.from_arrays([analysis, metric.to_numpy(dtype=object).astype(str)]).codes
    combined = pair_code[0].astype(np.int64) * (int(pair_code[1].max(initial=0)) + 1) + pair_code[1]
    _, first, inverse = np.unique(combined, return_index=True, return_inverse=True)
    roles = np.array([lookup(str(metric.iloc[i]), str(analysis[i])).n_role for i in first], dtype=object)[inverse]
    is_count = roles == "value"
    is_numerator_share = roles == "numerator"
    is_rate = roles == "denominator"
    is_treat_all = (metric == "net_benefit_treat_all").to_numpy()

    # the counts each row publishes or implies
    numerator = np.where(is_rate, value * n, np.where(is_numerator_share, n, np.nan))
    with np.errstate(divide="ignore", invalid="ignore"):
        denominator = np.where(is_rate, n, np.where(is_numerator_share & (value > 0), n / value, np.nan))
    odds = np.full(len(out), np.nan)
    if is_treat_all.any():
        pt = _threshold_probabilities(out["operating_point"], points)
        odds = pt / (1 - pt)
        numerator = np.where(is_treat_all, (value + odds) / (1 + odds) * n, numerator)  # events
        denominator = np.where(is_treat_all, n, denominator)
    numerator = np.round(numerator)
    denominator = np.round(denominator)
    count_value = np.where(is_count, np.abs(np.round(value)), np.nan)
    count_signed = np.where(is_count, np.round(value), np.nan)  # a change of a count may be negative

    n_small, num_small, val_small = (
        is_small(n, control),
        is_small(numerator, control),
        is_small(count_value, control),
    )
    den_sup = is_small(denominator, control)
    # a row hidden because of its own small count says "fewer than 8"; one hidden only to protect
    # another (complementary suppression) says so
    primary = n_small | num_small | val_small | den_sup
    n_sup, hide = n_small.copy(), primary.copy()
    keyed = out[[*_KEY, "group"]].copy()
    keyed["metric"] = keyed["metric"].replace({b: a for a, b in COMPLEMENTS})
    both = keyed["metric"].isin([a for a, _ in COMPLEMENTS]).to_numpy()
    grouped = keyed[both].groupby([*_KEY, "group"], sort=False) if both.any() else None
    # the same count published by several analyses (fairness and the threshold sweep both publish the
    # number flagged at top_3pct) is hidden in all of them or in none: one would undo the other's suppression
    same = out[["model", "operating_point", "target", "feature", "attribute", "group", "metric"]].astype(str)
    same_code = same.groupby(list(same.columns), sort=False).ngroup().to_numpy()
    shared = pd.Series(out["analysis"].to_numpy()).groupby(same_code).transform("nunique").to_numpy() > 1

    def everywhere(mask: np.ndarray) -> np.ndarray:
        if not shared.any():
            return mask
        spread = pd.Series(mask[shared]).groupby(same_code[shared]).transform("any").to_numpy()
        merged = mask.copy()
        merged[shared] = spread
        return merged

    # repeat until nothing changes: a cell hidden to protect one total may leave another total with a
    # lone hidden cell (a group's bands, its intersection cells and its parent are linked)
    for _ in range(12):
        before = hide.copy()
        n_sup = everywhere(suppress_grid(out, n, n_sup, references, structure, control))
        num_sup = suppress_grid(out, numerator, hide | n_sup, references, structure, control)
        val_sup = suppress_grid(out, count_signed, hide | n_sup, references, structure, control, signed=True)
        hide = everywhere(hide | n_sup | num_sup | val_sup | den_sup)
        if grouped is not None:
            # complements on the same denominator (tpr, fnr, unmet_need_rate) go together
            hide[both] = (
                pd.Series(hide[both], index=keyed.index[both]).groupby(grouped.ngroup()).transform("any").to_numpy()
            )
        if (hide == before).all():
            break
    secondary = hide & ~primary
    # why a hidden row is hidden: its own small count, its complement's, or to protect another cell
    cause = np.where(primary, OWN_SMALL, PROTECTS).astype(np.int8)
    if grouped is not None:
        small = pd.Series(hide[both] & primary[both], index=keyed.index[both])
        partner_small = small.groupby(grouped.ngroup()).transform("any").to_numpy() & ~primary[both]
        cause[both] = np.where(partner_small, COMPLEMENT_SMALL, cause[both])

    # recompute from rounded counts
    r_num = rounded_counts(numerator, control)
    r_den = rounded_counts(denominator, control)
    with np.errstate(divide="ignore", invalid="ignore"):
        recomputed = np.where(r_den > 0, r_num / r_den, np.nan)
        prevalence = recomputed
        treat_all = prevalence - (1 - prevalence) * odds
    use = (is_rate | is_numerator_share) & np.isfinite(value) & np.isfinite(recomputed)
    value = np.where(use, recomputed, value)
    value = np.where(is_treat_all & np.isfinite(value) & np.isfinite(treat_all), treat_all, value)
    counted = is_count & np.isfinite(value)
    value = np.where(counted, np.sign(value) * rounded_counts(np.abs(np.round(value)), control), value)
    for arr in (low, high):
        rounded = np.sign(arr) * rounded_counts(np.abs(np.round(arr)), control)
        arr[:] = np.where(is_count & np.isfinite(arr), rounded, arr)
        # an interval bound that is itself a count of 1 to threshold people is not published either
        arr[is_count & is_small(np.abs(np.round(arr)), control)] = np.nan

    # statistics computed from other published ones are recomputed from them, and hidden with them
    derive(out, value, hide, references, cause)
    # a value recomputed from rounded counts can leave its bootstrap interval (computed from the exact
    # counts): the interval is widened to hold it, so that a published interval always holds its value
    bounded = np.isfinite(value) & np.isfinite(low) & np.isfinite(high)
    low[bounded] = np.minimum(low[bounded], value[bounded])
    high[bounded] = np.maximum(high[bounded], value[bounded])

    was_defined = np.isfinite(value)
    value[hide], low[hide], high[hide] = np.nan, np.nan, np.nan
    scrubbed = {r: scrub_text(r, control) for r in dict.fromkeys(reason)}  # few distinct reasons
    reason = pd.Series(reason).map(scrubbed).to_numpy(dtype=object)
    stated = hide & (was_defined | (reason == ""))
    if "reason_code" in out:
        code = out["reason_code"].to_numpy(dtype=object).copy()
    else:
        code = np.where(reason == "", "", "undefined").astype(object)
    # the code says what the words say: a value the audit could not define keeps "undefined" and its own
    # words, even where its row is hidden too (there was no value to hide)
    for cause_code, words, text, name in (
        (OWN_SMALL, stated, suppressed_reason(control), "suppressed"),
        (COMPLEMENT_SMALL, stated, complement_reason(control), "suppressed_complement"),
        (PROTECTS, stated | secondary, SECONDARY_REASON, "suppressed_secondary"),
    ):
        chosen = words & hide & (cause == cause_code)
        reason[chosen] = text
        code[chosen] = name
    n_out = np.where(np.isfinite(n), rounded_counts(n, control), np.nan)
    n_out[n_sup] = np.nan
    out["operating_point"] = disclose_label(out["operating_point"], control)
    out["value"] = value
    out["ci_low"] = low
    out["ci_high"] = high
    out["n"] = pd.Series(np.round(n_out), index=out.index).astype("Float64").astype("Int64")
    out["reason"] = reason.astype(str)
    out["reason_code"] = code.astype(str)
    return out


def _threshold_probabilities(labels: pd.Series, points: Mapping[str, Mapping[str, Any]] | None) -> np.ndarray:
    """The threshold probability of each row's operating point (NaN where it is not one), as the audit
    describes the point (``AuditResult.operating_points``, else :func:`phm_audit.audit.describe_point`)."""
    value: dict[str, float] = {}
    for name in dict.fromkeys(labels.astype(str)):
        info = (points or {}).get(name) or describe_point(name)
        found = info.get("value")
        value[name] = float(found) if info.get("kind") == "threshold_probability" and found is not None else np.nan
    return labels.astype(str).map(value).to_numpy(dtype=np.float64, na_value=np.nan)


def _curve_disclosure(
    curves: pd.DataFrame, control: DisclosureControl, references: Mapping[str, str], structure: Structure
) -> pd.DataFrame:
    out = curves.copy()
    if out.empty:
        return out
    n = pd.to_numeric(out["n"], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    hide = is_small(n, control)
    primary = hide.copy()
    tables = out.groupby(_CURVE_KEY, sort=False, dropna=False).indices
    for rows in tables.values():  # one two-way table (groups x bins) per model, attribute, target and bins
        sub = out.iloc[rows]
        labels = list(dict.fromkeys(sub["group"]))
        bins = np.sort(sub["bin"].unique())
        g_idx = pd.Categorical(sub["group"], categories=labels).codes.astype(np.int64)
        b_idx = np.searchsorted(bins, sub["bin"].to_numpy())
        g_n, b_n = len(labels), bins.size
        grid = np.full(g_n * b_n, np.nan)
        cells = g_idx * b_n + b_idx
        grid[cells] = n[rows]
        prim = np.zeros(g_n * b_n, dtype=bool)
        prim[cells] = primary[rows]
        by_group = np.kron(np.eye(g_n, dtype=bool), np.ones((1, b_n), dtype=bool))  # each group's bins
        attribute = str(sub["attribute"].iloc[0])
        group_parts = relations([(attribute, g, "") for g in labels], structure)
        by_bin = np.kron(group_parts, np.eye(b_n, dtype=bool))  # each bin's groups (and marginals)
        parts = np.concatenate([by_group, by_bin]) if by_bin.size else by_group
        reference = references.get(str(sub["attribute"].iloc[0]))
        avoid = np.repeat(np.array([g == reference for g in labels]), b_n)
        done = complementary_suppression(grid[None, :], prim[None, :], parts, avoid)[0]
        hide[rows] = done[cells]
    mean = out["mean"].to_numpy(dtype=np.float64).copy()
    low = out["ci_low"].to_numpy(dtype=np.float64).copy()
    high = out["ci_high"].to_numpy(dtype=np.float64).copy()
    mean[primary], low[primary], high[primary] = np.nan, np.nan, np.nan
    n_out = np.where(np.isfinite(n), rounded_counts(n, control), np.nan)
    n_out[hide] = np.nan
    out["mean"], out["ci_low"], out["ci_high"] = mean, low, high
    out["n"] = n_out
    return out


def apply_disclosure(
    table: pd.DataFrame,
    curves: pd.DataFrame,
    control: DisclosureControl,
    *,
    references: Mapping[str, str] | None = None,
    structure: Structure | None = None,
    points: Mapping[str, Mapping[str, Any]] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Apply disclosure control to the tidy metrics table and the calibration curves.

    Parameters
    ----------
    table : pandas.DataFrame
        ``AuditResult.table()``.
    curves : pandas.DataFrame
        ``AuditResult.curves()``.
    control : DisclosureControl
        The rules; with ``enabled=False`` both frames are returned unchanged (as copies).
    references : mapping of str to str, optional
        Reference group per attribute, for differences and ratios against it (recomputed from the
        published rates, and hidden with them); default read from the table (the group whose
        differences are all 0).
    structure : mapping, optional
        The components of each intersection (:func:`group_structure` of ``AuditResult.groups``), so that
        an intersection's cells are protected with the groups they add up to; default
        :func:`infer_structure` of the table (a fallback: :func:`disclose_result` passes the structure).
    points : mapping, optional
        What each operating point means (``AuditResult.operating_points``), for the threshold probability
        of a net benefit; default :func:`phm_audit.audit.describe_point` of each label.

    Returns
    -------
    (table, curves) : tuple of pandas.DataFrame
        Same columns and rows; suppressed counts and statistics are missing, with the reason.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"model": "m", "analysis": "fairness", "attribute": "sex", "group": ["F", "M", "X"],
    ...                   "operating_point": "top_3pct", "metric": "n", "value": [512.0, 488.0, 3.0],
    ...                   "ci_low": float("nan"), "ci_high": float("nan"), "n": [512, 488, 3],
    ...                   "target": "", "feature": "", "reason": ""})
    >>> out, _ = apply_disclosure(t, pd.DataFrame(columns=["model", "attribute", "target", "bins", "group",
    ...                                                   "bin", "mean", "ci_low", "ci_high", "n"]),
    ...                           DisclosureControl())
    >>> out["n"].tolist()  # 3 is suppressed, and so is the next smallest group, so 3 = 1003 - 512 - 488 is hidden
    [510, <NA>, <NA>]
    """
    if not isinstance(control, DisclosureControl):
        raise PhmTypeError(f"control must be a DisclosureControl; got {type(control).__name__}")
    if not control.enabled:
        return table.copy(), curves.copy()
    references = infer_references(table) if references is None else references
    structure = infer_structure(table) if structure is None else structure
    return (
        _table_disclosure(table, control, references, structure, points),
        _curve_disclosure(curves, control, references, structure),
    )


def _disclose_groups(groups: Mapping[str, Mapping[str, Any]], control: DisclosureControl) -> dict[str, dict[str, Any]]:
    """Group sizes of every attribute and intersection, suppressed together (an intersection's cells add
    up to its components' groups)."""
    out: dict[str, dict[str, Any]] = {str(a): dict(info) for a, info in groups.items()}
    cells: list[tuple[str, str, str]] = []
    sizes: list[float] = []
    for attribute, entry in out.items():
        labels, values = list(entry.get("labels", [])), list(entry.get("sizes", []))
        if values and len(labels) == len(values):
            cells += [(attribute, str(lab), "sizes") for lab in labels]
            sizes += [float(v) for v in values]
    if not cells:
        return out
    counts = np.array(sizes)
    parts = relations(cells, group_structure(groups))
    avoid = np.array([g == str(out[a].get("reference")) for a, g, _ in cells])
    hide = complementary_suppression(counts[None, :], is_small(counts, control)[None, :], parts, avoid)[0]
    rounded = rounded_counts(counts, control)
    at = 0
    for entry in out.values():
        labels, values = list(entry.get("labels", [])), list(entry.get("sizes", []))
        if values and len(labels) == len(values):
            k = len(values)
            entry["sizes"] = [
                None if h else int(v) for h, v in zip(hide[at : at + k], rounded[at : at + k], strict=True)
            ]
            at += k
    return out


def disclose_result(result: AuditResult, control: DisclosureControl) -> AuditResult:
    """An :class:`AuditResult` with disclosure control applied to everything it publishes.

    The metrics table and curves (:func:`apply_disclosure`), the group sizes, the number of people
    audited, and the counts in notes and reasons.

    Parameters
    ----------
    result : AuditResult
    control : DisclosureControl

    Returns
    -------
    AuditResult
        The same result when ``control.enabled`` is False.
    """
    if not control.enabled:
        return result
    references = {a: str(info["reference"]) for a, info in result.groups.items() if "reference" in info}
    table, curves = apply_disclosure(
        result.table(),
        result.curves(),
        control,
        references=references,
        structure=group_structure(result.groups),
        points=result.operating_points,
    )
    cohort = dict(result.cohort)
    if isinstance(cohort.get("n"), int | np.integer | float) and np.isfinite(float(cohort["n"])):
        n = float(cohort["n"])
        cohort["n"] = None if is_small(np.array([n]), control)[0] else int(rounded_counts(np.array([n]), control)[0])
    return dataclasses.replace(
        result,
        groups=_disclose_groups(result.groups, control),
        cohort=cohort,
        notes=tuple(scrub_text(note, control) for note in result.notes),
        _metrics=table,
        _curves=curves,
        operating_points={},  # described again from the disclosed labels (a small capacity is hidden)
        # the primary decision's label as the table now holds it (a capacity in it is rounded too)
        primary_operating_point=str(disclose_label(pd.Series([result.primary_operating_point]), control).iloc[0]),
    )
