"""Cells: the audit's first step, people reduced to counts and sums by stratum and cell.

A *stratum* is one combination of the audited attributes' values (``ethnicity = Asian, imd_quintile
= 1, sex = F, ...``); every grouping the audit reports (one attribute, or an intersection) is a
union of strata, so a count or a sum by stratum adds up to any grouping's exactly. A *cell* splits
a stratum further by the dimensions an analysis asks for (:data:`Dim`): a person's bucket in an
order of the whole population (flagged at a capacity, high need, a score bin, a sweep capacity),
whether a score reaches a cut-off, whether an outcome is positive.

A :class:`Cells` source computes the non-empty cells of a request (:meth:`Cells.cube`) inside the
data's own engine: :class:`MemoryCells` with numpy on arrays in memory, and
:class:`phm_audit.audit._lazy_cells.LazyCells` in DuckDB, Spark or Polars. Every analysis that reads
only cells (fairness, calibration at equal score, the threshold sweep, the referral gate) runs the
same code on either, so the engines agree to the last rounding of a sum.

The tie rule, for an engine with no input order: an order of the whole population sorts by the
value (descending for "the k highest", ascending for bands and score bins) and then by ascending
key (``patient_id`` by default). The in-memory path sorts its people by the key first when they are
not already in key order, so that its ties, broken by position, follow the same rule.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from math import prod

import numpy as np
import pandas as pd

from phm_audit.audit._stats import lowest_counts_masks, top_k_mask

__all__ = [
    "AtLeast",
    "Cells",
    "Cube",
    "Dim",
    "Distinct",
    "First",
    "MemoryCells",
    "Positive",
    "Rank",
    "dim_size",
    "joint_codes",
    "project",
    "strata_of",
]

#: Above this many positions a rank dimension is found from a full sort, below it by selection.
SELECT_AT_MOST = 4


@dataclass(frozen=True)
class Rank:
    """A person's bucket in one order of the whole population: the number of ``edges`` at or below their position.

    Position 0 is the highest value (``descending``) or the lowest; ties go to the lower key. With one
    edge k, bucket 0 is "in the first k" (flagged at capacity k, or among the k of highest need).
    """

    source: str
    edges: tuple[int, ...]
    descending: bool = True


@dataclass(frozen=True)
class First:
    """1 for the first ``k`` people of the descending order of the source (flagged at capacity k), else 0."""

    source: str
    k: int


@dataclass(frozen=True)
class AtLeast:
    """1 where the source's value is at least ``cut`` (a cut-off operating point), else 0."""

    source: str
    cut: float


@dataclass(frozen=True)
class Positive:
    """1 where the source's value is above 0 (an outcome that happened), else 0."""

    source: str


@dataclass(frozen=True)
class Distinct:
    """The index of the source's value among ``values``, its few distinct values in ascending order."""

    source: str
    values: tuple[float, ...]


Dim = Rank | First | AtLeast | Positive | Distinct


def dim_size(dim: Dim) -> int:
    """How many values a dimension takes."""
    if isinstance(dim, Rank):
        return len(dim.edges) + 1
    if isinstance(dim, Distinct):
        return len(dim.values)
    return 2


