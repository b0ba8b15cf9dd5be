"""A model file a user brings: a scikit-learn estimator or pipeline saved with skops (only trusted types
are built) or with pickle (refused unless ``allow_pickle``: loading a pickle runs code)."""

from __future__ import annotations

import warnings
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from phm_audit.exceptions import PhmInputError, PhmWarning, UntrustedModelError, closest
from phm_audit.models._supplied_base import SuppliedRiskModel, exit_text, first_line
from phm_audit.models._validation import check_no_outcomes, columns_of_role, format_list

__all__ = [
    "PICKLE_SUFFIXES",
    "SKOPS_SUFFIXES",
    "EstimatorRiskModel",
    "load_model_file",
    "load_pickle_model",
    "load_skops_model",
    "parse_feature_map",
]

SKOPS_SUFFIXES = (".skops",)
PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib")


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


class EstimatorRiskModel(SuppliedRiskModel):
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

    def __init__(
        self,
        estimator: Any,
        *,
        name: str,
        feature_map: Mapping[str, str] | None = None,
        target: str = "unknown",
    ) -> None:
        self.estimator = estimator
        self.feature_map = dict(feature_map or {})
        names = _feature_names(estimator, name)
        super().__init__(name=name, target=target, features=[self.feature_map.get(f, f) for f in names])

    def _repr_extra(self) -> str:
        return f", estimator={type(self.estimator).__name__}"

    def _check(self, cohort: pd.DataFrame) -> None:
        names = _feature_names(self.estimator, self.name)
        missing = [(n, c) for n, c in zip(names, self.features, strict=True) if c not in cohort.columns]
        if missing:
            shown = [n if n == c else f"{n} (mapped to {c})" for n, c in missing]
            outcomes = set(columns_of_role(cohort, "label", "truth"))
            hint = closest(missing[0][1], [str(c) for c in cohort.columns if c not in outcomes])
            raise PhmInputError(
                f"{self.who} expects {len(missing)} feature(s) the cohort does not have: "
                f"{format_list(shown)}{hint}; map each to a cohort column with --feature-map NAME=COLUMN "
                "(feature_map={'NAME': 'COLUMN'} in Python)"
            )
        check_no_outcomes(self.who, self.features, cohort, allow_truth=False)
        unused = sorted(set(self.feature_map) - set(names))
        if unused:
            raise PhmInputError(
                f"--feature-map names {format_list(unused)}, which {self.who} does not use"
                f"{closest(unused[0], names)}; its features are {format_list(names)}"
            )

    def _raw_scores(self, cohort: pd.DataFrame) -> Any:
        """``predict_proba[:, 1]`` of a binary classifier, otherwise ``predict``."""
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
                        f"{self.who} is a classifier with {len(classes)} classes; phm-audit scores binary "
                        "classifiers (probability of the second class) and regressors"
                    )
                raw = np.asarray(est.predict_proba(X))[:, 1]
            else:
                raw = est.predict(X)
        except PhmInputError:
            raise
        except SystemExit as exc:  # the user's code tried to end phm-audit: a bad model, not a finished run
            raise PhmInputError(f"{self.who} {exit_text(exc)}") from None
        except Exception as exc:  # the user's estimator failed: say so in one line
            raise PhmInputError(f"{self.who} failed to score the cohort: {first_line(exc)}") from None
        return raw


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
        raise PhmInputError(f"cannot read {p} as a skops model: {first_line(exc)}") from None
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
        raise PhmInputError(f"cannot load {p} as a skops model: {first_line(exc)}") from None
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
    feature_map, name, target
        As for :func:`load_skops_model`.

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
        raise PhmInputError(f"cannot load {p} as a pickled model: {first_line(exc)}") from None
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
