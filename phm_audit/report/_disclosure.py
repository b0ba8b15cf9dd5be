"""Statistical disclosure control for every published output of an audit.

The rules follow NHS Digital's practice for secondary-care statistics (since September 2018):

1. **Primary suppression.** A count of 1 to ``threshold`` people (default 7) in any cell is not
   published: the count becomes missing and the ``reason`` says ``suppressed (disclosure control):
   fewer than 8 people``. Zero is published (it is not a person).
2. **Rounding.** Every other count is rounded to the nearest multiple of ``rounding`` (default 5;
   halves round up). A count above the threshold never rounds down into ``1 .. threshold`` or to 0:
   it is raised to the first multiple of ``rounding`` above the threshold.
3. **Rates from rounded counts.** A rate of counts is recomputed as rounded numerator over rounded
   denominator, and suppressed when either falls in ``1 .. threshold``; see :data:`DENOMINATOR_RATES`
   (``n`` is the denominator, so the numerator is ``value * n``) and :data:`NUMERATOR_SHARES` (``n`` is
   the numerator, the denominator is ``n / value``). The net benefit of treating everyone is a
   transformed prevalence and is recomputed from the rounded count of events.
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
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast, overload

import numpy as np
import pandas as pd

from phm_audit.audit._metrics import METRICS, lookup
from phm_audit.audit._result import AuditResult
from phm_audit.exceptions import PhmInputError, PhmTypeError
from phm_audit.report._protection import Equations, by_component, equations, exposed, round_counts

__all__ = [
    "COUNT_METRICS",
    "DENOMINATOR_RATES",
    "NUMERATOR_SHARES",
    "DisclosureControl",
    "apply_disclosure",
    "disclose_result",
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
_TOTAL_GROUP = "all"


@dataclass(frozen=True)
class DisclosureControl:
    """Settings of statistical disclosure control.

    Parameters
    ----------
    threshold : int, default 7
        Counts of 1 to ``threshold`` people are suppressed.
    rounding : int, default 5
        Other counts are rounded to the nearest multiple of this (1: no rounding).
    enabled : bool, default True
        ``False`` publishes exact counts; every report made so says so at the top.

    Examples
    --------
    >>> DisclosureControl().describe()
    'counts of 1 to 7 suppressed; other counts rounded to the nearest 5; rates recomputed from rounded counts'
    """

    threshold: int = 7
    rounding: int = 5
    enabled: bool = True

    def __post_init__(self) -> None:
        for name, low in (("threshold", 0), ("rounding", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                raise PhmTypeError(f"DisclosureControl {name} must be a whole number; got {value!r}")
            if value < low:
                raise PhmInputError(f"DisclosureControl {name} must be at least {low}; got {value}")
        if not isinstance(self.enabled, bool):
            raise PhmTypeError(f"DisclosureControl enabled must be True or False; got {self.enabled!r}")

    def describe(self) -> str:
        """The rules in one line, for reports."""
        if not self.enabled:
            return "disclosure control is OFF: exact counts are published, including counts of 1 to 7 people"
        rounding = "not rounded" if self.rounding == 1 else f"rounded to the nearest {self.rounding}"
        return (
            f"counts of 1 to {self.threshold} suppressed; other counts {rounding}; rates recomputed from rounded counts"
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy, with the rules in words."""
        return {
            "enabled": self.enabled,
            "threshold": self.threshold,
            "rounding": self.rounding,
            "rules": self.describe(),
        }


#: Why a hidden row is hidden, strongest first (a derived row takes the strongest of its sources).
_OWN_SMALL, _COMPLEMENT_SMALL, _PROTECTS = 1, 2, 3

#: The ``reason`` of a value hidden only so that a smaller suppressed one cannot be worked out.
SECONDARY_REASON = "suppressed (disclosure control): hidden so that a smaller suppressed group cannot be derived"


