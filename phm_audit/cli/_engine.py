"""``phm-audit audit --table ... --engine duckdb|spark|polars``: the audit inside a data engine.

The people stay in the engine; the audit reads the cells it computes there
(:func:`phm_audit.audit.audit_table`). A local Spark is started for the run and stopped after it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from phm_audit._progress import Progress
from phm_audit.audit._result import AuditResult
from phm_audit.audit._spec import DEFAULT_OPERATING_POINTS, AuditSpec
from phm_audit.exceptions import PhmInputError

__all__ = [
    "add_engine_arguments",
    "engine_audit",
    "engine_spec",
    "parse_intersections",
    "require_table_columns",
    "table_spec",
]

_COHORT_ONLY = ("model", "model_file", "scores", "model_callable", "train_cohort", "label_choice", "explain")


def add_engine_arguments(group: argparse._ArgumentGroup) -> None:
    """``--engine``, ``--key`` and ``--spark-master``."""
    group.add_argument(
        "--engine",
        choices=["memory", "duckdb", "spark", "polars"],
        default="memory",
        help="where --table's people are reduced to cells: memory (pandas, every analysis; the default), duckdb "
        "(embedded, for a Parquet dataset larger than memory), spark (local, or --spark-master) or polars; an "
        "engine runs the analyses that read cells and notes the ones that need rows",
    )
    group.add_argument(
        "--key",
        default="patient_id",
        metavar="COL",
        help="unique column that breaks ties in every order: score descending, then key ascending (default "
        "patient_id; in memory, a table without it breaks ties by row order)",
    )
    group.add_argument(
        "--engine-memory",
        default="4GB",
        metavar="SIZE",
        help="DuckDB's memory limit; beyond it DuckDB spills to a temporary folder (default 4GB)",
    )
    group.add_argument(
        "--spark-master", default="local[2]", metavar="URL", help="Spark master for --engine spark (default local[2])"
    )


def require_table_columns(args: argparse.Namespace) -> None:
    """A --table run names its score, group, need and cost columns."""
    named = (("--score", args.score), ("--group", args.group), ("--need", args.need), ("--cost", args.cost))
    missing = [flag for flag, value in named if not value]
    if missing:
        raise PhmInputError(f"--table needs {', '.join(missing)}: name the columns that hold them")


def parse_intersections(items: list[str] | None) -> list[tuple[str, ...]]:
    """``--intersection COL,COL`` values as tuples of column names."""
    out = []
    for item in items or []:
        cols = tuple(c.strip() for c in item.split(",") if c.strip())
        if len(cols) < 2:
            raise PhmInputError(f"--intersection needs two or more columns separated by commas; got '{item}'")
        out.append(cols)
    return out


@contextlib.contextmanager
def _spark(master: str) -> Iterator[Any]:
    """A Spark session for the run, its JVM's own output sent to a log file, stopped after.

    The JVM inherits standard output and error when it starts, and writes its logging and stage bars
    there; pointed at a log file, the command's output stays phm-audit's progress and one-line
    messages. The log is removed after a run that went well, and named in the message when Spark
    cannot start.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise PhmInputError("--engine spark needs PySpark: pip install 'phm-audit[scale]'") from None
    log_path = os.path.join(tempfile.gettempdir(), f"phm-audit-spark-{os.getpid()}.log")
    builder = (
        SparkSession.builder.master(master)
        .appName("phm-audit")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "8")
    )
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    try:
        with open(log_path, "ab") as log:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
            try:
                session = builder.getOrCreate()
            finally:
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)
    except Exception as exc:  # Java missing, a master that does not answer: PySpark raises its own types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PhmInputError(
            f"could not start Spark at {master}: {first}; Spark needs Java 17 (Debian: openjdk-17-jre-headless); "
            f"its log: {log_path}"
        ) from None
    finally:
        os.close(saved[0])
        os.close(saved[1])
    session.sparkContext.setLogLevel("ERROR")
    try:
        yield session
    finally:
        session.stop()
        with contextlib.suppress(OSError):
            os.remove(log_path)


def engine_spec(args: argparse.Namespace) -> AuditSpec:
    """The spec of an engine run: the columns as named (checked by the engine), references as COL=GROUP."""
    given = [f"--{f.replace('_', '-')}" for f in _COHORT_ONLY if getattr(args, f, None)]
    if given:
        raise PhmInputError(
            f"{', '.join(given)} cannot be used with --engine {args.engine}: an engine audits the score columns of "
            "--table; fit, explain or retrain models in memory (--engine memory)"
        )
    require_table_columns(args)
    references = {}
    for item in args.reference or []:
        if "=" not in item:
            raise PhmInputError(
                f"--reference '{item}': with --engine {args.engine} name the attribute too, as COL=GROUP "
                f"(for example imd_quintile=5)"
            )
        col, group = item.split("=", 1)
        references[col] = group
    if args.engine != "spark" and not Path(args.table).exists():  # Spark may name a table of its catalog
        raise PhmInputError(f"--table {args.table} does not exist; give a Parquet file or a dataset folder")
    return table_spec(args, intersections=parse_intersections(args.intersection), reference=references)


def table_spec(
    args: argparse.Namespace, *, intersections: list[tuple[str, ...]], reference: dict[str, str]
) -> AuditSpec:
    """The spec of a --table run, in memory or in an engine: the columns it names, and its options."""
    from phm_audit.cli._audit import equity_attributes

    return AuditSpec(
        attributes=tuple(args.group),
        intersections=tuple(intersections),
        reference=reference,
        operating_points=tuple(args.operating_point or DEFAULT_OPERATING_POINTS),
        cost_target=args.cost,
        need_targets=tuple(args.need),
        high_need_target=args.need[0],
        min_group_size=max(1, args.min_group_size),
        n_boot=args.bootstrap,
        seed=args.seed,
        equity_attributes=equity_attributes(args.equity_attribute),
    )


def engine_audit(args: argparse.Namespace, spec: AuditSpec, progress: Progress) -> AuditResult:
    """Audit ``--table`` inside ``--engine`` (``spec`` from :func:`engine_spec`).

    The table is opened and its columns checked before the progress step starts, so that a table, a
    column or a Spark table that does not exist is one line; a local Spark is started and stopped around it.
    """
    from phm_audit.audit import audit_table
    from phm_audit.audit._lazy_cells import require_columns, require_numeric
    from phm_audit.audit._tables import open_table

    with contextlib.ExitStack() as stack:
        session = stack.enter_context(_spark(args.spark_master)) if args.engine == "spark" else None
        frame = open_table(args.table, args.engine, spark=session, memory_limit=args.engine_memory, cleanup=stack)
        intersected = [c for inter in spec.intersections for c in inter]
        require_columns(frame, [*args.score, *spec.attributes, *intersected, *spec.need_targets, spec.cost_target])
        require_columns(frame, [args.key])
        outcomes = [*spec.need_targets, spec.cost_target]
        require_numeric(frame, {**{f"score {c}": c for c in args.score}, **{c: c for c in outcomes}}, args.engine)
        with progress.step(f"auditing {len(args.score)} score column(s) in {args.engine}") as tick:
            return audit_table(
                frame,
                list(args.score),
                spec,
                engine=args.engine,
                key=args.key,
                progress=tick,
                allow_negative=args.allow_negative,
            )
