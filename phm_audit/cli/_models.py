"""``phm-audit models | score``: list the built-in models; score a cohort with any model."""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from phm_audit._argtypes import whole_number
from phm_audit._checks import as_scores
from phm_audit._io import _check_parent, _format, write_table
from phm_audit.exceptions import PhmInputError
from phm_audit.models._registry import describe, get_model, is_learner, list_models
from phm_audit.models._validation import format_list, patient_ids

__all__ = [
    "SUPPLIED_SOURCES",
    "add_supplied_arguments",
    "check_supplied_flags",
    "load_supplied_models",
    "printed_warnings",
    "register",
    "supplied_paths",
]

#: The options that bring a model of one's own, as the parser stores them (``--model-file`` -> ``model_file``).
SUPPLIED_SOURCES = ("--model-file", "--scores", "--model-callable")

_SCORE_HELP = """\
Score a cohort with one model and write patient_id,score (CSV or Parquet), so that any
model's scores can be inspected, shared or audited with 'phm-audit audit --table'.

Which people are scored:
  --model with a learner (actuarial_cost, actuarial_avoidable_cost, clinical_need,
      emergency_admission) and no --train-cohort: the cohort is split by a seeded hash of patient_id
      (--seed, --train-fraction); the learner is fitted on the training part and only the other part is
      scored and written, so no one is scored by a model that saw their outcome.
  --model with a learner and --train-cohort FILE: fitted on FILE, every person of --cohort is scored
      (refused if FILE holds the same people: same patient_id and same scenario and seed).
  rules, clinician_judgement and supplied models (--model-file, --scores, --model-callable) learn
  nothing from outcomes: every person of --cohort is scored.
"""


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number between 0 and 1; got '{text}'") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (exclusive); got {value}")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "models",
        help="list the built-in risk models (kind, target, features)",
        description="List the built-in risk models, one line each; name one to see it in full.",
    )
    p.add_argument("name", nargs="?", help="show one model in full")
    p.set_defaults(func=_models)

    p = sub.add_parser(
        "score",
        help="score a cohort with a built-in or supplied model and write patient_id,score",
        description=_SCORE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--cohort", required=True, help="cohort file (.parquet or .csv) from 'phm-audit generate'")
    which = p.add_argument_group("the model (exactly one)").add_mutually_exclusive_group(required=True)
    which.add_argument("--model", metavar="NAME", help="a built-in model ('phm-audit models' lists them)")
    sup = p.add_argument_group("supplied models")
    add_supplied_arguments(which, sup, repeatable=False)
    opts = p.add_argument_group("built-in models")
    opts.add_argument(
        "--label",
        help="train a learner on this label instead of its own: cost_next, avoidable_cost_next, "
        "n_conditions_next or emergency_admission_next",
    )
    opts.add_argument("--train-cohort", metavar="FILE", help="fit a learner on these people and score all of --cohort")
    opts.add_argument("--seed", type=whole_number, help="seed of the train/audit split (default: 0)")
    opts.add_argument("--train-fraction", type=_fraction, help="share of --cohort used for training (default: 0.5)")
    p.add_argument("--out", required=True, help="output file, .csv or .parquet (patient_id,score)")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors and warnings")
    p.set_defaults(func=_score)


def add_supplied_arguments(
    sources: argparse._ActionsContainer, options: argparse._ActionsContainer, *, repeatable: bool
) -> None:
    """Add the options that bring a model of one's own, shared by ``phm-audit score`` and ``phm-audit audit``.

    Parameters
    ----------
    sources : argparse container
        Gets ``--model-file``, ``--scores`` and ``--model-callable`` (a mutually exclusive group for
        ``score``, which scores with one model; an argument group for ``audit``).
    options : argparse container
        Gets ``--trust``, ``--allow-pickle``, ``--feature-map`` and ``--score-column``.
    repeatable : bool
        Each source may be given several times (stored as lists).
    """
    more = " (repeatable)" if repeatable else ""
    action = "append" if repeatable else "store"
    sources.add_argument(
        "--model-file",
        action=action,
        metavar="FILE",
        help=f"a fitted scikit-learn estimator or pipeline: .skops (or a pickle){more}",
    )
    sources.add_argument(
        "--scores", action=action, metavar="FILE", help=f"a table of precomputed scores keyed by patient_id{more}"
    )
    sources.add_argument(
        "--model-callable",
        action=action,
        metavar="MODULE:FUNCTION",
        help=f"a Python function taking the cohort, returning scores{more}",
    )
    options.add_argument(
        "--trust", action="append", metavar="TYPE", default=[], help="trust a type a .skops file needs (repeatable)"
    )
    options.add_argument(
        "--allow-pickle",
        action="store_true",
        help="load a .pkl/.pickle/.joblib file; this runs code from the file, so only for files you trust",
    )
    options.add_argument(
        "--feature-map",
        action="append",
        metavar="NAME=COLUMN",
        default=[],
        help="the model's feature NAME is the cohort's COLUMN (repeatable)",
    )
    options.add_argument(
        "--score-column",
        metavar="COL",
        help="score column of --scores (default: 'score', or the only column besides patient_id)"
        + ("; the same for every --scores table" if repeatable else ""),
    )


def _listed(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def supplied_paths(args: argparse.Namespace) -> list[tuple[str, str]]:
    """The ``(option, path)`` of every supplied model file and scores table, in the order they are loaded.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed by a parser that has :func:`add_supplied_arguments`.

    Returns
    -------
    list of (str, str)
    """
    return [("--model-file", f) for f in _listed(args.model_file)] + [("--scores", f) for f in _listed(args.scores)]


def _refuse(flags: dict[str, object], source: str) -> None:
    given = [flag for flag, value in flags.items() if value]
    if given:
        raise PhmInputError(f"{', '.join(given)} cannot be used with {source}")


def check_supplied_flags(args: argparse.Namespace, source: str | None = None) -> None:
    """Refuse the options of model files without ``--model-file``, and ``--score-column`` without ``--scores``.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed by a parser that has :func:`add_supplied_arguments`.
    source : str, optional
        The option that brings the model instead (``--model``, ``--scores``...), named in the message;
        default: say which option the refused one needs.

    Raises
    ------
    PhmInputError
        Naming the options that do not apply.
    """
    file_flags = {"--trust": args.trust, "--allow-pickle": args.allow_pickle, "--feature-map": args.feature_map}
    if not args.model_file:
        if source is not None:
            _refuse(file_flags, source)
        elif any(file_flags.values()):
            given = ", ".join(f for f, v in file_flags.items() if v)
            raise PhmInputError(f"{given} apply to --model-file only; give a --model-file or leave out {given}")
    if not args.scores:
        if source is not None:
            _refuse({"--score-column": args.score_column}, source)
        elif args.score_column:
            raise PhmInputError(
                f"--score-column {args.score_column} names a column of --scores; give --scores FILE or leave it out"
            )


def load_supplied_models(
    args: argparse.Namespace, cohort: pd.DataFrame, *, scored: pd.DataFrame | None = None
) -> list[Any]:
    """Load every ``--model-file``, ``--scores`` and ``--model-callable``, checked against the cohort.

    Model files are loaded with ``--trust``, ``--allow-pickle`` and ``--feature-map`` (with several
    model files, each gets the ``--feature-map`` entries that name its features, and an entry no
    model uses is refused) and checked to find their features in the cohort. Tables of scores are
    loaded with ``--score-column`` and checked against ``cohort``.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed by a parser that has :func:`add_supplied_arguments`.
    cohort : pandas.DataFrame
        Every person a table of scores may hold.
    scored : pandas.DataFrame, optional
        The people who will be scored (a part of ``cohort``); each must have a score in every
        table. Default: all of ``cohort``, and a table must hold exactly its people.

    Returns
    -------
    list of RiskModel
        Fitted models of kind ``supplied``: model files, then tables of scores, then callables.

    Raises
    ------
    PhmInputError
        Any file or callable that cannot be loaded or does not fit the cohort; the message names it.
    """
    from phm_audit.models._supplied import (
        EstimatorRiskModel,
        load_callable,
        load_model_file,
        load_scores_table,
        parse_feature_map,
    )

    people = cohort if scored is None else scored
    feature_map = parse_feature_map(args.feature_map)
    files = _listed(args.model_file)
    models: list[Any] = []
    used: set[str] = set()
    for path in files:
        one = len(files) == 1  # a lone model file gets the whole map, and its own check of unused names
        model = load_model_file(
            path, trust=args.trust, allow_pickle=args.allow_pickle, feature_map=feature_map if one else None
        )
        own = {k: v for k, v in feature_map.items() if k in model.features}
        if own and not one:
            model = EstimatorRiskModel(model.estimator, name=model.name, feature_map=own, target=model.target)
        used.update(own)
        models.append(model)
    unused = sorted(set(feature_map) - used)
    if len(files) > 1 and unused:
        raise PhmInputError(
            f"--feature-map names {format_list(unused)}, which none of the {len(files)} --model-file models uses; "
            "NAME must be a feature a model was fitted on"
        )
    models = [m.fit(people) for m in models]  # their features are in the cohort, and no outcome is among them
    for path in _listed(args.scores):
        models.append(load_scores_table(path, cohort, score_column=args.score_column, scored=scored))
    models.extend(load_callable(spec) for spec in _listed(args.model_callable))
    return models


@contextlib.contextmanager
def printed_warnings(command: str) -> Iterator[None]:
    """Print each warning raised inside as one line, ``phm-audit COMMAND: warning: ...``, on standard error.

    Parameters
    ----------
    command : str
        The subcommand named in each line.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            for w in caught:
                print(f"phm-audit {command}: warning: {w.message}", file=sys.stderr)


def _compact(features: list[str]) -> str:
    """``age, sex, rec_* (17), ...``: features on one line."""
    out: list[str] = []
    rec = [f for f in features if f.startswith("rec_")]
    for f in features:
        if f.startswith("rec_"):
            if f == rec[0]:
                out.append(f"rec_* ({len(rec)})" if len(rec) > 1 else f)
            continue
        out.append(f)
    return ", ".join(out)


def _models(args: argparse.Namespace) -> int:
    if args.name:
        model = get_model(args.name)
        print(f"{args.name}: {describe(args.name)}")
        print(f"  kind      {model.kind}")
        print(f"  target    {model.target}")
        print(f"  trained   {'yes, on any label (--label)' if is_learner(args.name) else 'no'}")
        print(f"  features  {', '.join(model.features)}")
        return 0
    rows = []
    for name in list_models():
        model = get_model(name)
        rows.append((name, model.kind, model.target, _compact(model.features)))
    widths = [max(len(r[i]) for r in [("name", "kind", "target", ""), *rows]) for i in range(3)]
    print(f"{'name':{widths[0]}}  {'kind':{widths[1]}}  {'target':{widths[2]}}  features")
    for name, kind, target, feats in rows:
        print(f"{name:{widths[0]}}  {kind:{widths[1]}}  {target:{widths[2]}}  {feats}")
    print("\n'phm-audit models NAME' shows one in full; learners take --label to train on another label.")
    return 0


def _score(args: argparse.Namespace) -> int:
    out = Path(args.out)
    _format(out)
    _check_parent(out)
    start = time.perf_counter()
    with printed_warnings("score"):
        frame, note = _score_frame(args)
    write_table(frame, out)
    if not args.quiet:
        print(f"wrote scores of {len(frame):,} people to {out} in {time.perf_counter() - start:.1f} s; {note}")
    return 0


def _score_frame(args: argparse.Namespace) -> tuple[pd.DataFrame, str]:
    from phm_audit.models._split import check_disjoint, split_cohort
    from phm_audit.models._supplied import parse_feature_map
    from phm_audit.synth._cohort import read_cohort

    builtin_flags = {
        "--label": args.label,
        "--train-cohort": args.train_cohort,
        "--seed": args.seed is not None,
        "--train-fraction": args.train_fraction is not None,
    }
    parse_feature_map(args.feature_map)  # a malformed map fails before reading any file
    if args.model:
        check_supplied_flags(args, "--model")
        model = get_model(args.model, label=args.label)  # unknown names fail before reading any file
        if not is_learner(args.model):
            _refuse(
                {k: v for k, v in builtin_flags.items() if k != "--label"},
                f"--model {args.model} (it is not trained, so there is no training split)",
            )
    else:
        source = next(f for f in SUPPLIED_SOURCES if getattr(args, f[2:].replace("-", "_")))
        _refuse(builtin_flags, f"{source} (only built-in models are trained)")
        check_supplied_flags(args, source)
    cohort = read_cohort(args.cohort)
    patient_ids(cohort, f"cohort {args.cohort}")
    if args.model:
        if is_learner(args.model) and args.train_cohort:
            train = read_cohort(args.train_cohort)
            check_disjoint(train, cohort)
            scored = cohort
            note = f"{model.name} fitted on {len(train):,} people of {args.train_cohort}; every person scored"
        elif is_learner(args.model):
            seed = 0 if args.seed is None else args.seed
            fraction = 0.5 if args.train_fraction is None else args.train_fraction
            train, scored = split_cohort(cohort, train_fraction=fraction, seed=seed)
            note = (
                f"{model.name} fitted on {len(train):,} people and {len(scored):,} others scored: the cohort was split "
                f"by a hash of patient_id (seed {seed}) so that no one is scored by a model trained on them; "
                "give --train-cohort to score everyone"
            )
        else:
            train = scored = cohort
            note = f"{model.name} ({model.kind}) learns nothing from outcomes; every person scored"
        model.fit(train)
    else:
        (model,) = load_supplied_models(args, cohort)
        scored = cohort
        if args.model_file:
            note = f"model file {args.model_file}; every person scored"
        elif args.scores:
            note = f"scores from {args.scores}; every person scored"
        else:
            note = f"callable {args.model_callable}; every person scored"
    scores = as_scores(model.score(scored), len(scored), f"model '{model.name}'")
    frame = pd.DataFrame({"patient_id": scored["patient_id"].to_numpy(), "score": scores})
    return frame, note
