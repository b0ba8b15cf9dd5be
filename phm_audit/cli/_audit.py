"""``phm-audit audit``: audit built-in or supplied models on a cohort, or a table that already has scores."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from phm_audit._argtypes import at_least
from phm_audit._checks import check_columns
from phm_audit._io import read_table
from phm_audit._progress import Progress
from phm_audit.audit._audit import audit
from phm_audit.audit._input_checks import check_outcome_columns, check_score_column
from phm_audit.audit._result import AuditResult
from phm_audit.audit._spec import DEFAULT_OPERATING_POINTS, AuditSpec, ScoredModel
from phm_audit.cli._engine import add_engine_arguments, parse_intersections, require_table_columns, table_spec
from phm_audit.cli._models import add_supplied_arguments, check_supplied_flags, printed_warnings, supplied_paths
from phm_audit.cli._release import add_release_arguments, release_settings
from phm_audit.exceptions import PhmInputError, closest

_DESCRIPTION = """\
Audit risk scores for fairness-related harm, from one of two sources:

  --table FILE: an extract that already has scores and outcomes (for example from a live system);
      name its columns with --score, --group, --need and --cost.
  --cohort FILE: a cohort from 'phm-audit generate', with any mix of models (each repeatable):
      --model NAME          a built-in model ('phm-audit models' lists them);
      --model-file FILE     a fitted scikit-learn estimator or pipeline (.skops; pickles need --allow-pickle);
      --scores FILE         precomputed scores keyed by patient_id;
      --model-callable MODULE:FUNCTION   a Python function taking the cohort, returning scores.

Which people are audited: with any --model (or --label-choice) and no --train-cohort, the cohort is
split by a seeded hash of patient_id (--seed); built-in models are fitted on one part and every
model, supplied ones too, scores and is audited on the other part only, so all models are audited
on the same people and no one is scored by a model trained on them. A --scores table must then hold
a score for every audited person (it may hold the others too). With only supplied models, which are
already fitted, every person of --cohort is audited.

