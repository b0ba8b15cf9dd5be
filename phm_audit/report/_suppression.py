"""The suppression grid of disclosure control: which cells add up to a published total, and complementary
suppression across them (rule 5 of :mod:`phm_audit.report._disclosure`).

An intersection's components are read from the structured ``components`` and ``parts`` of
``AuditResult.groups`` (:func:`group_structure`); :func:`infer_structure` reads them from a bare table, a
fallback for callers of :func:`~phm_audit.report._disclosure.apply_disclosure` without a result.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, cast, overload

import numpy as np
import pandas as pd

from phm_audit.report._control import DisclosureControl
from phm_audit.report._protection import Equations, by_component, equations, exposed

__all__ = [
    "TOTAL_GROUP",
    "Structure",
    "complementary_suppression",
    "group_structure",
    "infer_structure",
    "relations",
    "suppress_grid",
]

TOTAL_GROUP = "all"


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
                combos = [(*p, lab) for p in combos for lab in labels_of[c] if lab != TOTAL_GROUP]
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
def relations(
    cells: Sequence[tuple[str, str, str]],
    structure: Structure,
    bands: bool = ...,
    *,
    with_parents: Literal[False] = ...,
) -> np.ndarray: ...


@overload
def relations(
    cells: Sequence[tuple[str, str, str]], structure: Structure, bands: bool = ..., *, with_parents: Literal[True]
) -> tuple[np.ndarray, np.ndarray]: ...


def relations(
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
        if group != TOTAL_GROUP:
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


def suppress_grid(
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
    bound by the relations of :func:`relations`. With ``control``, the pattern is then checked as an
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
        parts, parent = relations(cells, structure, bands=fam == "selection_rate*", with_parents=True)
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
