"""The protection check of disclosure control: what an attacker can work out of a hidden count, and more
suppression where it is too much.

Complementary suppression (:func:`phm_audit.report._disclosure.complementary_suppression`) hides a
second cell wherever a published total holds a lone hidden one. That is not always enough: the second
cell may itself be bounded by other published totals (a group's need bands add up to the group; the
same band of its intersection cells adds up to it too), so that the two hidden cells' sum, less what
the other totals say of the second, pins the first down. An attacker with the tables does exactly this:
every published count, rounded, says its true count lies in an interval; every published total is an
equation; propagating the intervals through the equations until nothing changes gives the tightest
interval each hidden count can be shown to lie in (bounds propagation, as in the audit of a table's
suppression pattern in tau-ARGUS).

:func:`protect` runs that attack on every table of a family and, while a hidden count of 1 to
``threshold`` people is narrowed to fewer possible values than a published count says (the rounding
base, and at least 5), or any hidden count is pinned down exactly, hides one more published cell of an
equation it belongs to (the smallest with people, as complementary suppression chooses), then checks
again.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["Equations", "by_component", "equations", "exposed", "propagate", "published_bounds", "round_counts"]

_TOTAL_GROUP = "all"

#: ``{intersection: (component attributes, each label's component labels)}``.
Structure = Mapping[str, tuple[tuple[str, ...], Mapping[str, tuple[str, ...]]]]


class Equations:
    """Linear equations ``sum(coef * x[cell]) = 0`` over a table's cells, held as flat entry arrays.

    Attributes
    ----------
    eq, cell, coef : ndarray
        One entry per (equation, member): its equation, its cell and its coefficient (+1 a part,
        -1 the published total), sorted by equation.
    starts : ndarray
        The first entry of each equation.
    """

    def __init__(self, rows: Sequence[Sequence[tuple[int, int]]]) -> None:
        eq = [e for e, row in enumerate(rows) for _ in row]
        self.eq = np.asarray(eq, dtype=np.int64)
        self.cell = np.asarray([c for row in rows for c, _ in row], dtype=np.int64)
        self.coef = np.asarray([k for row in rows for _, k in row], dtype=np.float64)
        self.starts = np.flatnonzero(np.r_[True, self.eq[1:] != self.eq[:-1]]) if self.eq.size else self.eq
        self._order = np.argsort(self.cell, kind="stable")
        ordered = self.cell[self._order]
        self._cell_starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]]) if ordered.size else ordered
        self._cells = ordered[self._cell_starts]

    def __len__(self) -> int:
        return int(self.starts.size)

    def containing(self, cell: int) -> np.ndarray:
        """The equations ``cell`` is a member of."""
        return np.unique(self.eq[self.cell == cell])

    def members(self, equation: int) -> np.ndarray:
        """The cells of one equation."""
        return self.cell[self.eq == equation]


def by_component(
    cells: Sequence[tuple[str, str, str]],
    members: Sequence[int],
    structure: tuple[tuple[str, ...], Mapping[str, tuple[str, ...]]] | None,
) -> list[tuple[str, str, list[int]]]:
    """An intersection's cells (``members``, indices into ``cells``) grouped by each component's label:
    ``(component attribute, its label, the cells sharing it)``; none for a single attribute."""
    if structure is None:
        return []
    components, parts = structure
    out = []
    for k, component in enumerate(components):
        shared: dict[str, list[int]] = {}
        for i in members:
            part = parts.get(cells[i][1])
            if part is not None and len(part) == len(components):
                shared.setdefault(part[k], []).append(i)
        out += [(component, value, kids) for value, kids in shared.items()]
    return out


def equations(cells: Sequence[tuple[str, str, str]], structure: Structure, bands: bool) -> Equations:
    """The published totals that bind cells ``(attribute, group, metric)`` of one table.

    - the groups of one attribute add up to its ``all`` row, where the table has one;
    - an intersection's cells sharing one component's label add up to that component's own group;
    - with ``bands``, a group's ``selection_rate_need_*`` bands add up to its ``selection_rate``.
    """
    index = {c: i for i, c in enumerate(cells)}
    rows: list[list[tuple[int, int]]] = []
    by: dict[tuple[str, str], list[int]] = {}
    for i, (attribute, group, metric) in enumerate(cells):
        if group != _TOTAL_GROUP:
            by.setdefault((attribute, metric), []).append(i)
    for (attribute, metric), members in by.items():
        total = index.get((attribute, _TOTAL_GROUP, metric))
        if total is not None:
            rows.append([(i, 1) for i in members] + [(total, -1)])
        for component, value, kids in by_component(cells, members, structure.get(attribute)):
            parent = index.get((component, value, metric))
            if parent is not None:
                rows.append([(i, 1) for i in kids] + [(parent, -1)])
    if bands:
        groups: dict[tuple[str, str], list[int]] = {}
        for i, (attribute, group, metric) in enumerate(cells):
            if metric.startswith("selection_rate_need_"):
                groups.setdefault((attribute, group), []).append(i)
        for (attribute, group), members in groups.items():
            whole = index.get((attribute, group, "selection_rate"))
            if whole is not None:
                rows.append([(i, 1) for i in members] + [(whole, -1)])
    return Equations([r for r in rows if len(r) >= 2])


def published_bounds(
    shown: np.ndarray, hidden: np.ndarray, *, threshold: int, rounding: int, signed: bool
) -> tuple[np.ndarray, np.ndarray]:
    """What each cell's published count says of its true count: an interval ``[low, high]``.

    A count rounded to the nearest ``rounding`` (halves up) lies within half a step of it, and above
    ``threshold`` unless it is 0; a hidden or unpublished count says nothing but its sign.
    """
    size = np.abs(shown)
    low = np.ceil(size - rounding / 2)
    high = np.ceil(size + rounding / 2) - 1
    low = np.maximum(low, threshold + 1)
    low, high = np.where(size == 0, 0.0, low), np.where(size == 0, 0.0, high)
    low, high = np.where(shown < 0, -high, low), np.where(shown < 0, -low, high)
    unknown = hidden | ~np.isfinite(shown)
    low = np.where(unknown, -np.inf if signed else 0.0, low)
    high = np.where(unknown, np.inf, high)
    return low, high


def propagate(low: np.ndarray, high: np.ndarray, eqs: Equations, rounds: int = 8) -> None:
    """Narrow every cell's interval (``low``, ``high``: K tables x C cells, in place) by every equation.

    For a member ``j`` of ``sum(coef * x) = 0``: ``coef_j * x_j`` lies in minus the interval of the
    other members' sum. Repeated until nothing changes or ``rounds`` passes are done.
    """
    if not len(eqs):
        return
    coef = eqs.coef[None, :]
    for _ in range(rounds):
        lo_e, hi_e = low[:, eqs.cell], high[:, eqs.cell]
        t_lo = np.where(coef > 0, lo_e, -hi_e)  # the least coef * x can be
        t_hi = np.where(coef > 0, hi_e, -lo_e)
        lo_inf, hi_inf = np.isinf(t_lo), np.isinf(t_hi)
        f_lo, f_hi = np.where(lo_inf, 0.0, t_lo), np.where(hi_inf, 0.0, t_hi)
        sum_lo = np.add.reduceat(f_lo, eqs.starts, axis=1)[:, eqs.eq]
        sum_hi = np.add.reduceat(f_hi, eqs.starts, axis=1)[:, eqs.eq]
        n_lo = np.add.reduceat(lo_inf.astype(np.int64), eqs.starts, axis=1)[:, eqs.eq] - lo_inf
        n_hi = np.add.reduceat(hi_inf.astype(np.int64), eqs.starts, axis=1)[:, eqs.eq] - hi_inf
        rest_lo = np.where(n_lo > 0, -np.inf, sum_lo - f_lo)  # the others' sum
        rest_hi = np.where(n_hi > 0, np.inf, sum_hi - f_hi)
        # coef_j * x_j = -(the others' sum)
        new_lo = np.where(coef > 0, -rest_hi, rest_lo)
        new_hi = np.where(coef > 0, -rest_lo, rest_hi)
        best_lo = np.maximum.reduceat(new_lo[:, eqs._order], eqs._cell_starts, axis=1)
        best_hi = np.minimum.reduceat(new_hi[:, eqs._order], eqs._cell_starts, axis=1)
        cur_lo, cur_hi = low[:, eqs._cells], high[:, eqs._cells]
        grow = best_lo > cur_lo + 1e-9
        shrink = best_hi < cur_hi - 1e-9
        if not (grow.any() or shrink.any()):
            return
        low[:, eqs._cells] = np.where(grow, best_lo, cur_lo)
        high[:, eqs._cells] = np.where(shrink, best_hi, cur_hi)


def exposed(
    true: np.ndarray, hidden: np.ndarray, eqs: Equations, *, threshold: int, rounding: int, signed: bool
) -> np.ndarray:
    """Hidden cells (K x C) the published cells pin down: exactly, or, for a count of 1 to ``threshold``,
    to fewer possible values than a published count leaves (``max(rounding, 5)``).

    Bounds that cross (low above high) belong to an equation that does not hold for the metric (as
    equal-TPR allocation, solved per grouping): they pin nothing down.
    """
    shown = np.where(hidden, np.nan, round_counts(true, threshold, rounding))
    low, high = published_bounds(shown, hidden, threshold=threshold, rounding=rounding, signed=signed)
    propagate(low, high, eqs)
    width = high - low
    feasible = low <= high + 1e-6
    size = np.abs(true)
    small = np.isfinite(true) & (size >= 0.5) & (size < threshold + 0.5)
    values = max(rounding, 5)
    return hidden & np.isfinite(true) & feasible & ((width < 1 - 1e-9) | (small & (width < values - 1 - 1e-9)))


def round_counts(counts: np.ndarray, threshold: int, rounding: int) -> np.ndarray:
    """Counts as disclosure control publishes them: to the nearest ``rounding`` (halves up), never into
    1..``threshold`` (a count above it that rounds down there is raised to the first multiple above it);
    the sign kept (a change of a count may be negative)."""
    size = np.abs(counts)
    rounded = np.floor(size / rounding + 0.5) * rounding
    floor_above = rounding * math.ceil((threshold + 1) / rounding)
    rounded = np.where((size > threshold) & (rounded <= threshold), floor_above, rounded)
    return np.sign(counts) * rounded