--explain adds SHAP explanations of every model phm-audit can call (not a --scores table), on a
random sample of the audited people.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "audit",
        help="audit built-in or supplied models on a cohort, or a table that already carries scores and outcomes",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    src = p.add_argument_group("what to audit")
    src.add_argument(
        "--table",
        help="a CSV or Parquet extract that already has scores and outcomes, or a folder of Parquet parts (a dataset)",
    )
    src.add_argument("--score", action="append", metavar="COL", help="score column of --table (repeatable)")
    src.add_argument("--group", action="append", metavar="COL", help="protected attribute column (repeatable)")
    src.add_argument(
        "--need",
        action="append",
        metavar="COL",
        help="need-like outcome column of --table (repeatable; the first defines high need)",
    )
    src.add_argument("--cost", metavar="COL", help="cost-like outcome column of --table")
    src.add_argument(
        "--score-target",
        metavar="COL",
        help="the outcome the scores of --table predict on its own scale "
        "(a probability or an expected value), for calibration slope and ICI",
    )
    src.add_argument("--cohort", help="a cohort from 'phm-audit generate'")
    src.add_argument("--model", action="append", metavar="NAME", help="built-in model to audit (repeatable)")
    sup = p.add_argument_group("supplied models (with --cohort; already fitted, they only score the audited people)")
    add_supplied_arguments(src, sup, repeatable=True)
    src.add_argument("--train-cohort", help="train built-in models on this cohort instead of a split of --cohort")
    src.add_argument(
        "--label-choice",
        action="store_true",
        help="also retrain the cost learner on each label and compare who it flags (needs --cohort)",
    )
    exp = p.add_argument_group("explanations (with --cohort)")
    exp.add_argument(
        "--explain",
        action="store_true",
        help="explain each model phm-audit can call with SHAP: attributions, the score gap at equal need by "
        "feature, proxies for the protected attributes",
    )
    exp.add_argument(
        "--explain-sample",
        type=at_least(1),
        metavar="N",
        help="audited people explained per model (default: 5000, or all of them when fewer)",
    )
    exp.add_argument(
        "--explain-background",
        type=at_least(1),
        metavar="N",
        help="people in the explainers' background (reference) sample (default: 200)",
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
        "--equity-attribute",
        action="append",
        metavar="COL[,COL]",
        help="attribute (or audited intersection COL,COL) the report's headline ranks first (repeatable; default "
        "Core20PLUS5: imd_quintile, ethnicity and their intersection, where audited)",
    )
    opts.add_argument(
        "--operating-point",
        action="append",
        metavar="RULE",
        help="top_pct:3, top_k:2000, score_ge:0.3 or per_100k:45 (repeatable; "
        f"default {', '.join(DEFAULT_OPERATING_POINTS)})",
    )
    opts.add_argument("--bootstrap", type=at_least(0), default=200, help="bootstrap replicates (default 200)")
    opts.add_argument("--min-group-size", type=at_least(0), default=50, help="smaller groups are undefined")
    opts.add_argument(
        "--seed", type=int, default=0, help="seed of the bootstrap, the train/audit split and the explained sample"
    )
    opts.add_argument("--out", required=True, help="folder to write metrics.csv, curves.csv, audit.json, summary.md")
    opts.add_argument(
        "--allow-negative",
        action="store_true",
        help="keep negative costs or need (with a warning) instead of refusing them",
    )
    opts.add_argument(
        "--overwrite",
        action="store_true",
        help="write into a --out folder that also holds other files: only the report's files are replaced, "
        "every other file is kept (a new folder, or one holding only an earlier report, needs no flag)",
    )
    opts.add_argument(
        "--deterministic",
        action="store_true",
        help="omit the creation time, so the same inputs give byte-identical files (for comparisons)",
    )
    opts.add_argument("--quiet", action="store_true")
    add_engine_arguments(src)
    add_release_arguments(opts)
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


def equity_attributes(items: list[str] | None) -> tuple[str, ...] | None:
    """``--equity-attribute`` values as attribute names: ``ethnicity,imd_quintile`` is the intersection
    ``ethnicity x imd_quintile``; None (the spec's Core20PLUS5 default) when none is given.

    Examples
    --------
    >>> equity_attributes(["imd_quintile", "ethnicity,imd_quintile"])
    ('imd_quintile', 'ethnicity x imd_quintile')
    """
    if not items:
        return None
    out = []
    for item in items:
        parts = [p.strip() for p in item.replace(" x ", ",").split(",") if p.strip()]
        if not parts:
            raise PhmInputError(f"--equity-attribute needs an attribute name, e.g. imd_quintile; got '{item}'")
        out.append(" x ".join(parts))
    return tuple(dict.fromkeys(out))


def _intersections(items: list[str] | None, frame: pd.DataFrame) -> list[tuple[str, ...]]:
    out = parse_intersections(items)
    for cols in out:
        check_columns(frame, cols, "--intersection")
    return out


@dataclass(frozen=True)
class _Plan:
    """What one run audits: the people, the scores, the spec, and what the report says about the inputs."""

    frame: pd.DataFrame
    train: pd.DataFrame | None
    models: list[ScoredModel]
    spec: AuditSpec
    provenance: dict[str, Any]
    explainable: list[Any]  # fitted models to explain, and the scores of tables (listed as unexplained)


def _given(args: argparse.Namespace, names: tuple[str, ...]) -> list[str]:
    return [f for f in names if getattr(args, f[2:].replace("-", "_"))]


def _file_hashes(files: list[tuple[str, str]]) -> dict[str, str]:
    """``{file name: sha256}`` of supplied files; a name shared by two files becomes the path as given."""
    from phm_audit.report import file_sha256

    names = [Path(path).name for _, path in files]
    return {
        (name if names.count(name) == 1 else path): file_sha256(path)
        for name, (_, path) in zip(names, files, strict=True)
    }


