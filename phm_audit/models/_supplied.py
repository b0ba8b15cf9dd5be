"""Models that users bring: a saved scikit-learn estimator, a table of scores, a Python callable.

Nothing a user supplies is trusted by default. A skops file is read as data and only trusted types
are built; a pickle is refused unless the user says ``allow_pickle`` (loading a pickle runs code);
a table of scores is checked person by person against the cohort; a callable's output is checked
for shape and values.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import warnings
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from phm_audit._io import read_table
from phm_audit.exceptions import PhmInputError, PhmWarning, UntrustedModelError, closest
from phm_audit.models._validation import (
    ID_COLUMN,
    as_scores,
    check_no_outcomes,
    columns_of_role,
    format_list,
    patient_ids,
)

__all__ = [
    "CallableRiskModel",
    "EstimatorRiskModel",
    "ScoresTableRiskModel",
    "load_callable",
    "load_model_file",
    "load_pickle_model",
    "load_scores_table",
    "load_skops_model",
    "parse_feature_map",
]

SKOPS_SUFFIXES = (".skops",)
PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _exit_text(exc: SystemExit) -> str:
    """Words for user code that called ``sys.exit``: phm-audit reports it instead of ending silently."""
    return (
        f"called sys.exit({exc.code!r}) instead of returning scores; a model must return one score per person "
        "(raise an exception to report a problem)"
    )


def parse_feature_map(items: Sequence[str] | Mapping[str, str] | None) -> dict[str, str]:
    """Parse ``name=column`` pairs (the model's feature name = the cohort's column).

    Parameters
    ----------
    items : sequence of str or mapping, optional

    Returns
    -------
    dict of str to str

    Examples
    --------
    >>> parse_feature_map(["n_conditions=n_ltc_recorded"])
    {'n_conditions': 'n_ltc_recorded'}
    """
    if items is None:
        return {}
    if isinstance(items, Mapping):
        return {str(k): str(v) for k, v in items.items()}
    out: dict[str, str] = {}
    for item in items:
        name, sep, column = str(item).partition("=")
        if not sep or not name.strip() or not column.strip():
            raise PhmInputError(f"--feature-map '{item}' must be NAME=COLUMN (the model's feature = a cohort column)")
        out[name.strip()] = column.strip()
    return out


class EstimatorRiskModel:
    """A fitted scikit-learn estimator or pipeline, scored on the columns it was fitted on.

    The score is ``predict_proba[:, 1]`` for a binary classifier, otherwise ``predict``.
    Use :func:`load_skops_model` or :func:`load_pickle_model` to make one from a file.

    Parameters
    ----------
    estimator : object
        A fitted estimator with ``feature_names_in_`` (fitted on a DataFrame).
    name : str
        Name in results.
    feature_map : mapping of str to str, optional
        The estimator's feature name -> the cohort column that holds it.
    target : str, default "unknown"
        What the estimator predicts, if known.

    Attributes
    ----------
    features : list of str
        Cohort columns read, in the estimator's order (after ``feature_map``).
    """

    kind = "supplied"

    def __init__(
        self,
        estimator: Any,
        *,
        name: str,
        feature_map: Mapping[str, str] | None = None,
        target: str = "unknown",
    ) -> None:
        self.estimator = estimator
        self.name = name
        self.feature_map = dict(feature_map or {})
        self.target = target
        self.features = [self.feature_map.get(f, f) for f in _feature_names(estimator, name)]

    def __repr__(self) -> str:
        return f"EstimatorRiskModel(name={self.name!r}, estimator={type(self.estimator).__name__})"

    def _check(self, cohort: pd.DataFrame) -> None:
        names = _feature_names(self.estimator, self.name)
        missing = [(n, c) for n, c in zip(names, self.features, strict=True) if c not in cohort.columns]
        if missing:
            shown = [n if n == c else f"{n} (mapped to {c})" for n, c in missing]
            outcomes = set(columns_of_role(cohort, "label", "truth"))
            hint = closest(missing[0][1], [str(c) for c in cohort.columns if c not in outcomes])
            raise PhmInputError(
                f"model '{self.name}' expects {len(missing)} feature(s) the cohort does not have: "
                f"{format_list(shown)}{hint}; map each to a cohort column with --feature-map NAME=COLUMN "
                "(feature_map={'NAME': 'COLUMN'} in Python)"
            )
        check_no_outcomes(f"model '{self.name}'", self.features, cohort, allow_truth=False)
        unused = sorted(set(self.feature_map) - set(names))
        if unused:
            raise PhmInputError(
                f"--feature-map names {format_list(unused)}, which model '{self.name}' does not use"
                f"{closest(unused[0], names)}; its features are {format_list(names)}"
            )

    def fit(self, cohort: pd.DataFrame | None = None) -> EstimatorRiskModel:
        """Check the cohort has the estimator's features and return ``self``; the estimator is already fitted."""
        if cohort is not None:
            self._check(cohort)
        return self

    def score(self, cohort: pd.DataFrame) -> np.ndarray:
        """Score every person of ``cohort``.

        Parameters
        ----------
        cohort : pandas.DataFrame

        Returns
        -------
        ndarray of float64, shape (len(cohort),)
        """
        from sklearn.base import is_classifier

        self._check(cohort)
        names = _feature_names(self.estimator, self.name)
        X = cohort[self.features]
        X = X.set_axis(names, axis=1)
        est = self.estimator
        try:
            if is_classifier(est) and hasattr(est, "predict_proba"):
                classes = getattr(est, "classes_", None)
                if classes is not None and len(classes) != 2:
                    raise PhmInputError(
                        f"model '{self.name}' is a classifier with {len(classes)} classes; phm-audit scores binary "
                        "classifiers (probability of the second class) and regressors"
                    )
                raw = np.asarray(est.predict_proba(X))[:, 1]
            else:
                raw = est.predict(X)
        except PhmInputError:
            raise
        except SystemExit as exc:  # the user's code tried to end phm-audit: a bad model, not a finished run
            raise PhmInputError(f"model '{self.name}' {_exit_text(exc)}") from None
        except Exception as exc:  # the user's estimator failed: say so in one line
            raise PhmInputError(f"model '{self.name}' failed to score the cohort: {_first_line(exc)}") from None
        return as_scores(raw, len(cohort), f"model '{self.name}'")


