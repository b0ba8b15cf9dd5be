"""Attributions of a model's score: the first SHAP explainer that applies and reproduces the score.

The order (exact tree, linear, single-column or exactly linear rule, then the model-agnostic
permutation explainer) and what each explains are described in :mod:`phm_audit.audit._explain`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

from phm_audit.audit._explain_codec import FeatureCodec
from phm_audit.exceptions import PhmInputError, PhmWarning

__all__ = ["EXACT_TOLERANCE", "ExplainerOutput", "attribute", "import_shap"]

#: Exact explainers must reproduce the score to this tolerance, relative to ``max(1, max |score|)``.
EXACT_TOLERANCE = 1e-6


def import_shap() -> ModuleType:
    """Import shap, silencing the matplotlib deprecation notices its plotting module emits on import."""
    try:
        with warnings.catch_warnings():
            # shap 0.51's plots/colors calls Colormap.set_bad/set_over/set_under, which matplotlib marks as
            # pending deprecation; shap's plotting is not used here
            warnings.filterwarnings("ignore", message=r"The set_(bad|over|under) function", category=Warning)
            import shap
    except ImportError as exc:  # pragma: no cover - the dev environment has shap
        raise ImportError("explanations need shap: pip install 'phm-audit[explain]'") from exc
    return shap


@dataclass(frozen=True)
class ExplainerOutput:
    """What an explainer found: per-person attributions in score units, and how it got them."""

    values: np.ndarray  # (n, K) in score units
    base: float
    names: list[str]
    explainer: str
    quantity: str
    exact: bool
    background_size: int | None  # None: no background was used
    error: float  # max |base + sum - score|


def _additivity(values: np.ndarray, base: float, score: np.ndarray) -> float:
    return float(np.max(np.abs(base + values.sum(axis=1) - score))) if score.size else 0.0


def _tolerance(score: np.ndarray) -> float:
    return EXACT_TOLERANCE * max(1.0, float(np.max(np.abs(score))) if score.size else 1.0)


def _as_2d(values: Any, expected_value: Any) -> tuple[np.ndarray, float]:
    """shap's output for one output of interest: (n, K) values and a scalar base value."""
    if isinstance(values, list):
        values, expected_value = values[-1], np.ravel(expected_value)[-1]
    arr = np.asarray(values, dtype=np.float64)
    base = np.ravel(np.asarray(expected_value, dtype=np.float64))
    if arr.ndim == 3:
        arr = arr[:, :, -1]
        base = base[-1:]
    return arr, float(base[-1])


class _NotExact(Exception):
    """An exact explainer does not apply; the message says why (internal control flow)."""


def _find_estimator(model: Any) -> Any | None:
    """The fitted scikit-learn estimator inside a model, if it exposes one."""

    def fitted(obj: Any) -> bool:
        return obj is not None and hasattr(obj, "predict") and hasattr(obj, "n_features_in_")

    for name in ("estimator_", "model_", "pipeline_", "learner_", "estimator"):
        obj = getattr(model, name, None)
        if fitted(obj):
            return obj
    found = [v for v in getattr(model, "__dict__", {}).values() if fitted(v)]
    if len(found) == 1:
        return found[0]
    return model if fitted(model) else None