def _table_mode(args: argparse.Namespace) -> _Plan:
    cohort_only = _given(
        args,
        ("--model", "--model-file", "--scores", "--model-callable", "--train-cohort", "--explain-sample"),
    ) + _given(args, ("--explain-background", "--trust", "--allow-pickle", "--feature-map", "--score-column"))
    if args.explain:
        raise PhmInputError(
            "--explain needs --cohort and a model phm-audit can call (--model, --model-file or --model-callable); "
            "a --table holds only scores, so there is nothing to explain"
        )
    if cohort_only:
        raise PhmInputError(
            f"{', '.join(cohort_only)} cannot be used with --table: its scores are already columns "
            "(name them with --score COL); to score people with a model, give --cohort instead"
        )
    require_table_columns(args)
    table = read_table(args.table)
    check_columns(table, [*args.score, *args.group, *args.need, args.cost], f"--table {args.table}")
    check_outcome_columns(
        table,
        {args.cost: "money", **dict.fromkeys(args.need, "need")},
        args.table,
        allow_negative=args.allow_negative,
    )
    models = []
    for col in args.score:
        scores = check_score_column(table, col, args.table)
        models.append(ScoredModel(col, scores, kind="supplied", target=args.score_target))
    spec = table_spec(
        args,
        intersections=_intersections(args.intersection, table),
        reference=_references(args.reference, table, list(args.group)),
    )
    provenance = {
        "command": "phm-audit audit --table",
        "audit_seed": args.seed,
        "n_table": len(table),
        "supplied_files": _file_hashes([("--table", args.table)]),
    }
    return _Plan(table, None, models, spec, provenance, [])


def _check_explain(args: argparse.Namespace, n_audited: int) -> None:
    """Refuse explanation settings that cannot work, before any model is fitted."""
    if not args.explain:
        given = _given(args, ("--explain-sample", "--explain-background"))
        if given:
            raise PhmInputError(f"{', '.join(given)} set(s) the explanations; add --explain or leave it out")
        return
    if not (args.model or args.model_file or args.model_callable):
        raise PhmInputError(
            "--explain needs a model phm-audit can call (--model, --model-file or --model-callable); "
            "a --scores table holds only scores, so there is nothing to explain"
        )
    for flag, value in (("--explain-sample", args.explain_sample), ("--explain-background", args.explain_background)):
        if value is not None and value > n_audited:
            raise PhmInputError(
                f"{flag} {value:,} is larger than the {n_audited:,} audited people; give {flag} {n_audited:,} or less"
            )


def _cohort_meta(cohort: pd.DataFrame) -> tuple[str | None, int | None]:
    """The scenario name and seed a generated cohort records in its metadata, if it does."""
    meta = cohort.attrs.get("phm_audit") or {}
    scenario = meta.get("scenario")
    name = scenario.get("name") if isinstance(scenario, dict) else scenario
    seed = meta.get("seed")
    return (str(name) if name is not None else None), (int(seed) if seed is not None else None)