def _feature_names(estimator: Any, name: str) -> list[str]:
    names = getattr(estimator, "feature_names_in_", None)
    if names is None:
        raise PhmInputError(
            f"model '{name}' was fitted without column names (on an array, or it is not fitted), so phm-audit "
            "cannot tell which cohort columns it needs; fit it on a pandas DataFrame of cohort columns"
        )
    return [str(n) for n in names]


def _as_model(
    obj: Any, path: Path, *, feature_map: Mapping[str, str] | None, name: str | None, target: str
) -> EstimatorRiskModel:
    if not callable(getattr(obj, "predict", None)):
        raise PhmInputError(
            f"{path} holds a {type(obj).__name__}, not a model: it has no predict method; "
            "save a fitted scikit-learn estimator or pipeline"
        )
    return EstimatorRiskModel(obj, name=name or path.stem, feature_map=feature_map, target=target)


def _existing(path: str | Path) -> Path:
    p = Path(path)
    if not p.is_file():
        raise PhmInputError(f"model file {p} does not exist")
    return p


def load_skops_model(
    path: str | Path,
    *,
    trust: Sequence[str] = (),
    feature_map: Mapping[str, str] | Sequence[str] | None = None,
    name: str | None = None,
    target: str = "unknown",
) -> EstimatorRiskModel:
    """Load a scikit-learn estimator or pipeline saved with ``skops.io.dump``, building only trusted types.

    The file is first read as data (``skops.io.get_untrusted_types``): types skops does not trust by
    default (anything outside scikit-learn, NumPy and SciPy's known-safe types) are listed, and the
    file is refused unless every one of them is named in ``trust``.

    Parameters
    ----------
    path : str or Path
        A ``.skops`` file.
    trust : sequence of str, default ()
        Fully qualified type names to trust (``--trust TYPE`` on the command line). Trust a type only
        if you trust the file's author: building it can run its code.
    feature_map : mapping or sequence of "NAME=COLUMN", optional
        The model's feature names -> cohort columns.
    name : str, optional
        Name in results; default the file name without extension.
    target : str, default "unknown"
        What the model predicts, if known.

    Returns
    -------
    EstimatorRiskModel
        A ``RiskModel`` of kind ``supplied``.

    Raises
    ------
    UntrustedModelError
        The file needs types not in ``trust``; the message lists them and the fix.
    PhmInputError
        The file is not a skops file or holds no model.

    Examples
    --------
    >>> import tempfile, pathlib, pandas as pd, skops.io as sio
    >>> from sklearn.linear_model import LinearRegression
    >>> X = pd.DataFrame({"age": [20, 50, 80], "cost_prior": [0.0, 500.0, 3000.0]})
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "m.skops"
    >>> sio.dump(LinearRegression().fit(X, [1.0, 2.0, 3.0]), path)
    >>> load_skops_model(path).features
    ['age', 'cost_prior']
    """
    import skops.io as sio

    p = _existing(path)
    try:
        untrusted = sio.get_untrusted_types(file=p)
    except zipfile.BadZipFile:
        raise PhmInputError(
            f"{p} is not a skops file (not a zip archive); save the model with skops.io.dump(model, path)"
        ) from None
    except KeyError:
        raise PhmInputError(f"{p} is not a skops file (no schema.json inside); save it with skops.io.dump") from None
    except Exception as exc:  # a malformed or hostile file: report it, build nothing
        raise PhmInputError(f"cannot read {p} as a skops model: {_first_line(exc)}") from None
    trusted = set(trust)
    needed = [t for t in untrusted if t not in trusted]
    if needed:
        flags = " ".join(f"--trust {t}" for t in needed)
        raise UntrustedModelError(
            f"model file {p} needs {len(needed)} type(s) that are not trusted: {', '.join(needed)}. "
            f"Building a type can run its code; if you trust the file's author, pass {flags}"
        )
    try:
        obj = sio.load(p, trusted=list(untrusted))
    except Exception as exc:  # skops refuses or fails to build: one line, nothing loaded
        raise PhmInputError(f"cannot load {p} as a skops model: {_first_line(exc)}") from None
    return _as_model(obj, p, feature_map=parse_feature_map(feature_map), name=name, target=target)