def _unwrap(
    estimator: Any, x_frame: pd.DataFrame, features: list[str]
) -> tuple[Any, Callable[[pd.DataFrame], np.ndarray] | None]:
    """The final estimator of a pipeline and the transform that feeds it, when it keeps the columns one to one."""
    from sklearn.pipeline import Pipeline

    if not isinstance(estimator, Pipeline) or len(estimator.steps) < 2:
        return estimator, None
    pre = estimator[:-1]
    # the pipeline knows its inputs by the names it was fitted with (a supplied model may map them to columns)
    inputs = [str(n) for n in getattr(estimator, "feature_names_in_", features)]
    if len(inputs) != len(features):
        raise _NotExact("its pipeline reads other columns than the model lists")

    def transform(frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(pre.transform(frame.set_axis(inputs, axis=1)), dtype=np.float64)

    names = None
    if hasattr(pre, "get_feature_names_out"):
        try:
            names = [str(n).split("__")[-1] for n in pre.get_feature_names_out()]
        except (AttributeError, ValueError, TypeError):
            names = None
    out = transform(x_frame.iloc[:2])
    if out.ndim != 2 or out.shape[1] != len(features) or (names is not None and names != inputs):
        raise _NotExact(
            "its pipeline transforms the features into other columns, so attributions would not map to them"
        )
    return estimator[-1], transform


def _tree_or_linear(
    model: Any,
    sample: pd.DataFrame,
    background: pd.DataFrame,
    codec: FeatureCodec,
    score: np.ndarray,
) -> ExplainerOutput:
    shap = import_shap()
    from sklearn.base import is_classifier

    estimator = _find_estimator(model)
    if estimator is None:
        raise _NotExact("it exposes no fitted scikit-learn estimator")
    design = getattr(model, "design_matrix", None)
    if callable(design):
        x_s, x_b = design(sample), design(background)
        names = list(x_s.columns) if isinstance(x_s, pd.DataFrame) else list(codec.features)
        x_s, x_b = np.asarray(x_s, dtype=np.float64), np.asarray(x_b, dtype=np.float64)
    else:
        frame_s, frame_b = sample[codec.features], background[codec.features]
        estimator, transform = _unwrap(estimator, frame_s, codec.features)
        if transform is None:
            x_s, x_b = codec.encode(sample), codec.encode(background)
        else:
            x_s, x_b = transform(frame_s), transform(frame_b)
        names = list(codec.features)
    if x_s.shape[1] != getattr(estimator, "n_features_in_", x_s.shape[1]):
        raise _NotExact(
            f"its estimator reads {estimator.n_features_in_} columns but the model lists {x_s.shape[1]} features"
        )
    classifier = is_classifier(estimator)
    if hasattr(estimator, "coef_") and hasattr(estimator, "intercept_"):
        masker = shap.maskers.Independent(x_b, max_samples=x_b.shape[0])
        explainer = shap.LinearExplainer(estimator, masker)
        values, base = _as_2d(explainer.shap_values(x_s), explainer.expected_value)
        name = "shap.LinearExplainer (exact, interventional)"
        quantity = "the linear predictor (log-odds for a logistic model)" if classifier else "the linear predictor"
        used_bg: int | None = x_b.shape[0]
    else:
        try:
            if classifier:
                if len(getattr(estimator, "classes_", [])) != 2:
                    raise _NotExact("TreeExplainer explains probabilities of binary classifiers only")
                explainer = shap.TreeExplainer(
                    estimator, data=x_b, feature_perturbation="interventional", model_output="probability"
                )
                name = "shap.TreeExplainer (exact, interventional, model_output='probability')"
                quantity = "the predicted probability of the positive class"
                used_bg = x_b.shape[0]
            else:
                explainer = shap.TreeExplainer(estimator, feature_perturbation="tree_path_dependent")
                name = "shap.TreeExplainer (exact, tree_path_dependent)"
                quantity = "the raw output of the trees (the prediction, for a squared-error loss)"
                used_bg = None
            values, base = _as_2d(explainer.shap_values(x_s, check_additivity=False), explainer.expected_value)
        except _NotExact:
            raise
        except Exception as exc:  # shap raises several types for a model it cannot parse
            raise _NotExact(f"shap's TreeExplainer cannot read it ({type(exc).__name__}: {exc})") from exc
    error = _additivity(values, base, score)
    if error > _tolerance(score):
        raise _NotExact(
            f"{name} explains {quantity}, which differs from the model's score by up to {error:.3g} "
            "(the score is a transform of it)"
        )
    return ExplainerOutput(values, base, names, name, quantity, True, used_bg, error)


def _rule(
    sample: pd.DataFrame, background: pd.DataFrame, codec: FeatureCodec, score: np.ndarray, score_bg: np.ndarray
) -> ExplainerOutput:
    shap = import_shap()
    x_s, x_b = codec.encode(sample), codec.encode(background)
    k = x_s.shape[1]
    if k == 1:
        base = float(score_bg.mean())
        values = (score - base)[:, None]
        return ExplainerOutput(
            values,
            base,
            list(codec.features),
            "single-column rule (exact: the score minus its mean over the background, on its one column)",
            "the score",
            True,
            x_b.shape[0],
            _additivity(values, base, score),
        )
    if not (np.isfinite(x_s).all() and np.isfinite(x_b).all()):
        raise _NotExact("its features have missing values")
    design = np.column_stack([np.ones(x_s.shape[0]), x_s])
    coef, *_ = np.linalg.lstsq(design, score, rcond=None)
    if np.max(np.abs(design @ coef - score)) > _tolerance(score):
        raise _NotExact("it is neither a tree model, nor linear, nor a single-column rule")
    masker = shap.maskers.Independent(x_b, max_samples=x_b.shape[0])
    explainer = shap.LinearExplainer((coef[1:], coef[0]), masker)
    values, base = _as_2d(explainer.shap_values(x_s), explainer.expected_value)
    error = _additivity(values, base, score)
    if error > _tolerance(score):
        raise _NotExact("the linear fit to the rule is not exact")
    return ExplainerOutput(
        values,
        base,
        list(codec.features),
        "shap.LinearExplainer on the rule's exact linear coefficients (exact, interventional)",
        "the score",
        True,
        x_b.shape[0],
        error,
    )


def _agnostic(
    model: Any,
    sample: pd.DataFrame,
    background: pd.DataFrame,
    codec: FeatureCodec,
    score: np.ndarray,
    *,
    n_permutations: int,
    seed: int,
) -> ExplainerOutput:
    shap = import_shap()
    x_s, x_b = codec.encode(sample), codec.encode(background)

    def f(matrix: np.ndarray) -> np.ndarray:
        return np.asarray(model.score(codec.decode(np.atleast_2d(matrix))), dtype=np.float64).ravel()

    k = x_s.shape[1]
    masker = shap.maskers.Independent(x_b, max_samples=x_b.shape[0])
    state = np.random.get_state()  # noqa: NPY002 - shap's Permutation explainer reseeds numpy's global generator
    try:
        explainer = shap.explainers.Permutation(f, masker, seed=seed)
        explanation = explainer(x_s, max_evals=n_permutations * (2 * k + 1), silent=True)
    finally:
        np.random.set_state(state)  # noqa: NPY002 - restore what shap changed
    values = np.asarray(explanation.values, dtype=np.float64).reshape(x_s.shape[0], k)
    base_values = np.ravel(np.asarray(explanation.base_values, dtype=np.float64))
    base = float(base_values.mean())
    return ExplainerOutput(
        values,
        base,
        list(codec.features),
        f"shap.explainers.Permutation (model-agnostic, {n_permutations} antithetic permutation(s); additive, "
        "exact up to pairwise interactions)",
        "the score",
        False,
        x_b.shape[0],
        _additivity(values, base, score),
    )


def _reads_only_features(model: Any, sample: pd.DataFrame, codec: FeatureCodec, score: np.ndarray) -> str:
    """``""`` when the model's score is reproduced from the columns it lists alone, otherwise why not."""
    try:
        again = np.asarray(model.score(codec.decode(codec.encode(sample))), dtype=np.float64).ravel()
    except (PhmInputError, KeyError, ValueError, TypeError) as exc:
        return f"it cannot be scored from the columns it lists as features alone ({exc})"
    if again.shape != score.shape or np.max(np.abs(again - score)) > _tolerance(score):
        return "its score changes when it sees only the columns it lists as features, so it reads others"
    return ""


def attribute(
    model: Any,
    sample: pd.DataFrame,
    background: pd.DataFrame,
    codec: FeatureCodec,
    *,
    n_permutations: int,
    seed: int,
    notes: list[str],
) -> tuple[ExplainerOutput | None, np.ndarray, str]:
    """Attributions by the first explainer that applies (None and the reason if none does), and the score."""
    name = str(model.name)
    score = np.asarray(model.score(sample), dtype=np.float64).ravel()
    if score.size != len(sample) or not np.isfinite(score).all():
        raise PhmInputError(f"model '{name}' must return one finite score per person to be explained")
    reasons: list[str] = []
    try:
        return _tree_or_linear(model, sample, background, codec, score), score, ""
    except _NotExact as exc:
        reasons.append(str(exc))
    # the explainers below see the model only through its score, so it must depend on its features alone
    why_not = _reads_only_features(model, sample, codec, score)
    if why_not:
        return None, score, why_not
    score_bg = np.asarray(model.score(background), dtype=np.float64).ravel()
    try:
        return _rule(sample, background, codec, score, score_bg), score, ""
    except _NotExact as exc:
        reasons.append(str(exc))
    why = "; ".join(dict.fromkeys(reasons))
    out = _agnostic(model, sample, background, codec, score, n_permutations=n_permutations, seed=seed)
    message = (
        f"{name}: no exact SHAP explainer applies ({why}); explained with the model-agnostic "
        f"{out.explainer} on {len(sample):,} people against a background of {len(background):,}"
    )
    warnings.warn(message, PhmWarning, stacklevel=3)
    notes.append(message)
    return out, score, ""