def _cohort_mode(args: argparse.Namespace) -> _Plan:
    from phm_audit.models import get_model
    from phm_audit.models._supplied import ScoresTableRiskModel, parse_feature_map
    from phm_audit.models._validation import patient_ids
    from phm_audit.pipeline import score_models, split_for_audit
    from phm_audit.report import file_sha256
    from phm_audit.synth._cohort import read_cohort

    table_only = _given(args, ("--score", "--need", "--cost", "--score-target"))
    if table_only:
        raise PhmInputError(
            f"{', '.join(table_only)} name(s) columns of --table; a --cohort is audited on its own outcome columns, "
            "so leave them out"
        )
    if not (args.model or args.model_file or args.scores or args.model_callable):
        raise PhmInputError(
            "--cohort needs at least one model: --model NAME ('phm-audit models' lists them), --model-file FILE, "
            "--scores FILE or --model-callable MODULE:FUNCTION"
        )
    check_supplied_flags(args)
    parse_feature_map(args.feature_map)  # a malformed map fails before reading any file
    builtin = [get_model(name) for name in args.model or []]  # unknown names fail before reading any file
    trains = bool(builtin) or args.label_choice
    if args.train_cohort and not trains:
        raise PhmInputError(
            f"--train-cohort {args.train_cohort} trains built-in models, but none is audited (supplied models are "
            "already fitted); add --model NAME or --label-choice, or leave out --train-cohort"
        )
    cohort = read_cohort(args.cohort)
    patient_ids(cohort, f"cohort {args.cohort}")
    outcomes = {AuditSpec().cost_target: "money", **dict.fromkeys(AuditSpec().need_targets, "need")}
    # checked in the file's order, before the split, so that rows are the file's rows
    check_outcome_columns(cohort, outcomes, args.cohort, allow_negative=args.allow_negative)
    train = read_cohort(args.train_cohort) if args.train_cohort else None
    if train is not None:
        check_outcome_columns(train, outcomes, args.train_cohort, allow_negative=args.allow_negative)
    if trains:
        audited, train = split_for_audit(cohort, train=train, seed=args.seed)
    else:
        audited = cohort
    _check_explain(args, len(audited))

    from phm_audit.cli._models import load_supplied_models

    supplied = load_supplied_models(args, cohort, scored=audited)
    models = [*builtin, *supplied]
    names = [str(m.name) for m in models]
    doubled = sorted({n for n in names if names.count(n) > 1})
    if doubled:
        raise PhmInputError(
            f"two models are named '{doubled[0]}' (a model file or scores table is named after its file, a callable "
            "after MODULE:FUNCTION); rename a file so that every model has its own name"
        )
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
        equity_attributes=equity_attributes(args.equity_attribute),
    )
    files = supplied_paths(args) + ([("--train-cohort", args.train_cohort)] if args.train_cohort else [])
    scenario, seed = _cohort_meta(cohort)
    provenance = {
        "command": "phm-audit audit --cohort",
        "cohort": {"name": Path(args.cohort).name, "sha256": file_sha256(args.cohort)},
        "scenario": scenario,
        "seed": seed,
        "audit_seed": args.seed,
        "n_cohort": len(cohort),
        "n_trained": None if train is None else len(train),
        "n_audited": len(audited),
        "model_callables": list(args.model_callable or []),
        "supplied_files": _file_hashes(files),  # hashed before the models run, as they were read
    }
    # everything above is cheap and checks the input; fitting and scoring is the long part
    scored = score_models(models, audited, train=train, quiet=args.quiet)
    by_name = {s.name: s for s in scored}
    # a table of scores has nothing to call: pass its scores, which the explainer lists as unexplained
    explainable = [by_name[m.name] if isinstance(m, ScoresTableRiskModel) else m for m in models]
    return _Plan(audited, train, scored, spec, provenance, explainable)