def load_pickle_model(
    path: str | Path,
    *,
    allow_pickle: bool = False,
    feature_map: Mapping[str, str] | Sequence[str] | None = None,
    name: str | None = None,
    target: str = "unknown",
) -> EstimatorRiskModel:
    """Load an estimator saved with pickle or joblib — only when ``allow_pickle`` is true.

    Loading a pickle runs whatever code the file contains. It is refused unless the user explicitly
    allows it (``--allow-pickle``), and even then a :class:`PhmWarning` says so. Prefer skops.

    Parameters
    ----------
    path : str or Path
        A ``.pkl``, ``.pickle`` or ``.joblib`` file.
    allow_pickle : bool, default False
        Load the file even though that runs its code.
    feature_map : mapping or sequence of "NAME=COLUMN", optional
        The model's feature names -> cohort columns.
    name : str, optional
        Name in results; default the file name without extension.
    target : str, default "unknown"
        What the model predicts, if known.

    Returns
    -------
    EstimatorRiskModel

    Raises
    ------
    PhmInputError
        ``allow_pickle`` is false, or the file holds no model.

    Warns
    -----
    PhmWarning
        When the file is loaded: loading a pickle runs code.
    """
    p = _existing(path)
    if allow_pickle is not True:
        raise PhmInputError(
            f"refusing to load {p}: loading a pickle or joblib file runs any code it contains. "
            "Save the model with skops instead, or, if you trust who made the file, pass --allow-pickle"
        )
    warnings.warn(
        f"loading {p} with pickle runs code from the file; do this only for files you trust",
        PhmWarning,
        stacklevel=2,
    )
    try:
        if p.suffix.lower() == ".joblib":
            import joblib

            obj = joblib.load(p)
        else:
            import pickle

            with open(p, "rb") as fh:
                obj = pickle.load(fh)  # the user passed allow_pickle and was warned
    except Exception as exc:  # not a pickle, or one that fails to build
        raise PhmInputError(f"cannot load {p} as a pickled model: {_first_line(exc)}") from None
    return _as_model(obj, p, feature_map=parse_feature_map(feature_map), name=name, target=target)


