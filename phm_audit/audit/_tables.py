"""``audit_table``: audit scores that are columns of a table, in memory or inside a data engine.

The table can be a pandas, Polars or PyArrow frame, a DuckDB relation, a Spark DataFrame, a Parquet
file or dataset folder, or (with ``engine="spark"``) the name of a table in Spark's catalog. With
``engine="memory"`` the table is read into pandas and audited by :func:`phm_audit.audit.audit`; with
``"duckdb"``, ``"spark"`` or ``"polars"`` the people stay in the engine and the audit reads only the
cells it computes there (:mod:`phm_audit.audit._lazy_cells`): fairness, calibration at equal score,
the threshold sweep and the referral gate. The analyses that re-rank or re-score people are left
out on an engine, each with a note.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from phm_audit._io import dataset_files
from phm_audit.audit._analyses import Context
from phm_audit.audit._audit import _places, audit, default_reference, run_analyses
from phm_audit.audit._groups import encode_groups, intersection_name
from phm_audit.audit._input_checks import check_outcome_columns
from phm_audit.audit._result import AuditResult, RowBuilder
from phm_audit.audit._spec import AuditSpec, ScoredModel
from phm_audit.exceptions import PhmInputError, closest

__all__ = ["ENGINES", "audit_table", "open_table"]

#: The engines :func:`audit_table` can run on.
ENGINES = ("memory", "duckdb", "spark", "polars")

Tick = Callable[[int, int, str], None]


def _kind(table: Any) -> str:
    """What ``table`` is: ``"path"``, ``"pandas"``, ``"duckdb"``, ``"spark"``, ``"polars"``, ``"pyarrow"``,
    ``"narwhals"`` (a LazyFrame opened already) or ``"other"``."""
    if isinstance(table, str | os.PathLike):
        return "path"
    if isinstance(table, pd.DataFrame):
        return "pandas"
    module = type(table).__module__.split(".")[0]
    kinds = {"duckdb": "duckdb", "pyspark": "spark", "polars": "polars", "pyarrow": "pyarrow", "narwhals": "narwhals"}
    return kinds.get(module, "other")


def _parquet_files(path: Path) -> list[str]:
    if path.is_dir():
        return [str(p) for p in dataset_files(path)]  # the parts, their schemas checked to agree
    if not path.is_file():
        raise PhmInputError(f"file {path} does not exist")
    if path.suffix.lower() != ".parquet":
        raise PhmInputError(f"an engine reads Parquet; {path} is not a .parquet file or a folder of them")
    return [str(path)]


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


def _spark_session(spark: Any) -> Any:
    if spark is not None:
        return spark
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise PhmInputError("the spark engine needs PySpark: pip install 'phm-audit[scale]'") from None
    session = SparkSession.getActiveSession()
    if session is None:
        raise PhmInputError(
            "no Spark session is running; start one (SparkSession.builder...getOrCreate()) and pass it as spark=, "
            "or use engine='duckdb'"
        )
    return session


def open_table(
    table: Any,
    engine: str,
    *,
    spark: Any = None,
    workdir: str | None = None,
    memory_limit: str | None = "4GB",
    cleanup: contextlib.ExitStack | None = None,
) -> Any:
    """The table as a Narwhals LazyFrame in ``engine`` (not read into memory).

    ``cleanup`` is given what to close and remove after the audit: DuckDB's connection, and the
    temporary folder made for it (a ``workdir`` of the user's is kept).

    Raises
    ------
    PhmInputError
        A path that does not exist, a Spark table the catalog lacks, no running Spark session, an
        engine that is not installed.
    """
    import narwhals.stable.v2 as nw

    kind = _kind(table)
    if engine == "duckdb":
        try:
            import duckdb
        except ImportError:
            raise PhmInputError("the duckdb engine needs DuckDB: pip install 'phm-audit[scale]'") from None
        if kind == "duckdb":
            return nw.from_native(table)
        folder = workdir or tempfile.mkdtemp(prefix="phm-audit-duckdb-")
        database = os.path.join(folder, f"phm-audit-cells-{os.getpid()}.duckdb")
        if cleanup is not None:
            if workdir is None:  # the folder made here goes; in the user's folder only the files made here
                cleanup.callback(shutil.rmtree, folder, True)
            else:
                for leftover in (database, database + ".wal"):
                    cleanup.callback(_remove, leftover)
        con = duckdb.connect(database)
        if cleanup is not None:
            cleanup.callback(con.close)
        con.execute(f"SET temp_directory = '{folder}'")
        if memory_limit:
            try:
                con.execute(f"SET memory_limit = '{memory_limit}'")
            except duckdb.Error as exc:
                raise PhmInputError(
                    f"memory limit '{memory_limit}' is not one DuckDB takes ({str(exc).splitlines()[0]}); "
                    "give a size such as 4GB or 800MB"
                ) from None
        if kind == "path":
            return nw.from_native(con.read_parquet(_parquet_files(Path(table))))
        frame = nw.from_native(table, eager_only=True) if kind != "polars" else nw.from_native(table)
        arrow = frame.lazy().collect().to_arrow() if hasattr(frame, "collect") else frame.to_arrow()
        return nw.from_native(con.from_arrow(arrow))
    if engine == "spark":
        session = _spark_session(spark if kind != "spark" else table.sparkSession)
        if kind == "spark":
            return nw.from_native(table)
        if kind == "path":
            path = Path(table)
            if path.exists():
                return nw.from_native(session.read.parquet(*_parquet_files(path)))
            if not session.catalog.tableExists(str(table)):
                raise PhmInputError(f"'{table}' is neither a file or folder nor a table in Spark's catalog")
            return nw.from_native(session.table(str(table)))
        pdf = nw.from_native(table).lazy().collect().to_pandas() if kind != "pandas" else table
        return nw.from_native(session.createDataFrame(pdf))
    if engine == "polars":
        import polars as pl

        if kind == "path":
            return nw.from_native(pl.scan_parquet(_parquet_files(Path(table))))
        return nw.from_native(table).lazy(backend="polars") if kind != "polars" else nw.from_native(table).lazy()
    raise PhmInputError(f"engine '{engine}' is not one of {', '.join(ENGINES)}{closest(engine, ENGINES)}")


def _to_pandas(table: Any) -> pd.DataFrame:
    import narwhals.stable.v2 as nw

    kind = _kind(table)
    if kind == "pandas":
        return table
    if kind == "path":
        from phm_audit._io import read_table

        return read_table(table)
    frame = nw.from_native(table)
    return frame.lazy().collect().to_pandas() if hasattr(frame, "lazy") else frame.to_pandas()


def audit_table(
    table: Any,
    scores: Sequence[str] | Mapping[str, str],
    spec: AuditSpec | None = None,
    *,
    engine: str = "memory",
    key: str | None = "patient_id",
    spark: Any = None,
    progress: Tick | None = None,
    workdir: str | None = None,
    memory_limit: str | None = "4GB",
    allow_negative: bool = False,
) -> AuditResult:
    """Audit scores that are columns of a table, in memory or inside a data engine.

    Parameters
    ----------
    table : DataFrame, relation, path or str
        A pandas, Polars or PyArrow frame, a DuckDB relation, a Spark DataFrame, a Parquet file or
        dataset folder, (``engine="spark"``) a table in Spark's catalog, or a Narwhals LazyFrame in
        ``engine`` (as :func:`open_table` gives).
    scores : sequence of str, or mapping of model name to column
        The score columns (higher = higher risk).
    spec : AuditSpec, optional
        What to audit.
    engine : {"memory", "duckdb", "spark", "polars"}, default "memory"
        Where the people are reduced to cells. ``memory`` reads the table into pandas and runs every
        analysis; the others keep the people in the engine and run the analyses that read cells.
    key : str, default "patient_id"
        The unique column that breaks ties in every order (score descending, then key ascending).
        An engine has no row order, so it needs one; in memory, None breaks ties by row order.
    spark : SparkSession, optional
        The session for ``engine="spark"`` (default the active one).
    progress : callable, optional
        ``progress(done, total, label)`` after each query (``total`` 0: not known ahead).
    workdir : str, optional
        Where DuckDB keeps its ranked table and spills (default a new temporary folder).
    memory_limit : str, default "4GB"
        DuckDB's memory limit (it spills to ``workdir`` beyond it); None leaves DuckDB's default (80% of RAM).
    allow_negative : bool, default False
        Keep negative costs and needs; by default they are refused, in memory as in an engine.

    Returns
    -------
    AuditResult

    Raises
    ------
    PhmInputError
        A missing column, table or Spark session, a column of the wrong type, missing values, a key
        that repeats.

    Examples
    --------
    >>> from phm_audit.synth import generate
    >>> cohort = generate("england", n=5_000, seed=1)
    >>> spec = AuditSpec(attributes=["imd_quintile"], intersections=[], n_boot=20, analyses=["fairness"])
    >>> a = audit_table(cohort, ["cost_prior"], spec)
    >>> b = audit_table(cohort, ["cost_prior"], spec, engine="duckdb")
    >>> key = ["group", "operating_point", "metric"]
    >>> x = a.table().query("analysis == 'fairness'").sort_values(key)["value"].to_numpy()
    >>> y = b.table().query("analysis == 'fairness'").sort_values(key)["value"].to_numpy()
    >>> bool(np.allclose(x, y, equal_nan=True, rtol=1e-9, atol=0))
    True
    """
    spec = spec or AuditSpec()
    columns = dict(scores) if isinstance(scores, Mapping) else {str(c): str(c) for c in scores}
    if not columns:
        raise PhmInputError("no scores to audit: name at least one score column")
    if engine == "memory":
        cohort = _to_pandas(table)
        missing = [c for c in columns.values() if c not in cohort.columns]
        if missing:
            raise PhmInputError(
                f"the table has no column '{missing[0]}'{closest(missing[0], map(str, cohort.columns))}"
            )
        outcomes = {spec.cost_target: "money", **{t: "need" for t in spec.need_targets if t in cohort.columns}}
        check_outcome_columns(cohort, outcomes, "the table", allow_negative=allow_negative)
        models = [ScoredModel(name, cohort[col].to_numpy()) for name, col in columns.items()]
        return audit(cohort, models, replace(spec, analyses=_cell_analyses(spec)), key=key)
    if key is None:
        raise PhmInputError(f"the {engine} engine has no row order, so ties need a key column: name one (key=...)")
    with contextlib.ExitStack() as cleanup:
        if _kind(table) == "narwhals":  # opened already (the command line opens it before its progress step)
            frame = table
        else:
            frame = open_table(table, engine, spark=spark, workdir=workdir, memory_limit=memory_limit, cleanup=cleanup)
        try:
            return _audit_in_engine(frame, columns, spec, engine, key, progress, cleanup, allow_negative)
        except ImportError as exc:  # an engine's own requirement, such as PySpark 4's pyarrow >= 18
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise PhmInputError(f"the {engine} engine cannot run here: {first}") from None


def _cell_analyses(spec: AuditSpec) -> tuple[str, ...]:
    """The spec's analyses less those that need fitted models or label scores, which a table cannot give."""
    return tuple(a for a in spec.analyses if a not in ("label_choice", "explanations"))


def _audit_in_engine(
    frame: Any,
    columns: dict[str, str],
    spec: AuditSpec,
    engine: str,
    key: str,
    progress: Tick | None,
    cleanup: contextlib.ExitStack,
    allow_negative: bool,
) -> AuditResult:
    from phm_audit.audit._lazy_cells import LazyCells

    spec = replace(spec, analyses=_cell_analyses(spec))  # a table of scores has no model to retrain or explain

    names = list(frame.collect_schema().names())
    if spec.cost_target not in names:
        raise PhmInputError(
            f"the table has no cost target column '{spec.cost_target}'{closest(spec.cost_target, names)}"
        )
    notes = [
        f"need target '{t}' is not in the table, so it is not audited" for t in spec.need_targets if t not in names
    ]
    present = [t for t in spec.need_targets if t in names]
    if not present:
        hints = "; ".join(f"'{t}'{closest(t, names)}" for t in spec.need_targets)
        raise PhmInputError(f"none of the need targets is in the table: {hints}")
    high = spec.high_need_target or ("need_true_next" if "need_true_next" in present else present[0])
    targets = [spec.cost_target, *present, high]
    if "referral" in spec.analyses and spec.referral_target in names:
        targets.append(spec.referral_target)
    attributes = [*spec.attributes, *(a for inter in spec.intersections for a in inter)]
    sources = {**{f"score:{m}": c for m, c in columns.items()}, **{t: t for t in dict.fromkeys(targets)}}
    cells = LazyCells(
        frame,
        attributes=attributes,
        sources=sources,
        key=key,
        engine=engine,
        ranked=[*(f"score:{m}" for m in columns), high],
        progress=progress,
        nonnegative=[] if allow_negative else [spec.cost_target, *present, high],
    )
    cleanup.callback(cells.close)
    strata = cells.strata
    weights = strata["n"].to_numpy()
    groupings = []
    for attrs in [[a] for a in spec.attributes] + [list(i) for i in spec.intersections]:
        name = intersection_name(attrs)
        reference = spec.reference.get(name) if len(attrs) > 1 else default_reference(strata, attrs[0], spec)
        if len(attrs) > 1 and reference is None:
            parts = [
                encode_groups(strata, [a], reference=default_reference(strata, a, spec), weights=weights) for a in attrs
            ]
            reference = " | ".join(p.labels[p.reference] for p in parts)
        g = encode_groups(strata, attrs, reference=reference, weights=weights)
        groupings.append(replace(g, codes=np.zeros(0, dtype=np.int64), strata=g.codes))
    empty = np.zeros(0)
    ctx = Context(
        cohort=pd.DataFrame(columns=names),
        spec=spec,
        models=[ScoredModel(m, empty) for m in columns],
        groupings=groupings,
        targets={t: empty for t in dict.fromkeys([spec.cost_target, *present, high])},
        high=high,
        places=_places(pd.DataFrame(columns=names), []),
        rows=RowBuilder(),
        curves=[],
        notes=notes,
        numeric=_no_rows(engine),
        cells=cells,
    )
    return run_analyses(ctx)


def _no_rows(engine: str) -> Callable[[str], np.ndarray]:
    def numeric(name: str) -> np.ndarray:
        raise PhmInputError(f"'{name}' per person is not at hand on the {engine} engine; audit in memory for it")

    return numeric