@dataclass(frozen=True)
class Cube:
    """The non-empty cells of one request: stratum and dimension codes, count, sums and cross-products.

    Attributes
    ----------
    index : ndarray of int, shape (M, 1 + D)
        Each cell's stratum and its code in each of the D dimensions.
    shape : tuple of int
        The number of codes of each dimension.
    counts : ndarray, shape (M,)
    sums : ndarray, shape (M, K)
        Sums of the K value columns.
    cross : ndarray, shape (M, K, K)
        Sums of the products of each pair of value columns (for the variance of a sum).
    """

    index: np.ndarray
    shape: tuple[int, ...]
    counts: np.ndarray
    sums: np.ndarray
    cross: np.ndarray

    def dense(self, codes: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Counts, sums and cross-products by (group, *dimensions), the strata added up by ``codes``.

        ``codes`` gives each stratum's group (a :class:`~phm_audit.audit._groups.Grouping`'s ``strata``).
        """
        size = prod(self.shape)
        flat = np.asarray(codes, dtype=np.int64)[self.index[:, 0]]
        for d, s in enumerate(self.shape):
            flat = flat * s + self.index[:, 1 + d]
        length = n_groups * size
        k = self.sums.shape[1]
        counts = np.bincount(flat, weights=self.counts, minlength=length)
        sums = np.zeros((length, k))
        cross = np.zeros((length, k, k))
        for a in range(k):
            sums[:, a] = np.bincount(flat, weights=self.sums[:, a], minlength=length)
            for b in range(a, k):
                cross[:, a, b] = cross[:, b, a] = np.bincount(flat, weights=self.cross[:, a, b], minlength=length)
        return (
            counts.reshape((n_groups, *self.shape)),
            sums.reshape((n_groups, *self.shape, k)),
            cross.reshape((n_groups, *self.shape, k, k)),
        )


def project(cube: Cube, keep: Sequence[int], values: Sequence[int]) -> Cube:
    """The cells of ``cube`` summed over every dimension but ``keep`` (positions), with the sums of ``values``."""
    shape = tuple(cube.shape[d] for d in keep)
    flat = cube.index[:, 0].copy()
    for d, s in zip(keep, shape, strict=True):
        flat = flat * s + cube.index[:, 1 + d]
    cells, inverse = np.unique(flat, return_inverse=True)
    index = np.empty((cells.size, 1 + len(keep)), dtype=np.int64)
    rest = cells
    for d in range(len(keep) - 1, -1, -1):
        rest, index[:, 1 + d] = np.divmod(rest, shape[d])
    index[:, 0] = rest
    k = len(values)
    sums = np.zeros((cells.size, k))
    cross = np.zeros((cells.size, k, k))
    for a, va in enumerate(values):
        sums[:, a] = np.bincount(inverse, weights=cube.sums[:, va], minlength=cells.size)
        for b in range(a, k):
            cross[:, a, b] = cross[:, b, a] = np.bincount(
                inverse, weights=cube.cross[:, va, values[b]], minlength=cells.size
            )
    return Cube(index, shape, np.bincount(inverse, weights=cube.counts, minlength=cells.size), sums, cross)


class Cells(ABC):
    """Where the audit's people are: the strata, their sizes, and the cells of a request.

    Attributes
    ----------
    n : int
        How many people.
    strata : pandas.DataFrame
        One row per stratum: the attributes' values and ``n``, the stratum's size.
    rows : bool
        Whether the people themselves are at hand (in memory), for the analyses that need rows.
    engine : str
        ``"memory"``, ``"duckdb"``, ``"spark"`` or ``"polars"``.
    """

    n: int
    strata: pd.DataFrame
    rows: bool
    engine: str

    @abstractmethod
    def cube(self, dims: Sequence[Dim], values: Sequence[str] = ()) -> Cube:
        """The non-empty cells of ``dims`` within each stratum, with the sums of ``values``."""

    def cubes(self, requests: Sequence[tuple[Sequence[Dim], Sequence[str]]]) -> list[Cube]:
        """The cubes of several requests (dimensions, values), one :meth:`cube` each.

        An engine answers them with one query (:meth:`batched`), where each query costs a pass.
        """
        return [self.cube(dims, values) for dims, values in requests]

    def batched(self, requests: Sequence[tuple[Sequence[Dim], Sequence[str]]]) -> list[Cube]:
        """:meth:`cubes` by one cube of every dimension and value the requests name, summed down to each."""
        dims = list(dict.fromkeys(d for ds, _ in requests for d in ds))
        values = list(dict.fromkeys(v for _, vs in requests for v in vs))
        whole = self.cube(dims, values)
        return [project(whole, [dims.index(d) for d in ds], [values.index(v) for v in vs]) for ds, vs in requests]

    @abstractmethod
    def distinct(self, source: str, limit: int) -> np.ndarray | None:
        """The ascending distinct values of ``source`` when there are at most ``limit``, else None."""

    @abstractmethod
    def values_at(self, source: str, positions: np.ndarray, *, descending: bool) -> np.ndarray:
        """The values at ``positions`` of the order of ``source`` (the tie rule of :class:`Rank`)."""


def strata_of(frame: pd.DataFrame, attributes: Sequence[str]) -> tuple[np.ndarray, pd.DataFrame]:
    """Each person's stratum, and the strata (the attributes' values, and ``n``) in a stable order."""
    attrs = list(dict.fromkeys(attributes))
    if not attrs:
        return np.zeros(len(frame), dtype=np.int64), pd.DataFrame({"n": [len(frame)]})
    grouped = frame[attrs].groupby(attrs, observed=True, dropna=False, sort=True)
    index = grouped.ngroup().to_numpy(dtype=np.int64)
    strata = grouped.size().reset_index(name="n")
    return index, strata


def joint_codes(codes: Sequence[tuple[np.ndarray, int]], n: int) -> tuple[np.ndarray, int]:
    """Each person's combination of several codes (each with its number of values), numbered densely.

    The numbering follows the combinations' order (the first code most significant).
    """
    flat = np.zeros(n, dtype=np.int64)
    size = 1
    for c, k in codes:
        flat = flat * k + c
        size *= k
    if size <= 4 * max(n, 1):
        present = np.flatnonzero(np.bincount(flat, minlength=size))
        remap = np.zeros(size, dtype=np.int64)
        remap[present] = np.arange(present.size)
        return remap[flat], int(present.size)
    uniques, inverse = np.unique(flat, return_inverse=True)
    return inverse.astype(np.int64), int(uniques.size)


class MemoryCells(Cells):
    """Cells of people in memory, with numpy: one selection or one sort per order, then a bincount.

    Parameters
    ----------
    frame : pandas.DataFrame
        The people, in key order (ties follow position).
    attributes : sequence of str
        The audited attributes (the strata are their combinations).
    sources : mapping of str to ndarray
        The arrays a request can name (scores by model, targets by name), one value per person.
    """

    engine = "memory"
    rows = True

    def __init__(
        self,
        frame: pd.DataFrame,
        attributes: Sequence[str],
        sources: dict[str, np.ndarray],
        more: Callable[[str], np.ndarray] | None = None,
        *,
        codes: Sequence[tuple[np.ndarray, int]] | None = None,
    ) -> None:
        self.n = len(frame)
        if codes is None:
            self.stratum, self.strata = strata_of(frame, attributes)
        else:  # the groupings' codes already made: their joint is the strata, no second pass over the frame
            self.stratum, n_strata = joint_codes(codes, self.n)
            self.strata = pd.DataFrame({"n": np.bincount(self.stratum, minlength=n_strata)})
        self._sources = dict(sources)
        self._more = more
        self._orders: dict[tuple[str, bool], np.ndarray] = {}
        self._distinct: dict[str, np.ndarray] = {}

    def source(self, name: str) -> np.ndarray:
        """The array of a source, fetched (and kept) from ``more`` when it was not given at first."""
        if name not in self._sources:
            if self._more is None:
                raise KeyError(name)
            self._sources[name] = np.asarray(self._more(name), dtype=np.float64)
        return self._sources[name]

    def add(self, name: str, values: np.ndarray) -> None:
        """Give a source computed elsewhere (a decision shared out per place, say)."""
        self._sources[name] = np.asarray(values, dtype=np.float64)

    def first_of_strata(self) -> np.ndarray:
        """The position of one person of each stratum (the first)."""
        first = np.full(len(self.strata), -1, dtype=np.int64)
        first[self.stratum[::-1]] = np.arange(self.n - 1, -1, -1)
        return first

    def order(self, source: str, *, descending: bool) -> np.ndarray:
        """Positions from the first to the last of an order (ties in input order); kept for reuse."""
        key = (source, descending)
        if key not in self._orders:
            values = self.source(source)
            self._orders[key] = np.argsort(-values if descending else values, kind="stable")
        return self._orders[key]

    def _codes(self, dim: Dim) -> np.ndarray:
        values = self.source(dim.source)
        if isinstance(dim, First):
            if (dim.source, True) in self._orders:
                mask = np.zeros(self.n, dtype=np.int64)
                mask[self._orders[(dim.source, True)][: dim.k]] = 1
                return mask
            return top_k_mask(values, dim.k).astype(np.int64)
        if isinstance(dim, AtLeast):
            return (values >= dim.cut).astype(np.int64)
        if isinstance(dim, Positive):
            return (values > 0).astype(np.int64)
        if isinstance(dim, Distinct):
            return np.searchsorted(np.asarray(dim.values, dtype=np.float64), values).astype(np.int64)
        edges = np.asarray(dim.edges, dtype=np.int64)
        if len(edges) <= SELECT_AT_MOST and (dim.source, dim.descending) not in self._orders:
            # one selection per edge: a person's bucket counts the edges whose first-m they are not in
            sign = -1.0 if dim.descending else 1.0
            inside = lowest_counts_masks(sign * values, edges)
            return (~inside).sum(axis=0).astype(np.int64)
        position = np.empty(self.n, dtype=np.int64)
        position[self.order(dim.source, descending=dim.descending)] = np.arange(self.n)
        return np.searchsorted(edges, position, side="right").astype(np.int64)

    def cube(self, dims: Sequence[Dim], values: Sequence[str] = ()) -> Cube:
        shape = tuple(dim_size(d) for d in dims)
        size = prod(shape)
        flat = self.stratum.copy()
        for dim, s in zip(dims, shape, strict=True):
            flat = flat * s + self._codes(dim)
        length = len(self.strata) * size
        k = len(values)
        if length <= 4 * max(self.n, 1):
            counts = np.bincount(flat, minlength=length)
            cells = np.flatnonzero(counts)
            counts = counts[cells]
            if k:  # each person's cell, by a lookup (no sort)
                remap = np.zeros(length, dtype=np.int64)
                remap[cells] = np.arange(cells.size)
                position = remap[flat]
        else:  # too many possible cells for a dense count: the non-empty ones, by one sort
            cells, position, counts = np.unique(flat, return_inverse=True, return_counts=True)
        arrays = [self.source(v) for v in values]
        sums = np.zeros((cells.size, k))
        cross = np.zeros((cells.size, k, k))
        for a in range(k):
            sums[:, a] = np.bincount(position, weights=arrays[a], minlength=cells.size)
            for b in range(a, k):
                cross[:, a, b] = cross[:, b, a] = np.bincount(
                    position, weights=arrays[a] * arrays[b], minlength=cells.size
                )
        index = np.empty((cells.size, 1 + len(dims)), dtype=np.int64)
        rest = cells
        for d in range(len(dims) - 1, -1, -1):
            rest, index[:, 1 + d] = np.divmod(rest, shape[d])
        index[:, 0] = rest
        return Cube(index, shape, counts.astype(np.float64), sums, cross)

    def distinct(self, source: str, limit: int) -> np.ndarray | None:
        if source not in self._distinct:
            self._distinct[source] = np.unique(self.source(source))
        uniques = self._distinct[source]
        return uniques.copy() if uniques.size <= limit else None

    def values_at(self, source: str, positions: np.ndarray, *, descending: bool) -> np.ndarray:
        values = self.source(source)
        positions = np.asarray(positions, dtype=np.int64)
        if positions.size <= SELECT_AT_MOST and (source, descending) not in self._orders:
            # the m-th value of an order is the m-th order statistic, whatever the tie rule
            sign = -1.0 if descending else 1.0
            return sign * np.partition(sign * values, positions)[positions]
        return values[self.order(source, descending=descending)[positions]]