def run(args: argparse.Namespace) -> int:
    """Run ``phm-audit audit`` and return its exit code (3 when ``--fail-on`` finds a finding so graded)."""
    from phm_audit.report import write_report

    if bool(args.table) == bool(args.cohort):
        raise PhmInputError(
            "give exactly one of --table (scores already in the extract) or --cohort (with --model, --model-file, "
            "--scores or --model-callable)"
        )
    start = time.perf_counter()
    if args.label_choice and not args.cohort:
        raise PhmInputError("--label-choice retrains models, so it needs --cohort")
    from phm_audit.report._outputs import check_report_folder

    if not str(args.out).strip():
        raise PhmInputError("--out is empty; give a folder for the report, such as reports/audit")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise PhmInputError(f"--out {out} is a file; give a folder for the report")
    check_report_folder(out, overwrite=args.overwrite, files=("index.html", "audit.json", "metrics.csv"))
    release = release_settings(args, out)
    progress = Progress(quiet=args.quiet)
    with printed_warnings("audit"):
        if args.engine != "memory":
            if not args.table:
                raise PhmInputError(f"--engine {args.engine} audits a --table (a Parquet file or dataset folder)")
            from phm_audit.cli._engine import engine_audit, engine_spec

            result = engine_audit(args, engine_spec(args), progress)
            n_models, n_people = len(args.score), int(result.cohort["n"])
            provenance: dict[str, Any] = {
                "command": f"phm-audit audit --table --engine {args.engine}",
                "audit_seed": args.seed,
                "n_table": n_people,
                "engine": args.engine,
            }
        else:
            result, provenance, n_models, n_people = _audit_in_memory(args, progress)
        with progress.step(f"writing the report to {out}"):
            folder = write_report(
                result,
                out,
                name=out.resolve().name or "audit",
                provenance=provenance,
                disclosure=release.report,
                deterministic=args.deterministic,
                overwrite=args.overwrite,
            )
        if release.bundle_folder is not None:
            from phm_audit.report import write_release_bundle

            with progress.step(f"writing the release bundle to {release.bundle_folder}"):
                write_release_bundle(
                    result, release.bundle_folder, disclosure=release.bundle, deterministic=args.deterministic
                )
    if not args.quiet:
        print(
            f"audited {n_models} model(s) on {n_people:,} people in "
            f"{time.perf_counter() - start:.1f} s; "
            f"wrote {out}/ (index.html, metrics.csv, curves.csv, audit.json, summary.md)"
            + (f" and the release bundle {release.bundle_folder}/" if release.bundle_folder is not None else ""),
            file=sys.stdout,
        )
    if args.fail_on:
        from phm_audit.cli import EXIT_GATE

        grades = {"flag"} if args.fail_on == "flag" else {"flag", "review"}
        failing = [f for f in gate_findings(Path(folder)) if f["grade"] in grades]
        if failing:
            print(
                f"phm-audit audit: gate failed: {len(failing)} finding(s) graded {' or '.join(sorted(grades))}; "
                f"first: {failing[0]['text']}",
                file=sys.stderr,
            )
            return EXIT_GATE
    return 0


def _audit_in_memory(args: argparse.Namespace, progress: Progress) -> tuple[AuditResult, dict[str, Any], int, int]:
    """Read the table or score the cohort, and audit in memory (every analysis)."""
    plan = _table_mode(args) if args.table else _cohort_mode(args)
    label_scores = None
    if args.label_choice and plan.train is not None:
        from phm_audit.pipeline import fit_label_scores

        with progress.step("retraining the cost learner on each label (label choice)"):
            label_scores = fit_label_scores(plan.train, plan.frame)
    spec = plan.spec
    if args.explain:
        background = 200 if args.explain_background is None else args.explain_background
        spec = dataclasses.replace(spec, explain_sample_size=args.explain_sample, explain_background_size=background)
    what = f"auditing {len(plan.models)} model(s) on {len(plan.frame):,} people"
    if args.explain:
        what += f" and explaining {len(plan.explainable)} with SHAP"
    with progress.step(what) as tick:
        result: AuditResult = audit(
            plan.frame,
            plan.models,
            spec,
            progress=tick,
            label_scores=label_scores,
            fitted=plan.explainable if args.explain else (),
            key=args.key if args.key in plan.frame.columns else None,
        )
    return result, plan.provenance, len(plan.models), len(plan.frame)


def gate_findings(folder: Path) -> list[dict[str, Any]]:
    """The findings ``--fail-on`` grades: those the report published, read back from its ``audit.json``
    (after disclosure control, one per effect, with false discoveries controlled), so the gate and the
    report cannot differ."""
    doc = json.loads((folder / "audit.json").read_text(encoding="utf-8"))
    return list(doc["findings"])
