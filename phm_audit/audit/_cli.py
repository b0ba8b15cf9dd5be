"""``phm-audit audit``: audit built-in or supplied models on a cohort, or a table that already has scores."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from phm_audit._argtypes import at_least
from phm_audit._io import read_table
from phm_audit.audit._audit import audit
from phm_audit.audit._groups import check_columns
from phm_audit.audit._result import AuditResult
from phm_audit.audit._spec import DEFAULT_OPERATING_POINTS, AuditSpec, ScoredModel
from phm_audit.exceptions import PhmInputError, closest


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "audit",
        help="audit models on a cohort, or a table that already carries scores and outcomes",
        description=(
            "Audit risk scores for fairness-related harm. Either --table (an extract with scores and outcomes, "
            "for example from a live system) or --cohort with --model (built-in models, trained on a part of "
            "the cohort that is never audited)."
        ),
    )
    src = p.add_argument_group("what to audit")
    src.add_argument("--table", help="a CSV or Parquet extract that already has scores and outcomes")
    src.add_argument("--score", action="append", metavar="COL", help="score column of --table (repeatable)")
    src.add_argument("--group", action="append", metavar="COL", help="protected attribute column (repeatable)")
    src.add_argument(
        "--need",
        action="append",
        metavar="COL",
        help="need-like outcome column (repeatable; the first defines high need)",
    )
    src.add_argument("--cost", metavar="COL", help="cost-like outcome column")
    src.add_argument(
        "--score-target",
        metavar="COL",
        help="the outcome the scores predict on its own scale "
        "(a probability or an expected value), for calibration slope and ICI",
    )
    src.add_argument("--cohort", help="a cohort from 'phm-audit generate'")
    src.add_argument("--model", action="append", metavar="NAME", help="built-in model to audit (repeatable)")
    src.add_argument("--train-cohort", help="train built-in models on this cohort instead of a split of --cohort")
    src.add_argument(
        "--label-choice",
        action="store_true",
        help="also retrain the cost learner on each label and compare who it flags (needs --cohort)",
    )
    opts = p.add_argument_group("options")
    opts.add_argument(
        "--reference",
        action="append",
        metavar="[COL=]GROUP",
        help="reference group, for one attribute (COL=GROUP) or wherever the group exists",
    )
    opts.add_argument("--intersection", action="append", metavar="COL,COL", help="audit an intersection")
    opts.add_argument(
        "--operating-point",
        action="append",
        metavar="RULE",
        help="top_pct:3, top_k:2000, score_ge:0.3 or per_100k:45 (repeatable; "
        f"default {', '.join(DEFAULT_OPERATING_POINTS)})",
    )
    opts.add_argument("--bootstrap", type=at_least(0), default=200, help="bootstrap replicates (default 200)")
    opts.add_argument("--min-group-size", type=at_least(0), default=50, help="smaller groups are undefined")
    opts.add_argument("--seed", type=int, default=0, help="seed of the bootstrap and of the train/audit split")
    opts.add_argument("--out", required=True, help="folder to write metrics.csv, curves.csv, audit.json, summary.md")
    opts.add_argument("--quiet", action="store_true")
    opts.add_argument(
        "--fail-on",
        choices=["flag", "review"],
        help="exit 3 when any finding is graded this "
        "(or worse), so a model can be gated in a pipeline; the report is written first",
    )
    p.set_defaults(func=run)


def _references(items: list[str] | None, frame: pd.DataFrame, attributes: list[str]) -> dict[str, str]:
    refs: dict[str, str] = {}
    for item in items or []:
        if "=" in item:
            col, group = item.split("=", 1)
            if col not in attributes:
                raise PhmInputError(
                    f"--reference {item}: '{col}' is not an audited attribute{closest(col, attributes)}"
                )
            refs[col] = group
            continue
        hits = [a for a in attributes if item in set(frame[a].astype(str).unique())]
        if not hits:
            values = sorted({v for a in attributes for v in frame[a].astype(str).unique()})
            raise PhmInputError(
                f"--reference '{item}' is not a group of {', '.join(attributes)}{closest(item, values)}"
            )
        for a in hits:
            refs[a] = item
    return refs


def _intersections(items: list[str] | None, frame: pd.DataFrame) -> list[tuple[str, ...]]:
    out = []
    for item in items or []:
        cols = tuple(c.strip() for c in item.split(",") if c.strip())
        if len(cols) < 2:
            raise PhmInputError(f"--intersection needs two or more columns separated by commas; got '{item}'")
        check_columns(frame, cols, "--intersection")
        out.append(cols)
    return out


def _table_mode(args: argparse.Namespace) -> tuple[pd.DataFrame, pd.DataFrame | None, list[ScoredModel], AuditSpec]:
    missing = [
        f
        for f, v in (("--score", args.score), ("--group", args.group), ("--need", args.need), ("--cost", args.cost))
        if not v
    ]
    if missing:
        raise PhmInputError(f"--table needs {', '.join(missing)}: name the columns that hold them")
    table = read_table(args.table)
    check_columns(table, [*args.score, *args.group, *args.need, args.cost], f"--table {args.table}")
    models = []
    for col in args.score:
        values = pd.to_numeric(table[col], errors="coerce")
        bad = values.isna() & table[col].notna()
        if bad.any():
            raise PhmInputError(
                f"score column '{col}' has non-numeric values (first: '{table[col][bad].iloc[0]}' at "
                f"row {int(np.flatnonzero(bad.to_numpy())[0]) + 1}); scores must be numbers"
            )
        models.append(ScoredModel(col, values.to_numpy(np.float64), kind="supplied", target=args.score_target))
    spec = AuditSpec(
        attributes=tuple(args.group),
        intersections=tuple(_intersections(args.intersection, table)),
        reference=_references(args.reference, table, list(args.group)),
        operating_points=tuple(args.operating_point or DEFAULT_OPERATING_POINTS),
        cost_target=args.cost,
        need_targets=tuple(args.need),
        high_need_target=args.need[0],
        min_group_size=max(1, args.min_group_size),
        n_boot=args.bootstrap,
        seed=args.seed,
    )
    return table, None, models, spec


def _cohort_mode(args: argparse.Namespace) -> tuple[pd.DataFrame, pd.DataFrame | None, list[ScoredModel], AuditSpec]:
    from phm_audit._pipeline import train_and_score
    from phm_audit.synth._cohort import read_cohort

    if not args.model:
        raise PhmInputError("--cohort needs at least one --model NAME ('phm-audit models' lists them)")
    cohort = read_cohort(args.cohort)
    train = read_cohort(args.train_cohort) if args.train_cohort else None
    audited, train, models = train_and_score(cohort, args.model, train=train, seed=args.seed, quiet=args.quiet)
    attributes = list(args.group) if args.group else None
    base = AuditSpec() if attributes is None else AuditSpec(attributes=tuple(attributes), intersections=())
    spec = AuditSpec(
        attributes=base.attributes,
        intersections=tuple(_intersections(args.intersection, audited)) or base.intersections,
        reference=_references(args.reference, audited, list(base.attributes)),
        operating_points=tuple(args.operating_point or DEFAULT_OPERATING_POINTS),
        min_group_size=max(1, args.min_group_size),
        n_boot=args.bootstrap,
        seed=args.seed,
    )
    return audited, train, models, spec


def run(args: argparse.Namespace) -> int:
    from phm_audit.report import write_report

    if bool(args.table) == bool(args.cohort):
        raise PhmInputError("give exactly one of --table (scores already in the extract) or --cohort (with --model)")
    start = time.perf_counter()
    if args.label_choice and not args.cohort:
        raise PhmInputError("--label-choice retrains models, so it needs --cohort")
    frame, train, models, spec = _table_mode(args) if args.table else _cohort_mode(args)
    result: AuditResult = audit(frame, models, spec)
    if args.label_choice and train is not None:
        from phm_audit.audit._label_choice import label_choice_from_cohort

        result = result.merge(label_choice_from_cohort(train, frame, spec))
    out = Path(args.out)
    write_report(result, out)
    if not args.quiet:
        print(
            f"audited {len(models)} model(s) on {len(frame):,} people in {time.perf_counter() - start:.1f} s; "
            f"wrote {out}/ (index.html, metrics.csv, curves.csv, audit.json, summary.md)",
            file=sys.stdout,
        )
    if args.fail_on:
        from phm_audit.cli import EXIT_GATE
        from phm_audit.report import FindingRules, findings

        grades = {"flag"} if args.fail_on == "flag" else {"flag", "review"}
        failing = [f for f in findings(result, FindingRules()) if f.grade in grades]
        if failing:
            print(
                f"phm-audit audit: gate failed: {len(failing)} finding(s) graded {' or '.join(sorted(grades))}; "
                f"first: {failing[0].text}",
                file=sys.stderr,
            )
            return EXIT_GATE
    return 0
