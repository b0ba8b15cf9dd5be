"""Cells computed inside a data engine (DuckDB, Spark, Polars), through Narwhals.

:class:`LazyCells` never brings a person's row out of the engine: it asks the engine for the
number of people, the strata (the combinations of the audited attributes, with their sizes) and,
per request, the non-empty cells with their counts, sums and sums of products. The orders of the
population that the dimensions need (each score descending and ascending, need descending and
ascending) are computed once as window functions, ``row_number() over (order by value, key)``, and
kept in the engine (a DuckDB table, a persisted Spark DataFrame, a collected Polars frame).

Narwhals, not Ibis, because it is a thin layer over the frame the user already has (a DuckDB
relation, a Spark DataFrame, a Polars frame): nothing to connect, no backend to configure, and one
expression language whose ``over(order_by=...)``, ``group_by().agg()`` and comparisons compile to
each engine's own SQL or plan.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import narwhals.stable.v2 as nw
import numpy as np
import pandas as pd

from phm_audit.audit._cells import AtLeast, Cells, Cube, Dim, Distinct, First, Positive, Rank, dim_size
from phm_audit.exceptions import PhmInputError, closest

__all__ = ["LazyCells", "require_columns", "require_numeric"]

#: How many distinct values of a source one query fetches (enough for the audit's 100 score bins).
FEW = 100

Tick = Callable[[int, int, str], None]


def require_columns(frame: Any, wanted: Sequence[str]) -> None:
    """Refuse a table that lacks a column, naming it and the closest it has (the schema only: no pass)."""
    columns = list(frame.collect_schema().names())
    for col in wanted:
        if col not in columns:
            raise PhmInputError(
                f"the table has no column '{col}'{closest(col, columns)}; name a column it has (it has "
                f"{len(columns)}: {', '.join(columns[:12])}{' ...' if len(columns) > 12 else ''})"
            )


def require_numeric(frame: Any, columns: dict[str, str], engine: str) -> None:
    """Refuse a score or outcome column that is not numeric (or boolean) in the engine (the schema only)."""
    schema = frame.collect_schema()
    for name, col in columns.items():
        dtype = schema[col]
        if not (dtype.is_numeric() or dtype == nw.Boolean):
            raise PhmInputError(
                f"column '{col}' ({name}) must be numeric in the {engine} engine; it is {dtype}: cast it, or "
                "name the numeric column that holds it"
            )


def _bucket(pos: Any, edges: list[int]) -> Any:
    """The number of ``edges`` (ascending) at or below ``pos``, as a binary search of nested conditions.

    Each row meets about log2(len(edges)) comparisons, where a sum of one comparison per edge meets them all
    (the sweep's 100 capacities).
    """

    def search(lo: int, hi: int) -> Any:
        if lo == hi:
            return nw.lit(lo, nw.Int64)
        mid = (lo + hi) // 2
        return nw.when(pos >= edges[mid]).then(search(mid + 1, hi)).otherwise(search(lo, mid))

    return search(0, len(edges))


def _safe(name: str, i: int) -> str:
    return f"__phm_{i}_{''.join(c if c.isalnum() else '_' for c in name)[:24]}"


class LazyCells(Cells):
    """Cells of a table in a data engine.

    Parameters
    ----------
    frame : narwhals.LazyFrame
        The people: the attributes, the key and the sources' columns.
    attributes : sequence of str
        The audited attributes.
    sources : mapping of str to str
        The name of each source (``score:model``, a target) -> its column.
    key : str
        The column that breaks ties (unique per person).
    engine : str
        ``"duckdb"``, ``"spark"`` or ``"polars"``, for messages and for keeping the ranked table.
    ranked : sequence of str
        The sources whose orders the dimensions will need.
    progress : callable, optional
        ``progress(done, total, label)`` after each query the engine runs.
    nonnegative : sequence of str
        The sources that must not be negative (costs, needs).
    """

    rows = False

    def __init__(
        self,
        frame: Any,
        *,
        attributes: Sequence[str],
        sources: dict[str, str],
        key: str,
        engine: str,
        ranked: Sequence[str],
        progress: Tick | None = None,
        nonnegative: Sequence[str] = (),
    ) -> None:
        self.engine = engine
        self._progress = progress
        self._queries = 0
        self._close: Callable[[], Any] | None = None
        self._nonnegative = set(nonnegative)
        self._attributes = list(dict.fromkeys(attributes))
        require_columns(frame, [*self._attributes, key, *dict.fromkeys(sources.values())])
        schema = frame.collect_schema()
        require_numeric(frame, sources, engine)
        self._columns = {name: _safe(name, i) for i, name in enumerate(sources)}
        self._key = "__phm_key"
        self._attr_cols = {a: f"__phm_a{i}" for i, a in enumerate(self._attributes)}

        def attribute(a: str) -> Any:
            # a category or enum column comes back as text: the same labels as any engine's strings, and
            # no dictionary-encoded result for older pyarrow to refuse
            dtype = schema[a]
            plain = dtype.is_numeric() or dtype == nw.Boolean or dtype == nw.String
            return nw.col(a) if plain else nw.col(a).cast(nw.String)

        base = frame.select(
            *(attribute(a).alias(c) for a, c in self._attr_cols.items()),
            nw.col(key).alias(self._key),
            *(nw.col(col).cast(nw.Float64).alias(self._columns[name]) for name, col in sources.items()),
        )
        self._check(base, sources, key)
        self._positions: dict[tuple[str, bool], str] = {}
        self._distinct: dict[str, np.ndarray] = {}
        extra = []
        for i, name in enumerate(dict.fromkeys(ranked)):
            value = self._columns[name]
            negated = f"__phm_neg{i}"
            base = base.with_columns((-nw.col(value)).alias(negated))
            for descending, order in ((True, negated), (False, value)):
                pos = f"__phm_p{i}{'d' if descending else 'a'}"
                extra.append(
                    (nw.col(self._key).cum_count().over(order_by=[order, self._key]) - 1).cast(nw.Int64).alias(pos)
                )
                self._positions[(name, descending)] = pos
        if extra:
            base = base.with_columns(*extra).drop(*(f"__phm_neg{i}" for i in range(len(dict.fromkeys(ranked)))))
        self._frame = self._keep(base)
        self._tick("ranked the people")
        strata = self._collect(
            self._frame.group_by(*self._attr_cols.values()).agg(nw.len().alias("n")), "the strata"
        ).rename(columns={c: a for a, c in self._attr_cols.items()})
        strata = strata.sort_values(self._attributes, na_position="last", kind="stable").reset_index(drop=True)
        strata["n"] = strata["n"].astype(np.int64)
        self.strata = strata
        self.n = int(strata["n"].sum())

    def close(self) -> None:
        """Drop the ranked table (DuckDB) or release it (Spark): nothing of the audit's is left in the engine."""
        close, self._close = self._close, None
        if close is not None:
            close()

    # -- the engine's work -------------------------------------------------------------------------------

    def _tick(self, label: str) -> None:
        self._queries += 1
        if self._progress is not None:
            self._progress(self._queries, 0, label)

    def _collect(self, frame: Any, label: str) -> pd.DataFrame:
        out = frame.collect().to_pandas()
        self._tick(label)
        return out

    def _keep(self, frame: Any) -> Any:
        """The ranked table, computed once and kept in the engine."""
        native = nw.to_native(frame)
        if self.engine == "duckdb":
            name = f"phm_ranked_{uuid.uuid4().hex[:12]}"
            native.create(name)
            kept = native.query("__phm_src", f"SELECT * FROM {name}")
            self._close = lambda: native.query("__phm_src", f"DROP TABLE IF EXISTS {name}")
            return nw.from_native(kept)
        if self.engine == "spark":
            from pyspark import StorageLevel

            kept = native.persist(StorageLevel.MEMORY_AND_DISK)
            kept.count()
            self._close = kept.unpersist
            return nw.from_native(kept)
        return frame.collect().lazy()

    def _check(self, base: Any, sources: dict[str, str], key: str) -> None:
        """One query: the key is unique and present, every source value finite, outcomes not negative."""
        checks = [
            nw.len().alias("rows"),
            nw.col(self._key).n_unique().alias("keys"),
            nw.col(self._key).null_count().alias("missing_keys"),
        ]
        for name in sources:
            col = nw.col(self._columns[name])
            checks.append((col.is_null() | ~col.is_finite()).cast(nw.Int64).sum().alias(f"bad:{name}"))
            if name in self._nonnegative:
                checks.append((col < 0).cast(nw.Int64).sum().alias(f"negative:{name}"))
        row = base.select(*checks).collect().to_pandas().iloc[0]
        self._tick("checked the table")
        if int(row["missing_keys"]):
            missing = int(row["missing_keys"])
            raise PhmInputError(f"key column '{key}' has {missing:,} missing values; every person needs a key")
        if int(row["keys"]) != int(row["rows"]):
            raise PhmInputError(
                f"key column '{key}' repeats values ({int(row['rows']) - int(row['keys']):,} repeats among "
                f"{int(row['rows']):,} rows); ties are broken by a unique key — name a unique column with --key"
            )
        for name, column in sources.items():
            bad = int(row[f"bad:{name}"])
            if bad:
                raise PhmInputError(
                    f"column '{column}' ({name}) has {bad:,} missing or infinite values; fill or remove them "
                    "before the audit"
                )
            negative = int(row.get(f"negative:{name}", 0))
            if negative:
                raise PhmInputError(
                    f"column '{column}' has {negative:,} negative values; a cost or a need is not negative — "
                    "correct the extract, or keep them with --allow-negative (allow_negative=True)"
                )

    def _code(self, dim: Dim) -> Any:
        if isinstance(dim, First):
            return (nw.col(self._positions[(dim.source, True)]) < dim.k).cast(nw.Int64)
        if isinstance(dim, Rank):
            pos = nw.col(self._positions[(dim.source, dim.descending)])
            if not dim.edges:
                return nw.lit(0, nw.Int64)
            return _bucket(pos, [int(e) for e in dim.edges])
        value = nw.col(self._columns[dim.source])
        if isinstance(dim, AtLeast):
            return (value >= dim.cut).cast(nw.Int64)
        if isinstance(dim, Positive):
            return (value > 0).cast(nw.Int64)
        if isinstance(dim, Distinct):
            terms = [(value > v).cast(nw.Int64) for v in dim.values]
            return functools.reduce(lambda a, b: a + b, terms) if terms else nw.lit(0, nw.Int64)
        raise TypeError(f"unknown dimension {dim!r}")

    def cube(self, dims: Sequence[Dim], values: Sequence[str] = ()) -> Cube:
        names = [f"__phm_d{i}" for i in range(len(dims))]
        frame = self._frame.with_columns(*(self._code(d).alias(n) for d, n in zip(dims, names, strict=True)))
        vals = [nw.col(self._columns[v]) for v in values]
        aggs = [nw.len().alias("__count")]
        aggs += [v.sum().alias(f"__s{a}") for a, v in enumerate(vals)]
        aggs += [(vals[a] * vals[b]).sum().alias(f"__x{a}_{b}") for a in range(len(vals)) for b in range(a, len(vals))]
        label = "cells by " + (", ".join(type(d).__name__.lower() for d in dims) or "stratum")
        got = self._collect(frame.group_by(*self._attr_cols.values(), *names).agg(*aggs), label)
        got = got.rename(columns={c: a for a, c in self._attr_cols.items()})
        strata = self.strata[self._attributes].assign(__j=np.arange(len(self.strata)))
        merged = got.merge(strata, on=self._attributes, how="left", validate="many_to_one")
        shape = tuple(dim_size(d) for d in dims)
        flat = merged["__j"].to_numpy(dtype=np.int64)
        for name, s in zip(names, shape, strict=True):
            flat = flat * s + merged[name].to_numpy(dtype=np.int64)
        order = np.argsort(flat, kind="stable")
        merged = merged.iloc[order]
        index = np.column_stack(
            [merged["__j"].to_numpy(dtype=np.int64), *(merged[n].to_numpy(dtype=np.int64) for n in names)]
        ).reshape(len(merged), 1 + len(dims))
        k = len(values)
        sums = np.zeros((len(merged), k))
        for a in range(k):
            sums[:, a] = merged[f"__s{a}"].to_numpy(dtype=np.float64)
        cross = np.zeros((len(merged), k, k))
        for a in range(k):
            for b in range(a, k):
                cross[:, a, b] = cross[:, b, a] = merged[f"__x{a}_{b}"].to_numpy(dtype=np.float64)
        return Cube(index, shape, merged["__count"].to_numpy(dtype=np.float64), sums, cross)

    def cubes(self, requests: Sequence[tuple[Sequence[Dim], Sequence[str]]]) -> list[Cube]:
        """One query for every request: each pass over the people costs more than summing the cells down."""
        return self.batched(requests)

    def distinct(self, source: str, limit: int) -> np.ndarray | None:
        """One query per source: its first :data:`FEW` + 1 distinct values answer any ``limit`` up to FEW."""
        if source not in self._distinct or (limit > FEW and self._distinct[source].size > FEW):
            col = self._columns[source]
            head = max(limit, FEW) + 1
            got = self._collect(self._frame.select(nw.col(col)).unique().head(head), f"distinct values of {source}")
            self._distinct[source] = np.sort(got[col].to_numpy(dtype=np.float64))
        values = self._distinct[source]
        return values.copy() if values.size <= limit else None

    def values_at(self, source: str, positions: np.ndarray, *, descending: bool) -> np.ndarray:
        pos = self._positions[(source, descending)]
        wanted = [int(p) for p in np.asarray(positions).ravel()]
        got = self._collect(
            self._frame.filter(nw.col(pos).is_in(wanted)).select(nw.col(pos), nw.col(self._columns[source])),
            f"the values at {len(wanted)} positions of {source}",
        )
        found = dict(zip(got[pos].astype(np.int64), got[self._columns[source]].astype(np.float64), strict=True))
        return np.array([found[p] for p in wanted], dtype=np.float64)