def complement_reason(control: DisclosureControl) -> str:
    """The ``reason`` of a rate hidden because its complement (1 - rate, e.g. fnr for tpr) counts few people."""
    return (
        "suppressed (disclosure control): its complement (1 minus this rate) counts fewer than "
        f"{control.threshold + 1} people"
    )


def suppressed_reason(control: DisclosureControl) -> str:
    """The ``reason`` given to a suppressed value."""
    return f"suppressed (disclosure control): fewer than {control.threshold + 1} people"


def _round_counts(counts: np.ndarray, control: DisclosureControl) -> np.ndarray:
    """Round non-negative counts to the nearest multiple, halves up; never into 1..threshold or to 0."""
    return round_counts(counts, control.threshold, control.rounding)


def _is_small(counts: np.ndarray, control: DisclosureControl) -> np.ndarray:
    return np.isfinite(counts) & (counts >= 0.5) & (counts < control.threshold + 0.5)


#: ``{intersection: (component attributes, each label's component labels)}``, from ``AuditResult.groups``.
Structure = Mapping[str, tuple[tuple[str, ...], Mapping[str, tuple[str, ...]]]]


def group_structure(
    groups: Mapping[str, Mapping[str, Any]],
) -> dict[str, tuple[tuple[str, ...], dict[str, tuple[str, ...]]]]:
    """The components of every intersection, read from the structured ``components`` and ``parts`` of
    ``AuditResult.groups`` (never by splitting a label, which a group name could fool)."""
    out: dict[str, tuple[tuple[str, ...], dict[str, tuple[str, ...]]]] = {}
    for attribute, info in groups.items():
        components, parts, labels = info.get("components"), info.get("parts"), info.get("labels")
        if components and parts and labels and len(parts) == len(labels):
            out[str(attribute)] = (
                tuple(str(c) for c in components),
                {str(lab): tuple(str(p) for p in part) for lab, part in zip(labels, parts, strict=True)},
            )
    return out


def infer_structure(table: pd.DataFrame) -> dict[str, tuple[tuple[str, ...], dict[str, tuple[str, ...]]]]:
    """Intersections' components for a bare table (no ``AuditResult.groups``): a fallback for callers of
    :func:`apply_disclosure`. :func:`disclose_result` never uses it: it reads the structured parts.

    An attribute ``"a x b"`` is taken as an intersection of width 2. A label is matched against the
    joined labels of its components where they are attributes of the table too; otherwise it is split
    on ``" | "`` only if that gives exactly one part per component. A label that cannot be matched is
    left out of the component totals alone (it never switches the checks off for the other labels).
    """
    labels_of = {str(a): list(dict.fromkeys(g.astype(str))) for a, g in table.groupby("attribute", sort=False)["group"]}
    out: dict[str, tuple[tuple[str, ...], dict[str, tuple[str, ...]]]] = {}
    for attribute, labels in labels_of.items():
        components = tuple(attribute.split(" x "))
        if len(components) < 2:
            continue
        known: dict[str, tuple[str, ...]] = {}
        if all(c in labels_of for c in components):
            combos: list[tuple[str, ...]] = [()]
            for c in components:
                combos = [(*p, lab) for p in combos for lab in labels_of[c] if lab != _TOTAL_GROUP]
                if len(combos) > 100_000:
                    combos = []
                    break
            known = {" | ".join(p): p for p in combos}
        parts: dict[str, tuple[str, ...]] = {}
        for lab in labels:
            if lab in known:
                parts[lab] = known[lab]
            elif not known and len(lab.split(" | ")) == len(components):
                parts[lab] = tuple(lab.split(" | "))
        out[attribute] = (components, parts)
    return out


@overload
def _relations(
    cells: Sequence[tuple[str, str, str]],
    structure: Structure,
    bands: bool = ...,
    *,
    with_parents: Literal[False] = ...,
) -> np.ndarray: ...


@overload
def _relations(
    cells: Sequence[tuple[str, str, str]], structure: Structure, bands: bool = ..., *, with_parents: Literal[True]
) -> tuple[np.ndarray, np.ndarray]: ...


