"""The conformance kit: tell a model author everything their model gets wrong about the protocol."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from phm_audit._checks import as_scores
from phm_audit.exceptions import PhmInputError
from phm_audit.models._protocol import MODEL_KINDS
from phm_audit.models._validation import columns_of_role, format_list

__all__ = ["check_risk_model"]

_ATTRIBUTES = (("name", str), ("kind", str), ("target", str), ("features", list))


def _call(problems: list[str], what: str, func: Callable[[], Any]) -> tuple[bool, Any]:
    try:
        return True, func()
    except Exception as exc:  # a conformance kit reports a model's failure; it does not stop at it
        text = str(exc).strip().splitlines()
        problems.append(f"{what} raised {type(exc).__name__}" + (f": {text[0]}" if text else ""))
        return False, None


def _shuffled(cohort: pd.DataFrame, columns: list[str], seed: int = 0) -> pd.DataFrame:
    out = cohort.copy()
    perm = np.random.default_rng(seed).permutation(len(cohort))
    for c in columns:
        out[c] = cohort[c].iloc[perm].set_axis(cohort.index)  # keeps the dtype (categories, bool)
    return out


def _reads(model: Any, cohort: pd.DataFrame, reference: np.ndarray, columns: list[str]) -> list[str]:
    """The columns among ``columns`` whose shuffling changes the scores (one pass, then per column)."""
    if not columns or _same(model, _shuffled(cohort, columns), reference):
        return []
    return [c for c in columns if not _same(model, _shuffled(cohort, [c]), reference)]


def _same(model: Any, cohort: pd.DataFrame, reference: np.ndarray) -> bool:
    try:
        scores = np.asarray(model.score(cohort), dtype=np.float64)
    except Exception:  # scoring fails without the column's real values: it reads it
        return False
    return scores.shape == reference.shape and bool(np.array_equal(scores, reference, equal_nan=True))


def _check_attributes(model: Any) -> list[str]:
    problems = []
    for attr, typ in _ATTRIBUTES:
        if not hasattr(model, attr):
            problems.append(f"missing attribute '{attr}' (a {typ.__name__})")
            continue
        value = getattr(model, attr)
        if not isinstance(value, typ):
            problems.append(f"attribute '{attr}' is a {type(value).__name__}; it must be a {typ.__name__}")
        elif typ is str and not value:
            problems.append(f"attribute '{attr}' is empty")
    kind = getattr(model, "kind", None)
    if isinstance(kind, str) and kind not in MODEL_KINDS:
        problems.append(f"kind '{kind}' is not one of {', '.join(MODEL_KINDS)}")
    features = getattr(model, "features", None)
    if isinstance(features, list) and not all(isinstance(f, str) for f in features):
        problems.append("attribute 'features' must hold column names (str) only")
    for method in ("fit", "score"):
        if not callable(getattr(model, method, None)):
            problems.append(f"missing method '{method}(cohort)'")
    return problems


def _check_score_array(scores: Any, n: int, what: str) -> list[str]:
    if not isinstance(scores, np.ndarray):
        return [f"{what} returned a {type(scores).__name__}; it must return a numpy array"]
    problems = []
    if scores.dtype != np.float64:
        problems.append(f"{what} returned dtype {scores.dtype}; it must return float64")
    try:  # shape, length, numbers, finite: the check every model's scores pass (the first problem found)
        as_scores(scores, n, what)
    except PhmInputError as error:
        problems.insert(0, str(error))
    return problems


def _check_consistency(
    model: Any, data: pd.DataFrame, reference: np.ndarray, declared: list[str], kind: object
) -> list[str]:
    """Row order, hidden inputs and refitting: checks that compare deterministic scores."""
    problems: list[str] = []
    ok, reversed_scores = _call(problems, "score(reversed cohort)", lambda: model.score(data.iloc[::-1]))
    if ok and not np.array_equal(np.asarray(reversed_scores, dtype=np.float64)[::-1], reference, equal_nan=True):
        problems.append("scores do not follow the rows: scoring the cohort in reverse order did not reverse the scores")
    role_of = {c: "label" for c in columns_of_role(data, "label")} | {
        c: "truth" for c in columns_of_role(data, "truth")
    }
    ids = set(columns_of_role(data, "id"))
    undeclared = [c for c in data.columns if c not in declared and c not in ids]
    read_truth = _reads(model, data, reference, [c for c in undeclared if role_of.get(c) == "truth"])
    if read_truth:
        problems.append(
            f"score reads ground-truth column(s) {format_list(read_truth)}"
            + (" that are not in features" if kind == "judgement" else "; only kind 'judgement' may read ground truth")
        )
    read_labels = _reads(model, data, reference, [c for c in undeclared if role_of.get(c) == "label"])
    if read_labels:
        problems.append(f"score reads outcome-year label column(s) {format_list(read_labels)}, which no model may read")
    read_other = _reads(model, data, reference, [c for c in undeclared if c not in role_of])
    if read_other:
        problems.append(f"score reads column(s) {format_list(read_other)} that are not declared in features")
    ok, _ = _call(problems, "refitting", lambda: model.fit(data))
    if ok:
        ok, refit = _call(problems, "score(cohort) after refitting", lambda: model.score(data))
        if ok and not np.array_equal(np.asarray(refit, dtype=np.float64), reference, equal_nan=True):
            problems.append("fit is not deterministic: refitting on the same people changed the scores")
    return problems


def check_risk_model(model: Any, cohort: pd.DataFrame | None = None) -> list[str]:
    """Check that ``model`` satisfies the :class:`RiskModel` protocol; return every problem found.

    The kit checks, and reports all at once:

    - the attributes ``name``, ``kind`` (one of :data:`MODEL_KINDS`), ``target``, ``features`` (a
      list of column names) and the methods ``fit`` and ``score``;
    - ``features`` are columns of the cohort, no outcome-year ``label`` column, and no ground-truth
      ``truth`` column unless the kind is ``judgement``;
    - ``fit(cohort)`` returns the model itself;
    - ``score(cohort)`` returns a 1-D float64 numpy array, one finite value per row, not all equal;
    - scores are deterministic (same input, same bytes; refitting gives the same scores) and follow
      the rows (reversing the rows reverses the scores);
    - scoring reads only declared features and ids: shuffling ground-truth, label or other undeclared
      columns must not change the scores;
    - ``fit`` and ``score`` leave the cohort passed in unchanged.

    Parameters
    ----------
    model : object
        The model to check, new and unfitted (it is fitted here).
    cohort : pandas.DataFrame, optional
        People to fit and score; default 3,000 people generated from the ``england`` scenario
        (seed 0). A model of precomputed scores needs the cohort it was computed for.

    Returns
    -------
    list of str
        One sentence per problem; empty when the model conforms.

    Examples
    --------
    >>> from phm_audit.models import check_risk_model, get_model
    >>> check_risk_model(get_model("prior_cost"))
    []
    >>> class Broken:
    ...     name, kind, target, features = "broken", "magic", "cost_next", ["cost_prior"]
    ...     def fit(self, cohort):
    ...         return None
    ...     def score(self, cohort):
    ...         return cohort["cost_prior"].to_numpy()
    >>> for problem in check_risk_model(Broken()):
    ...     print(problem)
    kind 'magic' is not one of actuarial, clinical, rule, judgement, supplied
    fit(cohort) returned NoneType; it must return the model itself (self)
    score(cohort) returned dtype float32; it must return float64
    """
    problems = _check_attributes(model)
    if not (callable(getattr(model, "fit", None)) and callable(getattr(model, "score", None))):
        return problems
    if cohort is None:
        from phm_audit.synth import generate

        cohort = generate("england", 3000, seed=0)
    data = cohort.copy(deep=True)
    pristine = cohort.copy(deep=True)
    n = len(data)
    kind = getattr(model, "kind", None)
    features = getattr(model, "features", None)
    declared = [f for f in features if isinstance(f, str)] if isinstance(features, list) else []
    missing = [f for f in declared if f not in data.columns]
    if missing:
        problems.append(f"features not in the cohort: {format_list(missing)}")
    labels = [f for f in declared if f in set(columns_of_role(data, "label"))]
    if labels:
        problems.append(
            f"features include outcome-year label column(s) {format_list(labels)}; a model may not read them"
        )
    truth = [f for f in declared if f in set(columns_of_role(data, "truth"))]
    if truth and kind != "judgement":
        problems.append(
            f"features include ground-truth column(s) {format_list(truth)} while kind is '{kind}'; "
            "only kind 'judgement' may read ground truth"
        )

    ok, fitted = _call(problems, "fit(cohort)", lambda: model.fit(data))
    if not ok:
        return problems
    if fitted is not model:
        problems.append(f"fit(cohort) returned {type(fitted).__name__}; it must return the model itself (self)")
    ok, scores = _call(problems, "score(cohort)", lambda: model.score(data))
    if not ok:
        return problems
    shape_problems = _check_score_array(scores, n, "score(cohort)")
    problems += shape_problems
    if (
        not isinstance(scores, np.ndarray)
        or scores.ndim != 1
        or scores.shape[0] != n
        or scores.dtype.kind not in "biuf"
    ):
        return problems
    reference = scores.astype(np.float64)
    if n > 1 and np.isfinite(reference).all() and reference.min() == reference.max():
        problems.append("score(cohort) gave every row the same score; a risk score must rank people")

    ok, again = _call(problems, "a second score(cohort)", lambda: model.score(data))
    if ok and not (isinstance(again, np.ndarray) and again.tobytes() == scores.tobytes()):
        problems.append(
            "score(cohort) is not deterministic: two calls on the same cohort gave different scores "
            "(the checks of row order, hidden inputs and refitting need deterministic scores and were skipped)"
        )
    elif ok:
        problems += _check_consistency(model, data, reference, declared, kind)
    if not data.equals(pristine):
        changed = [c for c in pristine.columns if c not in data.columns or not data[c].equals(pristine[c])]
        extra = [c for c in data.columns if c not in pristine.columns]
        problems.append(f"fit or score modified the cohort passed in (columns {format_list(changed + extra)})")
    return problems