def load_model_file(
    path: str | Path,
    *,
    trust: Sequence[str] = (),
    allow_pickle: bool = False,
    feature_map: Mapping[str, str] | Sequence[str] | None = None,
    name: str | None = None,
    target: str = "unknown",
) -> EstimatorRiskModel:
    """Load a model file by its extension: ``.skops`` with :func:`load_skops_model`, pickles with
    :func:`load_pickle_model`.

    Parameters
    ----------
    path : str or Path
    trust, allow_pickle, feature_map, name, target
        As for the two loaders.

    Returns
    -------
    EstimatorRiskModel
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in SKOPS_SUFFIXES:
        return load_skops_model(p, trust=trust, feature_map=feature_map, name=name, target=target)
    if suffix in PICKLE_SUFFIXES:
        return load_pickle_model(p, allow_pickle=allow_pickle, feature_map=feature_map, name=name, target=target)
    raise PhmInputError(
        f"model file {p} must end in {', '.join(SKOPS_SUFFIXES + PICKLE_SUFFIXES)}; got '{suffix or 'no extension'}'"
        " (for a table of scores use --scores)"
    )


class ScoresTableRiskModel:
    """Precomputed scores keyed by ``patient_id``, for vendors who share scores but not models.

    Use :func:`load_scores_table` to make one; it checks the table against the cohort.

    Parameters
    ----------
    scores : pandas.Series
        Scores indexed by patient id (unique).
    name : str
        Name in results.
    target : str, default "unknown"
        What the scores predict, if known.
    """

    kind = "supplied"

    def __init__(self, scores: pd.Series, *, name: str, target: str = "unknown") -> None:
        self.scores = scores
        self.name = name
        self.target = target
        self.features: list[str] = []

    def __repr__(self) -> str:
        return f"ScoresTableRiskModel(name={self.name!r}, n={len(self.scores)})"

    def fit(self, cohort: pd.DataFrame | None = None) -> ScoresTableRiskModel:
        """Return ``self``: the scores are already computed."""
        return self

    def score(self, cohort: pd.DataFrame) -> np.ndarray:
        """Look up each person's score by ``patient_id``.

        Parameters
        ----------
        cohort : pandas.DataFrame

        Returns
        -------
        ndarray of float64, shape (len(cohort),)

        Raises
        ------
        PhmInputError
            Some people of ``cohort`` have no score.
        """
        ids = _keys(patient_ids(cohort), self.scores.index)
        found = self.scores.reindex(ids)
        missing = found.isna().to_numpy()
        if missing.any():
            example = format_list([str(i) for i in np.asarray(ids)[missing][:5]], limit=5)
            raise PhmInputError(
                f"scores '{self.name}' have no score for {int(missing.sum()):,} of the {len(cohort):,} people "
                f"scored (e.g. patient_id {example})"
            )
        return as_scores(found.to_numpy(np.float64), len(cohort), f"scores '{self.name}'")


def _keys(ids: pd.Series | pd.Index, like: pd.Index) -> pd.Index:
    """Ids comparable with ``like``: integers stay integers, anything else is compared as text."""
    values = pd.Index(ids)
    if values.dtype.kind == "f" and like.dtype.kind in "iu" and bool(np.all(np.mod(values.to_numpy(), 1) == 0)):
        values = values.astype(np.int64)  # a CSV column of ids with a gap reads as float
    if values.dtype.kind in "iu" and like.dtype.kind in "iu":
        return values.astype(np.int64)
    return values.astype(str)


def _read_scores_file(path: str | Path) -> pd.DataFrame:
    p = Path(path)
    if p.suffix.lower() != ".csv" or not p.is_file():
        return read_table(p)
    try:
        # round_trip: a score written by 'phm-audit score' reads back to the same float64, bit for bit
        return pd.read_csv(p, low_memory=False, float_precision="round_trip")
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise PhmInputError(f"cannot read {p} as csv: {_first_line(exc)}") from None


def load_scores_table(
    path: str | Path | pd.DataFrame,
    cohort: pd.DataFrame,
    *,
    id_column: str = ID_COLUMN,
    score_column: str | None = None,
    name: str | None = None,
    target: str = "unknown",
    scored: pd.DataFrame | None = None,
) -> ScoresTableRiskModel:
    """Load a CSV or Parquet table of precomputed scores and check it against ``cohort``.

    Every person of the cohort (or of ``scored``) must have exactly one finite numeric score, and
    every id of the table must be a person of the cohort. All problems are reported at once.

    Parameters
    ----------
    path : str, Path or pandas.DataFrame
        The table (``.csv`` or ``.parquet``), or the table itself.
    cohort : pandas.DataFrame
        The people the scores are for.
    id_column : str, default "patient_id"
        Column of the table holding the person id.
    score_column : str, optional
        Column holding the score; default ``score`` if present, else the only other column.
    name : str, optional
        Name in results; default the file name without extension (``scores`` for a DataFrame).
    target : str, default "unknown"
        What the scores predict, if known.
    scored : pandas.DataFrame, optional
        The people who will be scored, a part of ``cohort`` (for example the audited half of a
        split): each of them must have a score, and the table may also hold other people of the
        cohort. Default: the whole cohort, so the table must hold exactly the cohort's people.

    Returns
    -------
    ScoresTableRiskModel
        A ``RiskModel`` of kind ``supplied``.

    Raises
    ------
    PhmInputError
        Missing, duplicate or unknown ids; empty, non-numeric, NaN or infinite scores; a row count
        different from the cohort's (when ``scored`` is not given). One message lists every problem.

    Examples
    --------
    >>> import pandas as pd
    >>> cohort = pd.DataFrame({"patient_id": [1, 2, 3]})
    >>> table = pd.DataFrame({"patient_id": [3, 1, 2], "score": [0.3, 0.1, 0.2]})
    >>> load_scores_table(table, cohort).score(cohort).tolist()
    [0.1, 0.2, 0.3]
    """
    if isinstance(path, pd.DataFrame):
        table, label = path, name or "scores"
    else:
        table, label = _read_scores_file(path), str(path)
    who = f"scores table {label}"
    columns = [str(c) for c in table.columns]
    if id_column not in table.columns:
        raise PhmInputError(
            f"{who} has no id column '{id_column}'{closest(id_column, columns)}; columns: {format_list(columns)}"
        )
    if score_column is None:
        others = [c for c in columns if c != id_column]
        if "score" in others:
            score_column = "score"
        elif len(others) == 1:
            score_column = others[0]
        else:
            raise PhmInputError(
                f"{who} has {len(others)} columns besides '{id_column}' ({format_list(others) or 'none'}); "
                "name the score column with --score-column (score_column= in Python)"
            )
    elif score_column not in table.columns:
        raise PhmInputError(f"{who} has no column '{score_column}'{closest(score_column, columns)}")
    cohort_ids = patient_ids(cohort)
    problems: list[str] = []
    if scored is None and len(table) != len(cohort):
        problems.append(f"it has {len(table):,} rows for {len(cohort):,} people in the cohort")
    raw_ids = table[id_column]
    empty_ids = raw_ids.isna()
    if empty_ids.any():
        problems.append(f"{int(empty_ids.sum()):,} row(s) have no {id_column}")
    ids = _keys(raw_ids[~empty_ids], pd.Index(cohort_ids))
    wanted = _keys(cohort_ids, ids)
    dup = ids.duplicated()
    if dup.any():
        problems.append(
            f"{int(dup.sum()):,} duplicate id(s) (e.g. {format_list(ids[dup].unique()[:5].tolist(), limit=5)})"
        )
    unknown = ids.unique().difference(wanted)
    if len(unknown):
        problems.append(f"{len(unknown):,} id(s) not in the cohort (e.g. {format_list(unknown[:5].tolist(), limit=5)})")
    if scored is None:
        missing = wanted.difference(ids)
        if len(missing):
            problems.append(
                f"{len(missing):,} person(s) of the cohort have no score "
                f"(e.g. {format_list(missing[:5].tolist(), limit=5)})"
            )
    else:
        needed = _keys(patient_ids(scored, "the people to score"), ids)
        absent = ~needed.isin(ids)
        if absent.any():
            problems.append(
                f"{int(absent.sum()):,} of the {len(needed):,} people to score have no score "
                f"(first missing: patient_id {needed[absent][0]})"
            )
    raw = table[score_column]
    values = pd.to_numeric(raw, errors="coerce")
    non_numeric = values.isna() & raw.notna()
    if non_numeric.any():
        i = int(np.flatnonzero(non_numeric.to_numpy())[0])
        problems.append(f"{int(non_numeric.sum()):,} non-numeric score(s) (first: '{raw.iloc[i]}' at row {i + 1})")
    empty = raw.isna() | (values.isna() & ~non_numeric)
    if empty.any():
        problems.append(
            f"{int(empty.sum()):,} missing or NaN score(s) "
            f"(first at row {int(np.flatnonzero(empty.to_numpy())[0]) + 1})"
        )
    inf = np.isinf(values.to_numpy(np.float64, na_value=np.nan))
    if inf.any():
        problems.append(f"{int(inf.sum()):,} infinite score(s) (first at row {int(np.flatnonzero(inf)[0]) + 1})")
    if problems:
        raise PhmInputError(f"{who}: {'; '.join(problems)}; give one finite numeric score per person of the cohort")
    scores = pd.Series(values.to_numpy(np.float64), index=ids, name=score_column)
    default = "scores" if isinstance(path, pd.DataFrame) else Path(path).stem
    return ScoresTableRiskModel(scores, name=name or default, target=target)


class CallableRiskModel:
    """A Python function ``f(cohort) -> scores``, named ``module:function``.

    The function sees the cohort without its outcome-year ``label`` and ground-truth ``truth``
    columns, so it cannot read outcomes; its result is checked (one finite number per person).

    Parameters
    ----------
    func : callable
        Takes a DataFrame, returns an array-like of scores in its row order.
    name : str
        Name in results (default the ``module:function`` spec).
    target : str, default "unknown"
        What the scores predict, if known.
    """

    kind = "supplied"

    def __init__(self, func: Callable[[pd.DataFrame], Any], *, name: str, target: str = "unknown") -> None:
        self.func = func
        self.name = name
        self.target = target
        self.features: list[str] = []

    def __repr__(self) -> str:
        return f"CallableRiskModel(name={self.name!r})"

    def fit(self, cohort: pd.DataFrame | None = None) -> CallableRiskModel:
        """Return ``self``: the callable is used as it is."""
        return self

    def score(self, cohort: pd.DataFrame) -> np.ndarray:
        """Call the function on the cohort's id, protected and feature columns and check what it returns.

        Parameters
        ----------
        cohort : pandas.DataFrame

        Returns
        -------
        ndarray of float64, shape (len(cohort),)

        Raises
        ------
        PhmInputError
            The function raised, or returned the wrong shape, non-numeric, NaN or infinite values.
        """
        hidden = columns_of_role(cohort, "label", "truth")
        view = cohort.drop(columns=hidden)
        try:
            out = self.func(view)
        except SystemExit as exc:  # the user's function tried to end phm-audit: a bad model, not a finished run
            raise PhmInputError(f"callable '{self.name}' {_exit_text(exc)}") from None
        except Exception as exc:  # the user's function failed: one line naming it
            raise PhmInputError(f"callable '{self.name}' raised {_first_line(exc)}") from None
        return as_scores(out, len(cohort), f"callable '{self.name}'")


@contextlib.contextmanager
def _cwd_on_path() -> Iterator[None]:
    """Let ``phm-audit`` import a module from the current folder, as ``python -m`` would."""
    cwd = os.getcwd()
    added = cwd not in sys.path and "" not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        yield
    finally:
        if added:
            with contextlib.suppress(ValueError):
                sys.path.remove(cwd)


def load_callable(spec: str, *, name: str | None = None, target: str = "unknown") -> CallableRiskModel:
    """Import ``module:function`` and wrap it as a model of kind ``supplied``.

    Importing a module runs its code, as for any Python import; name only modules you trust. The
    current folder is searched too.

    Parameters
    ----------
    spec : str
        ``package.module:function`` (the function may be an attribute path, ``module:Class.method``).
    name : str, optional
        Name in results; default ``spec``.
    target : str, default "unknown"
        What the scores predict, if known.

    Returns
    -------
    CallableRiskModel

    Raises
    ------
    PhmInputError
        A malformed spec, a module that cannot be imported, or a name that is not a callable in it.

    Examples
    --------
    >>> model = load_callable("numpy:zeros_like")
    >>> model.kind
    'supplied'
    """
    module_name, sep, attr = str(spec).partition(":")
    if not sep or not module_name.strip() or not attr.strip():
        raise PhmInputError(f"--model-callable '{spec}' must be MODULE:FUNCTION, for example mymodels:risk")
    module_name, attr = module_name.strip(), attr.strip()
    try:
        with _cwd_on_path():
            module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise PhmInputError(
            f"cannot import module '{module_name}' of '{spec}' ({exc}); put {module_name.split('.')[0]}.py in the "
            "current folder or on PYTHONPATH"
        ) from None
    except SystemExit as exc:
        raise PhmInputError(f"importing module '{module_name}' of '{spec}' {_exit_text(exc)}") from None
    except Exception as exc:  # importing the user's module failed
        raise PhmInputError(f"importing module '{module_name}' of '{spec}' raised {_first_line(exc)}") from None
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            choices = [n for n in dir(obj) if not n.startswith("_")]
            raise PhmInputError(f"'{spec}': {module_name} has no '{attr}'{closest(part, choices)}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise PhmInputError(f"'{spec}' is a {type(obj).__name__}, not a function taking the cohort")
    return CallableRiskModel(obj, name=name or str(spec), target=target)