def _relations(
    cells: Sequence[tuple[str, str, str]], structure: Structure, bands: bool = False, *, with_parents: bool = False
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Sets of cells ``(attribute, group, metric)`` bound by a published total (P x C booleans).

    - the groups of one attribute, for one metric (their total is the population's);
    - for an intersection, the cells sharing one component's label **with that component's own group**
      (``Black | 1``, ``Black | 2``, ... add up to ``Black``);
    - with ``bands``, a group's need bands with the group itself (``selection_rate_need_*`` add up to
      ``selection_rate``'s counts).

    With ``with_parents``, also each relation's member that is the total of the others (-1 if none).
    """
    index = {c: i for i, c in enumerate(cells)}
    rows: list[list[int]] = []
    parents: dict[int, int] = {}  # relation: its member that is the total of the others
    by_attr_metric: dict[tuple[str, str], list[int]] = {}
    for i, (attribute, group, metric) in enumerate(cells):
        if group != _TOTAL_GROUP:
            by_attr_metric.setdefault((attribute, metric), []).append(i)
    rows += list(by_attr_metric.values())
    for (attribute, metric), members in by_attr_metric.items():
        for component, value, members_k in by_component(cells, members, structure.get(attribute)):
            # the cells alone (as if their total were published) and with their parent group: the
            # first is stricter when the parent is hidden, the second links the two tables
            rows.append(members_k)
            parent = index.get((component, value, metric))
            if parent is not None:
                rows.append([*members_k, parent])
                parents[len(rows) - 1] = parent
    if bands:
        by_group: dict[tuple[str, str], list[int]] = {}
        for i, (attribute, group, metric) in enumerate(cells):
            if metric.startswith("selection_rate_need_") or metric == "selection_rate":
                by_group.setdefault((attribute, group), []).append(i)
        for (attribute, group), members in by_group.items():
            rows.append(members)
            whole = index.get((attribute, group, "selection_rate"))
            if whole is not None:
                parents[len(rows) - 1] = whole
    out = np.zeros((len(rows), len(cells)), dtype=bool)
    for r, members in enumerate(rows):
        out[r, members] = True
    keep = out.sum(axis=1) >= 2
    if with_parents:
        total_of = np.array([parents.get(r, -1) for r in range(len(rows))], dtype=np.int64)
        return out[keep], total_of[keep]
    return out[keep]


def complementary_suppression(
    counts: np.ndarray, suppressed: np.ndarray, partitions: np.ndarray, avoid: np.ndarray | None = None
) -> np.ndarray:
    """Extend ``suppressed`` so that no partition holds exactly one suppressed cell.

    Parameters
    ----------
    counts : ndarray, shape (K, C)
        K independent tables of C cells (NaN where a cell is not published at all).
    suppressed : ndarray of bool, shape (K, C)
        Cells already suppressed.
    partitions : ndarray of bool, shape (P, C)
        Sets of cells whose total is known.
    avoid : ndarray of bool, shape (C,), optional
        Cells to suppress only when nothing else protects a partition (the reference group, whose
        values every comparison needs).

    Returns
    -------
    ndarray of bool, shape (K, C)
        Suppressed cells, with the smallest other cell of a partition (one with people, if any;
        not an avoided cell, if any) added wherever a partition had a single suppressed cell,
        repeated until none has.

    Examples
    --------
    >>> counts = np.array([[3.0, 40.0, 12.0]])
    >>> complementary_suppression(counts, counts < 8, np.ones((1, 3), dtype=bool)).tolist()
    [[True, False, True]]
    """
    out = suppressed.copy()
    if partitions.size == 0 or counts.size == 0:
        return out
    member = partitions[None, :, :]  # (1, P, C)
    size = np.minimum(np.abs(counts), 1e11)
    # the smallest cell with people first; empty cells only when nothing else is left; avoided cells
    # last. Ranked in tiers far apart but exact in float64 (1e24 + size would lose the size, and
    # every cell of an avoided group would tie)
    tier = np.where(size > 0, 0.0, 1.0)
    if avoid is not None:
        tier = tier + 2.0 * np.asarray(avoid, dtype=bool)[None, :]
    score = tier * 1e12 + np.where(size > 0, size, 0.0)
    score = score[:, None, :]
    published = np.isfinite(counts)[:, None, :]
    for _ in range(counts.shape[1] + 1):
        lone = (out[:, None, :] & member).sum(axis=2) == 1  # (K, P)
        if not lone.any():
            break
        key = np.where(member & published & ~out[:, None, :], score, np.inf)  # (K, P, C)
        pick = np.argmin(key, axis=2)  # (K, P)
        has = lone & np.isfinite(np.take_along_axis(key, pick[..., None], axis=2)[..., 0])
        k_idx, p_idx = np.nonzero(has)
        if k_idx.size == 0:
            break
        out[k_idx, pick[k_idx, p_idx]] = True
    return out


def _widen(grid: np.ndarray, done: np.ndarray, bad: np.ndarray, eqs: Equations, avoid: np.ndarray) -> int:
    """Hide, for each exposed cell, one more published cell of an equation it is in (the smallest with people;
    an avoided cell last). Returns the number hidden."""
    added = 0
    size = np.minimum(np.abs(grid), 1e11)
    score = (np.where(size > 0, 0.0, 1.0) + 2.0 * avoid[None, :]) * 1e12 + np.where(size > 0, size, 0.0)
    for k, j in np.argwhere(bad):
        if not bad[k, j]:
            continue
        members = np.unique(np.concatenate([eqs.members(e) for e in eqs.containing(int(j))]))
        open_ = members[~done[k, members] & np.isfinite(grid[k, members])]
        if open_.size == 0:
            continue
        done[k, open_[np.argmin(score[k, open_])]] = True
        added += 1
    return added


def _suppress_with_totals(
    grid: np.ndarray, hidden: np.ndarray, parts: np.ndarray, parent: np.ndarray, avoid: np.ndarray
) -> np.ndarray:
    """Complementary suppression, and a total of 0 hidden with a hidden part (it tells that every part is 0)."""
    done = complementary_suppression(grid, hidden, parts, avoid)
    with_total = np.flatnonzero(parent >= 0)
    if with_total.size:
        kids = parts[with_total].copy()
        kids[np.arange(with_total.size), parent[with_total]] = False
        kid_hidden = (done[:, None, :] & kids[None, :, :]).any(axis=2)  # (K, relations with a total)
        zero_total = grid[:, parent[with_total]] == 0
        k_hit, r_hit = np.nonzero(kid_hidden & zero_total)
        done[k_hit, parent[with_total][r_hit]] = True
    return done


def _suppress_grid(
    frame: pd.DataFrame,
    counts: np.ndarray,
    primary: np.ndarray,
    references: Mapping[str, str],
    structure: Structure,
    control: DisclosureControl | None = None,
    *,
    signed: bool = False,
) -> np.ndarray:
    """Primary plus complementary suppression of one count per row, across every published total it adds up to.

    Rows are tables by (model, analysis, operating point, target, feature); within one, the cells
    ``(attribute, group, metric)`` of one metric (or of ``selection_rate`` with its need bands) are
    bound by the relations of :func:`_relations`. With ``control``, the pattern is then checked as an
    attacker would (:mod:`phm_audit.report._protection`: every published total, the rounding taken
    into account) and widened until no hidden count is pinned down; ``signed`` counts may be negative.
    """
    out = primary.copy()
    if not len(frame):
        return out
    metric = frame["metric"].to_numpy(dtype=object).astype(str)
    analysis = frame["analysis"].to_numpy(dtype=object).astype(str)
    banded = (analysis == "fairness") & (
        (metric == "selection_rate") | np.char.startswith(metric, "selection_rate_need_")
    )
    family = np.where(banded, "selection_rate*", metric)
    table_key = ["model", "analysis", "operating_point", "target", "feature"]
    keyed = frame[table_key].astype(str).assign(_family=family)
    tables = keyed.groupby(table_key, sort=False, dropna=False).ngroup().to_numpy()
    attributes = frame["attribute"].to_numpy(dtype=object).astype(str)
    groups = frame["group"].to_numpy(dtype=object).astype(str)
    for key, rows in keyed.groupby(["analysis", "_family"], sort=False).indices.items():
        fam = str(cast(tuple, key)[1])
        cell_keys = list(zip(attributes[rows], groups[rows], metric[rows], strict=True))
        cells = list(dict.fromkeys(cell_keys))
        parts, parent = _relations(cells, structure, bands=fam == "selection_rate*", with_parents=True)
        if parts.shape[0] == 0:
            continue
        col_of = {c: i for i, c in enumerate(cells)}
        cols = np.array([col_of[c] for c in cell_keys], dtype=np.int64)
        uniq, k_idx = np.unique(tables[rows], return_inverse=True)
        grid = np.full((uniq.size, len(cells)), np.nan)
        grid[k_idx, cols] = counts[rows]
        prim = np.zeros(grid.shape, dtype=bool)
        prim[k_idx, cols] = out[rows]
        avoid = np.array([g == references.get(a) for a, g, _ in cells])
        done = _suppress_with_totals(grid, prim, parts, parent, avoid)
        if control is not None and control.enabled:
            eqs = equations(cells, structure, bands=fam == "selection_rate*")
            for _ in range(len(cells)):
                bad = exposed(grid, done, eqs, threshold=control.threshold, rounding=control.rounding, signed=signed)
                if not bad.any() or not _widen(grid, done, bad, eqs, avoid):
                    break
                done = _suppress_with_totals(grid, done, parts, parent, avoid)
        out[rows] = done[k_idx, cols]
    return out


_NUMBER = re.compile(r"(?<![\w.,])(\d{1,3}(?:,\d{3})+|\d+)(?![\w%]|[.,]\d)")


def scrub_text(text: str, control: DisclosureControl) -> str:
    """Treat whole numbers in free text as counts: 1..threshold become ``*``, others are rounded."""
    if not control.enabled or not text:
        return text

    def sub(match: re.Match[str]) -> str:
        raw = match.group(1)
        value = int(raw.replace(",", ""))
        if 1 <= value <= control.threshold:
            return "*"
        rounded = int(_round_counts(np.array([float(value)]), control)[0])
        return f"{rounded:,}" if "," in raw else str(rounded)

    return _NUMBER.sub(sub, text)


#: Counts of people inside operating-point labels (``step_1_k_588``: the capacity after a step).
_LABEL_COUNT = re.compile(r"(?<=_k_)(\d+)(?![\d.])")


def disclose_label(labels: pd.Series, control: DisclosureControl) -> pd.Series:
    """Operating-point labels whose count of people (``_k_588``) is rounded, or ``_k_under_N`` when 1 to threshold.

    Examples
    --------
    >>> disclose_label(pd.Series(["step_1_k_588", "step_2_k_3", "top_3pct"]), DisclosureControl()).tolist()
    ['step_1_k_590', 'step_2_k_under_8', 'top_3pct']
    """
    if not control.enabled:
        return labels

    def sub(match: re.Match[str]) -> str:
        value = int(match.group(1))
        if 1 <= value <= control.threshold:
            return f"under_{control.threshold + 1}"
        return str(int(_round_counts(np.array([float(value)]), control)[0]))

    mapping = {lab: _LABEL_COUNT.sub(sub, str(lab)) for lab in dict.fromkeys(labels.astype(str))}
    return labels.astype(str).map(mapping)


def disclose_provenance(provenance: Mapping[str, Any] | None, control: DisclosureControl) -> dict[str, Any]:
    """Provenance with its counts of people (``n``, ``n_audited``, ``n_trained``, ...) rounded or suppressed.

    Examples
    --------
    >>> disclose_provenance({"n_audited": 1527, "n_trained": 3, "seed": 7}, DisclosureControl())
    {'n_audited': 1525, 'n_trained': None, 'seed': 7}
    """
    out = dict(provenance or {})
    if not control.enabled:
        return out
    for key, value in out.items():
        if (
            (key == "n" or str(key).startswith("n_"))
            and isinstance(value, int | np.integer)
            and not isinstance(value, bool)
        ):
            v = np.array([float(value)])
            out[key] = None if _is_small(v, control)[0] else int(_round_counts(v, control)[0])
    return out


_RATE_BASES = ("selection_rate", "tpr", "fnr", "fpr", "ppv")


def derivation(metric: str) -> tuple[str, str, str] | None:
    """How a metric is computed from other published metrics, or None.

    Returns ``(kind, first, second)``: ``("difference" | "ratio", base, "")`` against the reference
    group's ``base`` in the same analysis and operating point, or ``("quotient" | "minus", first,
    second)`` of two metrics of the same group.

    Examples
    --------
    >>> derivation("tpr_difference")
    ('difference', 'tpr', '')
    >>> derivation("flagged_to_high_need_ratio")
    ('quotient', 'flagged_share', 'high_need_share')
    """
    for base in _RATE_BASES:
        if metric == f"{base}_difference":
            return ("difference", base, "")
        if metric == f"{base}_ratio":
            return ("ratio", base, "")
    if metric == "unmet_need_gap":
        return ("difference", "unmet_need_rate", "")
    if metric.startswith("unmet_need_gap_if_by_"):
        return ("difference", "unmet_need_rate_if_by_" + metric.removeprefix("unmet_need_gap_if_by_"), "")
    if metric == "refused_rate_ratio":
        return ("ratio", "refused_rate_among_needing", "")
    if metric == "flagged_to_high_need_ratio":
        return ("quotient", "flagged_share", "high_need_share")
    if metric == "net_benefit_minus_treat_all":
        return ("minus", "net_benefit", "net_benefit_treat_all")
    return None


_CELL = ["model", "analysis", "attribute", "operating_point", "target", "feature", "group", "metric"]


def infer_references(table: pd.DataFrame) -> dict[str, str]:
    """Reference group per attribute, read from the table: the group whose differences are all exactly 0."""
    diffs = table[table["metric"].astype(str).str.endswith("_difference")]
    zero = (diffs["value"] == 0) & (diffs["ci_low"].fillna(0) == 0) & (diffs["ci_high"].fillna(0) == 0)
    ok = zero.groupby([diffs["attribute"], diffs["group"]], sort=False).all()
    out: dict[str, str] = {}
    for key, is_ref in ok.items():
        attribute, group = (str(k) for k in cast(tuple, key))
        if is_ref and attribute not in out:
            out[attribute] = group
    return out


def _derived(
    out: pd.DataFrame,
    value: np.ndarray,
    hide: np.ndarray,
    references: Mapping[str, str],
    cause: np.ndarray | None = None,
) -> None:
    """Recompute (in place) metrics derived from other rows, from those rows' published values.

    A derived row is hidden with its sources, and takes the strongest ``cause`` among its hidden
    sources (:data:`_OWN_SMALL` before :data:`_COMPLEMENT_SMALL` before :data:`_PROTECTS`), so that its
    reason names why the count behind it is not published.
    """
    metrics = out["metric"].to_numpy(dtype=object).astype(str)
    found_recipes = {m: derivation(m) for m in dict.fromkeys(metrics)}
    recipes = {m: r for m, r in found_recipes.items() if r is not None}
    targets = np.isin(metrics, list(recipes))
    if not targets.any():
        return
    index = pd.Series(np.arange(len(out)), index=pd.MultiIndex.from_frame(out[_CELL].astype(str)))
    index = index[~index.index.duplicated()]
    rows = np.flatnonzero(targets)
    cells = out.iloc[rows][_CELL].astype(str)
    parts = cells["metric"].map(recipes)
    kinds = parts.str[0].to_numpy(dtype=object)
    first = parts.str[1].to_numpy(dtype=object)
    second = parts.str[2].to_numpy(dtype=object)
    against_ref = np.isin(kinds, ["difference", "ratio"])
    ref_groups = cells["attribute"].map(dict(references)).to_numpy(dtype=object)

    def position(metric: np.ndarray, group: np.ndarray) -> np.ndarray:
        keys = cells.copy()
        keys["metric"], keys["group"] = metric, group
        found = index.reindex(pd.MultiIndex.from_frame(keys)).to_numpy(dtype=np.float64)
        return found

    a = position(first, cells["group"].to_numpy(dtype=object))
    b = np.where(
        against_ref,
        position(first, np.where(pd.isna(ref_groups), "", ref_groups).astype(object)),
        position(second, cells["group"].to_numpy(dtype=object)),
    )
    found = np.isfinite(a) & np.isfinite(b)
    ai, bi = np.where(found, a, 0).astype(np.int64), np.where(found, b, 0).astype(np.int64)
    va, vb = np.where(found, value[ai], np.nan), np.where(found, value[bi], np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        combined = np.where(np.isin(kinds, ["difference", "minus"]), va - vb, np.where(vb != 0, va / vb, np.nan))
    own = value[rows]
    value[rows] = np.where(found & np.isfinite(own) & np.isfinite(combined), combined, own)
    hide[rows] |= found & (hide[ai] | hide[bi])
    if cause is not None:
        ca = np.where(found & hide[ai], cause[ai], _PROTECTS)
        cb = np.where(found & hide[bi], cause[bi], _PROTECTS)
        cause[rows] = np.minimum(cause[rows], np.minimum(ca, cb))


def _table_disclosure(
    table: pd.DataFrame, control: DisclosureControl, references: Mapping[str, str], structure: Structure
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
        points = pd.to_numeric(out["operating_point"].str.removeprefix("pt_"), errors="coerce")
        pt = points.to_numpy(dtype=np.float64, na_value=np.nan)
        odds = pt / (1 - pt)
        numerator = np.where(is_treat_all, (value + odds) / (1 + odds) * n, numerator)  # events
        denominator = np.where(is_treat_all, n, denominator)
    numerator = np.round(numerator)
    denominator = np.round(denominator)
    count_value = np.where(is_count, np.abs(np.round(value)), np.nan)
    count_signed = np.where(is_count, np.round(value), np.nan)  # a change of a count may be negative

    n_small, num_small, val_small = (
        _is_small(n, control),
        _is_small(numerator, control),
        _is_small(count_value, control),
    )
    den_sup = _is_small(denominator, control)
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
        n_sup = everywhere(_suppress_grid(out, n, n_sup, references, structure, control))
        num_sup = _suppress_grid(out, numerator, hide | n_sup, references, structure, control)
        val_sup = _suppress_grid(out, count_signed, hide | n_sup, references, structure, control, signed=True)
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
    cause = np.where(primary, _OWN_SMALL, _PROTECTS).astype(np.int8)
    if grouped is not None:
        small = pd.Series(hide[both] & primary[both], index=keyed.index[both])
        partner_small = small.groupby(grouped.ngroup()).transform("any").to_numpy() & ~primary[both]
        cause[both] = np.where(partner_small, _COMPLEMENT_SMALL, cause[both])

    # recompute from rounded counts
    r_num = _round_counts(numerator, control)
    r_den = _round_counts(denominator, control)
    with np.errstate(divide="ignore", invalid="ignore"):
        recomputed = np.where(r_den > 0, r_num / r_den, np.nan)
        prevalence = recomputed
        treat_all = prevalence - (1 - prevalence) * odds
    use = (is_rate | is_numerator_share) & np.isfinite(value) & np.isfinite(recomputed)
    value = np.where(use, recomputed, value)
    value = np.where(is_treat_all & np.isfinite(value) & np.isfinite(treat_all), treat_all, value)
    counted = is_count & np.isfinite(value)
    value = np.where(counted, np.sign(value) * _round_counts(np.abs(np.round(value)), control), value)
    for arr in (low, high):
        rounded = np.sign(arr) * _round_counts(np.abs(np.round(arr)), control)
        arr[:] = np.where(is_count & np.isfinite(arr), rounded, arr)
        # an interval bound that is itself a count of 1 to threshold people is not published either
        arr[is_count & _is_small(np.abs(np.round(arr)), control)] = np.nan

    # statistics computed from other published ones are recomputed from them, and hidden with them
    _derived(out, value, hide, references, cause)

    was_defined = np.isfinite(value)
    value[hide], low[hide], high[hide] = np.nan, np.nan, np.nan
    scrubbed = {r: scrub_text(r, control) for r in dict.fromkeys(reason)}  # few distinct reasons
    reason = pd.Series(reason).map(scrubbed).to_numpy(dtype=object)
    stated = hide & (was_defined | (reason == ""))
    if "reason_code" in out:
        code = out["reason_code"].to_numpy(dtype=object).copy()
    else:
        code = np.where(reason == "", "", "undefined").astype(object)
    for cause_code, words, text in (
        (_OWN_SMALL, stated, suppressed_reason(control)),
        (_COMPLEMENT_SMALL, stated, complement_reason(control)),
        (_PROTECTS, stated | secondary, SECONDARY_REASON),
    ):
        chosen = words & hide & (cause == cause_code)
        reason[chosen] = text
    code[hide & (cause == _OWN_SMALL)] = "suppressed"
    code[hide & (cause == _COMPLEMENT_SMALL)] = "suppressed_complement"
    code[hide & (cause == _PROTECTS)] = "suppressed_secondary"
    n_out = np.where(np.isfinite(n), _round_counts(n, control), np.nan)
    n_out[n_sup] = np.nan
    out["operating_point"] = disclose_label(out["operating_point"], control)
    out["value"] = value
    out["ci_low"] = low
    out["ci_high"] = high
    out["n"] = pd.Series(np.round(n_out), index=out.index).astype("Float64").astype("Int64")
    out["reason"] = reason.astype(str)
    out["reason_code"] = code.astype(str)
    return out


def _curve_disclosure(
    curves: pd.DataFrame, control: DisclosureControl, references: Mapping[str, str], structure: Structure
) -> pd.DataFrame:
    out = curves.copy()
    if out.empty:
        return out
    n = pd.to_numeric(out["n"], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    hide = _is_small(n, control)
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
        group_parts = _relations([(attribute, g, "") for g in labels], structure)
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
    n_out = np.where(np.isfinite(n), _round_counts(n, control), np.nan)
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
        _table_disclosure(table, control, references, structure),
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
    parts = _relations(cells, group_structure(groups))
    avoid = np.array([g == str(out[a].get("reference")) for a, g, _ in cells])
    hide = complementary_suppression(counts[None, :], _is_small(counts, control)[None, :], parts, avoid)[0]
    rounded = _round_counts(counts, control)
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
        result.table(), result.curves(), control, references=references, structure=group_structure(result.groups)
    )
    cohort = dict(result.cohort)
    if isinstance(cohort.get("n"), int | np.integer | float) and np.isfinite(float(cohort["n"])):
        n = float(cohort["n"])
        cohort["n"] = None if _is_small(np.array([n]), control)[0] else int(_round_counts(np.array([n]), control)[0])
    return dataclasses.replace(
        result,
        groups=_disclose_groups(result.groups, control),
        cohort=cohort,
        notes=tuple(scrub_text(note, control) for note in result.notes),
        _metrics=table,
        _curves=curves,
        operating_points={},  # described again from the disclosed labels (a small capacity is hidden)
    )
