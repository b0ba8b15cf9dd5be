"""Why a model scores groups differently (``analysis = explain``): SHAP attributions, the score gap at
equal need split by feature, and how well the model's inputs stand in for protected attributes.

What is explained
-----------------
Attributions are computed on a random sample of the audited people (``sample_size``, reported in
the output). Every attribution explains the model's **score**, on the score's own scale, so that per
person ``base_value + sum(attributions) == score`` (local accuracy), and the gap decomposition adds
up in score units. The explainer is chosen per model, the first that applies and reproduces the
score:

1. a tree ensemble (the built-in HistGradientBoosting learners, or a supplied scikit-learn tree
   model): shap's exact ``TreeExplainer``. Regressors: ``feature_perturbation="tree_path_dependent"``
   (no background; the trees' own training cover is the reference distribution), which explains the
   raw output, equal to the prediction for a squared-error loss. Binary classifiers:
   ``feature_perturbation="interventional"`` with ``model_output="probability"`` against a background
   of ``background_size`` people, which explains the predicted probability (path-dependent explains
   only the log-odds, which would not add up to a probability score);
2. a linear model (``coef_``, ``intercept_``) whose score is its linear predictor: shap's exact
   ``LinearExplainer`` against the background;
3. a model reading one column (the rules ``prior_cost``, ``ltc_count``, ``frailty_index``): the
   attribution is the score minus its mean over the background, all of it on that one column; a
   model whose score is exactly linear in several columns is explained by ``LinearExplainer`` on the
   coefficients recovered by least squares (the fit is checked to be exact). A model whose score
   depends on more than the columns it lists (``clinician_judgement`` adds noise keyed by
   ``patient_id``) is not explained, and the result says why;
4. anything else (a supplied callable, a pipeline shap cannot open, a tree model whose score is a
   transform of its raw output): the model-agnostic ``shap.explainers.Permutation`` on the score
   function, against the background, with a :class:`~phm_audit.exceptions.PhmWarning` and a note.
   It is additive by construction and exact for models with at most pairwise interactions.

The achieved ``max |base + sum(attributions) - score|`` is reported (``additivity_max_error``); an
exact explainer must reach ``1e-6 * max(1, max |score|)`` or the next one is tried.

The gap at equal need
---------------------
For a group ``g`` and the reference group ``r`` of an attribute, within strata ``s`` of need
(percentile bands ``spec.need_strata`` of the need target over the whole audited cohort, as in the
fairness analysis), the score gap at equal need is the direct standardisation to the group's own
need profile::

    gap = sum_s w_s (mean_score[g, s] - mean_score[r, s]),   w_s = n[g, s] / sum_s' n[g, s']

over the strata where both groups have someone in the sample (the others are left out and counted,
``need_strata_excluded``). The need target defaults to the audit's (``need_true_next``, need in the
outcome year). The inputs describe the baseline year, so ``need_target="need_true"`` (baseline need)
separates what the access gap does to the inputs from how need changes between the years: on the
synthetic population, people of the most deprived fifth with a given need next year were sicker the
year before, which raises their recorded use even where access is equal.

Because ``score = base + sum_j phi_j`` for every person, the same weights
split the gap exactly into one part per feature::

    gap_contribution_j = sum_s w_s (mean_phi_j[g, s] - mean_phi_j[r, s])

The per-person residual ``score - base - sum_j phi_j`` of the model-agnostic explainer (and of an
exact one, should it exceed 1e-9 of the score's scale) is carried as the pseudo-feature
``(interaction/remainder)``, so the parts add up to the gap to rounding.

Proxies
-------
``proxy_auroc``: how well one feature alone separates the members of a group from everyone else in
the sample (one versus rest), as the AUROC of the feature read in whichever direction separates
better, ``max(A, 1 - A)``: 0.5 = no information, 1 = the feature identifies the group. Intervals are
the Hanley & McNeil (1982) normal approximation. ``proxy_auroc_all_features``: the same for all the
model's features at once, from out-of-fold predicted probabilities (3-fold stratified
cross-validation) of a small ``HistGradientBoostingClassifier`` predicting the attribute, learned
on at most 20,000 people of the sample. A model that reads the attribute itself is measured on its
other inputs (a note says so).
``share_of_score``: a feature's mean |SHAP| as a share of the sum over features.

Intervals of attributions and gap contributions come from the count bootstrap of
:mod:`phm_audit.audit._bootstrap` over the explained sample (people resampled, weighted means
recomputed; the model is not refitted and attributions are not recomputed, so the intervals show
sampling uncertainty of the audited people, not of the model's training).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

from phm_audit.audit._audit import _default_reference, _need_strata
from phm_audit.audit._bootstrap import cell_table, percentile_interval
from phm_audit.audit._groups import Grouping, check_columns, encode_groups
from phm_audit.audit._result import CURVE_COLUMNS, AuditResult, RowBuilder
from phm_audit.audit._spec import AuditSpec
from phm_audit.audit._stats import safe_div
from phm_audit.exceptions import PhmInputError, PhmTypeError, PhmWarning, closest

__all__ = ["REMAINDER", "Attributions", "attributions", "explain", "explain_rows_for"]

#: Pseudo-feature carrying what an explainer leaves unattributed, so the parts add up to the gap.
REMAINDER = "(interaction/remainder)"
#: Exact explainers must reproduce the score to this tolerance, relative to ``max(1, max |score|)``.
EXACT_TOLERANCE = 1e-6
#: Folds of the cross-validation behind ``proxy_auroc_all_features``.
PROXY_FOLDS = 3
#: People of the sample used to learn ``proxy_auroc_all_features`` (a random subset beyond this).
PROXY_MAX_ROWS = 20_000
ANALYSIS = "explain"


# --------------------------------------------------------------------------------------------------
# shap, imported lazily (an optional extra)


def _shap() -> ModuleType:
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


# --------------------------------------------------------------------------------------------------
# features as a numeric matrix and back


class _Codec:
    """The model's feature columns as a float matrix (bool as 0/1, categories as codes), and back."""

    def __init__(self, frame: pd.DataFrame, features: Sequence[str]) -> None:
        self.features = list(features)
        self.dtypes = {f: frame[f].dtype for f in self.features}
        self.categories: dict[str, pd.Index] = {}
        for f in self.features:
            col = frame[f]
            if isinstance(col.dtype, pd.CategoricalDtype):
                self.categories[f] = col.cat.categories
            elif not (pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)):
                self.categories[f] = pd.Index(sorted(col.dropna().astype(str).unique()))

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        out = np.empty((len(frame), len(self.features)), dtype=np.float64)
        for j, f in enumerate(self.features):
            col = frame[f]
            if f in self.categories:
                codes = pd.Categorical(col.astype(str) if col.dtype == object else col, categories=self.categories[f])
                vals = codes.codes.astype(np.float64)
                vals[vals < 0] = np.nan
                out[:, j] = vals
            else:
                out[:, j] = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        return out

    def decode(self, matrix: np.ndarray) -> pd.DataFrame:
        data: dict[str, Any] = {}
        for j, f in enumerate(self.features):
            v = matrix[:, j]
            dtype = self.dtypes[f]
            if f in self.categories:
                codes = np.where(np.isfinite(v), v, -1).astype(np.int64)
                data[f] = pd.Categorical.from_codes(codes, categories=self.categories[f])
            elif pd.api.types.is_bool_dtype(dtype):
                data[f] = v != 0
            elif pd.api.types.is_integer_dtype(dtype) and np.isfinite(v).all():
                data[f] = np.rint(v).astype(dtype)
            elif isinstance(dtype, np.dtype) and dtype.kind == "f":
                data[f] = v.astype(dtype)  # back to float32 where it was, so the score is computed alike
            else:
                data[f] = v
        return pd.DataFrame(data)


# --------------------------------------------------------------------------------------------------
# explainers


@dataclass(frozen=True)
class _Attributions:
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


class _NotExact(Exception):
    """An exact explainer does not apply; the message says why (internal control flow)."""


def _tree_or_linear(
    model: Any,
    sample: pd.DataFrame,
    background: pd.DataFrame,
    codec: _Codec,
    score: np.ndarray,
) -> _Attributions:
    shap = _shap()
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
    return _Attributions(values, base, names, name, quantity, True, used_bg, error)


def _rule(
    sample: pd.DataFrame, background: pd.DataFrame, codec: _Codec, score: np.ndarray, score_bg: np.ndarray
) -> _Attributions:
    shap = _shap()
    x_s, x_b = codec.encode(sample), codec.encode(background)
    k = x_s.shape[1]
    if k == 1:
        base = float(score_bg.mean())
        values = (score - base)[:, None]
        return _Attributions(
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
    return _Attributions(
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
    codec: _Codec,
    score: np.ndarray,
    *,
    n_permutations: int,
    seed: int,
) -> _Attributions:
    shap = _shap()
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
    return _Attributions(
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


def _reads_only_features(model: Any, sample: pd.DataFrame, codec: _Codec, score: np.ndarray) -> str:
    """``""`` when the model's score is reproduced from the columns it lists alone, otherwise why not."""
    try:
        again = np.asarray(model.score(codec.decode(codec.encode(sample))), dtype=np.float64).ravel()
    except (PhmInputError, KeyError, ValueError, TypeError) as exc:
        return f"it cannot be scored from the columns it lists as features alone ({exc})"
    if again.shape != score.shape or np.max(np.abs(again - score)) > _tolerance(score):
        return "its score changes when it sees only the columns it lists as features, so it reads others"
    return ""


def _attribute(
    model: Any,
    sample: pd.DataFrame,
    background: pd.DataFrame,
    codec: _Codec,
    *,
    n_permutations: int,
    seed: int,
    notes: list[str],
) -> tuple[_Attributions | None, np.ndarray, str]:
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


# --------------------------------------------------------------------------------------------------
# rows


def _interval(reps: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    if reps.shape[0] < 2:
        nan = np.full(reps.shape[1:], np.nan)
        return nan, nan.copy()
    return percentile_interval(reps[1:], level=level)


def _global_rows(
    rows: RowBuilder,
    base: dict[str, Any],
    att: _Attributions,
    score: np.ndarray,
    names: list[str],
    phi: np.ndarray,
    *,
    n_boot: int,
    level: float,
    rng: np.random.Generator,
) -> None:
    n = score.size
    values = np.column_stack([phi, np.abs(phi)])
    table = cell_table(np.zeros(n, dtype=np.int64), 1, values, n_boot=n_boot, rng=rng)
    k = phi.shape[1]
    means = table.sums[:, 0, :] / table.counts[:, 0:1]  # (R, 2K)
    mean_phi, mean_abs = means[:, :k], means[:, k:]
    share = safe_div(mean_abs, mean_abs.sum(axis=1, keepdims=True))
    add: dict[str, Any] = {"attribute": "all", "groups": ["all"], "n": n}
    rows.add(**base, **add, metric="sample_size", value=n)
    if att.background_size is None:
        rows.add(
            **base,
            **add,
            metric="background_size",
            value=math.nan,
            reason="no background: the tree explainer uses the trees' own training cover",
        )
    else:
        rows.add(**base, **add, metric="background_size", value=att.background_size)
    rows.add(**base, **add, metric="base_value", value=att.base)
    rows.add(**base, **add, metric="mean_score", value=float(score.mean()))
    rows.add(**base, **add, metric="additivity_max_error", value=att.error)
    for j, feature in enumerate(names):
        for metric, reps in (("mean_abs_shap", mean_abs), ("mean_shap", mean_phi), ("share_of_score", share)):
            low, high = _interval(reps[:, j : j + 1], level)
            rows.add(**base, **add, feature=feature, metric=metric, value=reps[0, j], ci_low=low[0], ci_high=high[0])


def _group_rows(
    rows: RowBuilder,
    base: dict[str, Any],
    grouping: Grouping,
    codes: np.ndarray,
    strata: np.ndarray | None,
    n_strata: int,
    score: np.ndarray,
    names: list[str],
    phi: np.ndarray,
    *,
    need_target: str,
    min_group_size: int,
    n_boot: int,
    level: float,
    rng: np.random.Generator,
) -> None:
    g_n, ref, labels = grouping.n_groups, grouping.reference, grouping.labels
    k = phi.shape[1]
    s = np.zeros(codes.size, dtype=np.int64) if strata is None else strata
    n_s = 1 if strata is None else n_strata
    values = np.column_stack([score, phi, np.abs(phi)])
    table = cell_table(codes * n_s + s, g_n * n_s, values, n_boot=n_boot, rng=rng)
    counts = table.counts.reshape(-1, g_n, n_s)  # (R, G, S)
    sums = table.sums.reshape(-1, g_n, n_s, 1 + 2 * k)
    n_g = counts.sum(axis=2)  # (R, G)
    sums_g = sums.sum(axis=2)  # (R, G, 1 + 2K)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_g = np.where(n_g[..., None] > 0, sums_g / n_g[..., None], np.nan)
    size = n_g[0]
    small = np.where(size < min_group_size, f"group has fewer than {min_group_size} people in the explained sample", "")
    attr: dict[str, Any] = {"attribute": grouping.attribute, "groups": labels, "n": size}
    for j, feature in enumerate(names):
        for metric, col in (("mean_shap", 1 + j), ("mean_abs_shap", 1 + k + j)):
            reps = mean_g[:, :, col]
            low, high = _interval(reps, level)
            value = np.where(small == "", reps[0], np.nan)
            low, high = np.where(small == "", low, np.nan), np.where(small == "", high, np.nan)
            rows.add(
                **base, **attr, feature=feature, metric=metric, value=value, ci_low=low, ci_high=high, reason=small
            )
    if strata is None:
        return
    # direct standardisation to the group's own need profile, over strata shared with the reference
    usable = (counts > 0) & (counts[:, ref : ref + 1, :] > 0)  # (R, G, S)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(counts[..., None] > 0, sums[..., : 1 + k] / counts[..., None], 0.0)  # (R, G, S, 1+K)
    diff = means - means[:, ref : ref + 1]
    weight = np.where(usable, counts, 0.0)
    total = weight.sum(axis=2)  # (R, G)
    gaps = np.einsum("rgs,rgsc->rgc", weight, diff)
    with np.errstate(invalid="ignore", divide="ignore"):
        gaps = np.where(total[..., None] > 0, gaps / total[..., None], np.nan)
    others = [g for g in range(g_n) if g != ref]
    ref_small = size[ref] < min_group_size
    reason = np.array(
        [
            small[g]
            or ("reference group is too small" if ref_small else "")
            or ("no band of need is shared with the reference group" if total[0, g] == 0 else "")
            for g in others
        ],
        dtype=object,
    )
    ok = reason == ""
    gap_base: dict[str, Any] = {**base, "target": need_target}
    gap_attr: dict[str, Any] = {
        "attribute": grouping.attribute,
        "groups": [labels[g] for g in others],
        "n": total[0, others],
    }
    excluded = (counts[0, others, :] > 0).sum(axis=1) - usable[0, others, :].sum(axis=1)
    rows.add(**gap_base, **gap_attr, metric="need_strata_excluded", value=excluded)
    for c, (metric, feature) in enumerate([("score_gap_at_equal_need", ""), *(("gap_contribution", f) for f in names)]):
        reps = gaps[:, others, c]
        low, high = _interval(reps, level)
        rows.add(
            **gap_base,
            **gap_attr,
            metric=metric,
            feature=feature,
            value=np.where(ok, reps[0], np.nan),
            ci_low=np.where(ok, low, np.nan),
            ci_high=np.where(ok, high, np.nan),
            reason=reason,
        )


def _auroc_interval(auc: np.ndarray, n1: np.ndarray, n0: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Hanley & McNeil (1982) normal-approximation interval of an AUROC."""
    from statistics import NormalDist

    z = NormalDist().inv_cdf(0.5 + level / 2)
    q1 = auc / (2 - auc)
    q2 = 2 * auc**2 / (1 + auc)
    with np.errstate(invalid="ignore", divide="ignore"):
        var = (auc * (1 - auc) + (n1 - 1) * (q1 - auc**2) + (n0 - 1) * (q2 - auc**2)) / (n1 * n0)
    se = np.sqrt(np.clip(var, 0.0, None))
    return np.clip(auc - z * se, 0.0, 1.0), np.clip(auc + z * se, 0.0, 1.0)


def _strength(auc: np.ndarray, low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """AUROC read in the better direction, ``max(A, 1 - A)``, with its interval mirrored alike."""
    flip = auc < 0.5
    return np.where(flip, 1 - auc, auc), np.where(flip, 1 - high, low), np.where(flip, 1 - low, high)


def _proxy_rows(
    rows: RowBuilder,
    base: dict[str, Any],
    grouping: Grouping,
    codes: np.ndarray,
    x: np.ndarray,
    features: list[str],
    ranks: np.ndarray,
    *,
    min_group_size: int,
    level: float,
    seed: int,
) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    g_n, labels = grouping.n_groups, grouping.labels
    n = codes.size
    n1 = np.bincount(codes, minlength=g_n).astype(np.float64)
    n0 = n - n1
    small = np.where(n1 < min_group_size, f"group has fewer than {min_group_size} people in the explained sample", "")
    small = np.where((small == "") & (n0 == 0), "everyone in the sample is in this group", small)
    ok = small == ""
    onehot = np.zeros((n, g_n))
    onehot[np.arange(n), codes] = 1.0
    rank_sums = onehot.T @ ranks  # (G, K): Mann-Whitney U from the rank sums of each group
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = (rank_sums - (n1 * (n1 + 1) / 2)[:, None]) / (n1 * n0)[:, None]
    attr: dict[str, Any] = {"attribute": grouping.attribute, "groups": labels, "n": n1}
    for j, feature in enumerate(features):
        a = auc[:, j]
        low, high = _auroc_interval(a, n1, n0, level)
        a, low, high = _strength(a, low, high)
        rows.add(
            **base,
            **attr,
            feature=feature,
            metric="proxy_auroc",
            value=np.where(ok, a, np.nan),
            ci_low=np.where(ok, low, np.nan),
            ci_high=np.where(ok, high, np.nan),
            reason=small,
        )
    # all features at once: out-of-fold probabilities of a small boosted classifier, one versus rest, on at
    # most PROXY_MAX_ROWS people of the sample (the fit's cost is bounded; its precision hardly changes)
    rows_used = np.arange(n)
    if n > PROXY_MAX_ROWS:
        rows_used = np.sort(np.random.default_rng(seed).choice(n, PROXY_MAX_ROWS, replace=False))
    codes_f = codes[rows_used]
    n1_f = np.bincount(codes_f, minlength=g_n).astype(np.float64)
    n0_f = codes_f.size - n1_f
    fit_groups = np.flatnonzero(n1_f >= PROXY_FOLDS)
    all_reason = small.copy()
    auc_all = np.full(g_n, np.nan)
    if fit_groups.size >= 2:
        keep = rows_used[np.isin(codes_f, fit_groups)]
        classifier = HistGradientBoostingClassifier(
            max_iter=60, learning_rate=0.15, max_leaf_nodes=15, early_stopping=False, random_state=seed
        )
        cv = StratifiedKFold(n_splits=PROXY_FOLDS, shuffle=True, random_state=seed)
        from threadpoolctl import threadpool_limits

        # small fits: one thread is as fast, and does not spin against other work on a shared machine
        with threadpool_limits(limits=1, user_api="openmp"):
            proba = cross_val_predict(classifier, x[keep], codes[keep], cv=cv, method="predict_proba")
        for col, g in enumerate(fit_groups):
            if all_reason[g] == "":
                auc_all[g] = roc_auc_score(codes[keep] == g, proba[:, col])
    else:
        all_reason = np.where(all_reason == "", "fewer than two groups are large enough to learn", all_reason)
    all_reason = np.where(
        (all_reason == "") & ~np.isin(np.arange(g_n), fit_groups), "group too small to learn", all_reason
    )
    low, high = _auroc_interval(auc_all, n1_f, n0_f, level)
    ok_all = all_reason == ""
    rows.add(
        **base,
        **{**attr, "n": n1_f},
        metric="proxy_auroc_all_features",
        value=np.where(ok_all, auc_all, np.nan),
        ci_low=np.where(ok_all, low, np.nan),
        ci_high=np.where(ok_all, high, np.nan),
        reason=all_reason,
    )


def _ranks(x: np.ndarray) -> np.ndarray:
    """Average ranks per column (ties share their mean rank); missing values rank lowest."""
    from scipy.stats import rankdata

    return np.asarray(rankdata(np.where(np.isnan(x), -np.inf, x), axis=0), dtype=np.float64)


# --------------------------------------------------------------------------------------------------
# public API


def _check_model(model: Any, cohort: pd.DataFrame, notes: list[str]) -> list[str]:
    """The columns to attribute the score to: the model's features, or, for a model that lists none (a
    supplied callable), every ``feature`` and ``protected`` column of the cohort (a note says so)."""
    missing = [a for a in ("name", "features", "score") if not hasattr(model, a)]
    if missing:
        raise PhmTypeError(
            "explain needs a fitted risk model with 'name', 'features' and 'score(cohort)'; "
            f"{type(model).__name__} has no {', '.join(repr(a) for a in missing)}"
        )
    features = [str(f) for f in model.features]
    if features:
        return features
    roles = (cohort.attrs.get("phm_audit") or {}).get("roles") or {}
    seen = [str(c) for c in cohort.columns if roles.get(c) in ("feature", "protected")]
    if not seen:
        raise PhmInputError(
            f"model '{model.name}' lists no features and the cohort does not say which of its columns are "
            "features (no column roles), so there is nothing to attribute its score to"
        )
    notes.append(
        f"{model.name}: it lists no features, so its score is attributed to the {len(seen)} feature and protected "
        "columns it can see (a column it does not read gets 0)"
    )
    return seen


def _check_size(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise PhmTypeError(f"{name} must be a whole number; got {value!r}")
    if value < 1:
        raise PhmInputError(f"{name} must be at least 1; got {value}")
    return int(value)


def _need_target(cohort: pd.DataFrame, spec: AuditSpec, need_target: str | None, notes: list[str]) -> str | None:
    if need_target is not None:
        check_columns(cohort, [need_target], "need_target")
        return need_target
    if spec.high_need_target is not None and spec.high_need_target in cohort.columns:
        return spec.high_need_target
    if "need_true_next" in cohort.columns:
        return "need_true_next"
    present = [t for t in spec.need_targets if t in cohort.columns]
    if present:
        return present[0]
    notes.append(
        "no need target is in the cohort ("
        + ", ".join(f"'{t}'" for t in spec.need_targets)
        + "), so the score gap at equal need is not decomposed"
    )
    return None


@dataclass(frozen=True)
class Attributions:
    """Per-person SHAP attributions of a model's score.

    Attributes
    ----------
    model : str
        Model name.
    values : pandas.DataFrame
        One row per person (the index of the explained rows), one column per feature, in score units.
    base_value : float
        The expected score under the explainer's reference distribution; per person
        ``base_value + values.sum(axis=1) == score`` up to ``additivity_error``.
    score : ndarray
        The model's own score of each person.
    explainer : str
        The explainer used, with its settings.
    quantity : str
        What it explains (always on the score's scale; the text says which output of the model).
    exact : bool
        True for the exact tree, linear and single-column explainers; False for the model-agnostic one.
    background_size : int or None
        People in the background; None where the explainer needs none (path-dependent trees).
    additivity_error : float
        ``max |base_value + sum of attributions - score|``.
    """

    model: str
    values: pd.DataFrame
    base_value: float
    score: np.ndarray
    explainer: str
    quantity: str
    exact: bool
    background_size: int | None
    additivity_error: float


def _draw(n: int, size: int, background_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A random sample of ``size`` rows and a background of ``background_size`` rows, disjoint where possible."""
    order = np.random.default_rng(seed).permutation(n)
    rest = order[size:]
    pool = rest if rest.size >= background_size else order
    return np.sort(order[:size]), np.sort(pool[:background_size])


def attributions(
    model: Any,
    people: pd.DataFrame,
    *,
    background_size: int = 200,
    seed: int = 0,
    n_permutations: int = 1,
) -> Attributions:
    """SHAP attributions of a fitted model's score for every person of ``people``.

    The explainer is chosen as described in the module documentation (exact tree, linear or
    single-column explainers where they reproduce the score; otherwise the model-agnostic
    permutation explainer, with a :class:`~phm_audit.exceptions.PhmWarning`).

    Parameters
    ----------
    model : RiskModel
        A fitted model with ``name``, ``features`` and ``score(cohort)``.
    people : pandas.DataFrame
        The people to explain, with the model's features.
    background_size : int, default 200
        People drawn at random from ``people`` as the background of the explainers that need one.
    seed : int, default 0
        Seed of the background and the permutations.
    n_permutations : int, default 1
        Antithetic permutations of the model-agnostic explainer.

    Returns
    -------
    Attributions

    Raises
    ------
    PhmInputError
        A model whose score depends on columns it does not list as features (it cannot be explained
        from them), or a missing feature column.

    Examples
    --------
    >>> from phm_audit.synth import generate
    >>> from phm_audit.models import get_model
    >>> from phm_audit.audit._explain import attributions
    >>> people = generate("england", 2_000, seed=2)
    >>> model = get_model("actuarial_cost").fit(generate("england", 5_000, seed=1))
    >>> att = attributions(model, people.iloc[:500])
    >>> bool(abs(att.base_value + att.values.sum(axis=1) - att.score).max() < 1e-6)
    True
    """
    if not isinstance(people, pd.DataFrame):
        raise PhmTypeError(f"people must be a pandas DataFrame; got {type(people).__name__}")
    notes: list[str] = []
    features = _check_model(model, people, notes)
    background_size = _check_size(background_size, "background_size")
    n_permutations = _check_size(n_permutations, "n_permutations")
    if len(people) == 0:
        raise PhmInputError("there is nobody to explain: people is empty")
    check_columns(people, features, f"features of model '{model.name}'")
    _, bg_idx = _draw(len(people), 0, background_size, seed)
    att, score, why = _attribute(
        model,
        people,
        people.iloc[bg_idx],
        _Codec(people, features),
        n_permutations=n_permutations,
        seed=seed,
        notes=notes,
    )
    if att is None:
        raise PhmInputError(f"model '{model.name}' cannot be explained: {why}")
    return Attributions(
        model=str(model.name),
        values=pd.DataFrame(att.values, index=people.index, columns=att.names),
        base_value=att.base,
        score=score,
        explainer=att.explainer,
        quantity=att.quantity,
        exact=att.exact,
        background_size=att.background_size,
        additivity_error=att.error,
    )


def _result(
    model: Any,
    cohort: pd.DataFrame,
    spec: AuditSpec,
    groupings: list[Grouping],
    notes: list[str],
    rows: RowBuilder,
    att: _Attributions | None,
    sample_size: int,
    need_col: str | None,
) -> AuditResult:
    meta = cohort.attrs.get("phm_audit") or {}
    scenario = meta.get("scenario") or {}
    return AuditResult(
        spec=spec,
        models=(
            {
                "name": str(model.name),
                "kind": str(getattr(model, "kind", "supplied")),
                "target": getattr(model, "target", None),
                "explainer": None if att is None else att.explainer,
                "explained_quantity": None if att is None else att.quantity,
                "explain_sample_size": sample_size,
                "explain_background_size": None if att is None else att.background_size,
            },
        ),
        groups={g.attribute: g.describe() for g in groupings},
        cohort={
            "n": len(cohort),
            "scenario": scenario.get("name"),
            "seed": meta.get("seed"),
            "source": meta.get("source"),
            "high_need_target": need_col,
            "explain_sample_size": sample_size,
        },
        notes=tuple(dict.fromkeys(notes)),
        _metrics=rows.frame(),
        _curves=pd.DataFrame(columns=list(CURVE_COLUMNS)),
    )


def explain(
    model: Any,
    cohort: pd.DataFrame,
    spec: AuditSpec | None = None,
    *,
    sample_size: int = 5000,
    background_size: int = 200,
    seed: int = 0,
    need_target: str | None = None,
    reference: Mapping[str, str] | None = None,
    n_permutations: int = 1,
    proxies: bool = True,
) -> AuditResult:
    """Explain a fitted model's scores: attributions, the gap at equal need by feature, and proxies.

    See the module documentation for the explainers, the quantity each explains, and the exact
    definitions. All rows have ``analysis = "explain"``; the feature is in the ``feature`` column.

    Parameters
    ----------
    model : RiskModel
        A fitted model with ``name``, ``features`` and ``score(cohort)`` (a built-in model from
        :func:`phm_audit.models.get_model`, or a supplied one).
    cohort : pandas.DataFrame
        The audited people, with the model's features, the protected attributes of ``spec`` and,
        for the gap decomposition, a need target.
    spec : AuditSpec, optional
        Attributes, reference groups, need strata, ``min_group_size`` and bootstrap settings
        (``n_boot``, ``confidence``, ``seed``). Intersections are not explained (a note says so).
    sample_size : int, default 5000
        People explained, drawn at random without replacement (all of them when equal to the cohort).
    background_size : int, default 200
        People drawn (disjoint from the sample where possible) as the reference distribution of the
        interventional, linear and model-agnostic explainers; the path-dependent tree explainer
        needs none and the output says so.
    seed : int, default 0
        Seed of the sample, the background, the permutations and the proxy cross-validation.
    need_target : str, optional
        Column whose percentile bands define "equal need"; default ``spec.high_need_target``, else
        ``need_true_next`` when present, else the first of ``spec.need_targets`` present.
    reference : mapping of str to str, optional
        Reference group per attribute, overriding ``spec.reference`` (default as in :func:`audit`:
        the largest group, quintile 5 for ``imd_quintile``).
    n_permutations : int, default 1
        Antithetic permutations of the model-agnostic explainer (cost grows linearly).
    proxies : bool, default True
        Also measure how well the features stand in for each attribute (``proxy_auroc``,
        ``proxy_auroc_all_features``); the cross-validated classifier is the slowest part after SHAP.

    Returns
    -------
    AuditResult
        Rows: ``sample_size``, ``background_size``, ``base_value``, ``mean_score``,
        ``additivity_max_error`` and per feature ``mean_abs_shap``, ``mean_shap``, ``share_of_score``
        (attribute ``all``); per attribute, group and feature ``mean_shap``, ``mean_abs_shap``,
        ``proxy_auroc``; per group ``proxy_auroc_all_features``; per non-reference group
        ``score_gap_at_equal_need``, ``need_strata_excluded`` and per feature ``gap_contribution``
        (plus ``(interaction/remainder)`` when the explainer is not exactly additive).

    Raises
    ------
    PhmInputError
        ``sample_size`` larger than the cohort, a missing column, a model without features.
    PhmTypeError
        An object that is not a risk model.

    Warns
    -----
    PhmWarning
        When no exact explainer applies and the model-agnostic one is used.

    Examples
    --------
    >>> from phm_audit.synth import generate
    >>> from phm_audit.models import get_model
    >>> from phm_audit.audit import AuditSpec
    >>> from phm_audit.audit._explain import explain
    >>> model = get_model("actuarial_cost").fit(generate("england", 20_000, seed=1))
    >>> audited = generate("england", 20_000, seed=2)
    >>> spec = AuditSpec(attributes=["imd_quintile"], intersections=[], n_boot=20)
    >>> result = explain(model, audited, spec, sample_size=2_000)
    >>> gap = result.get(metric="gap_contribution", group="1")
    >>> bool(abs(gap["value"].sum() - result.value(metric="score_gap_at_equal_need", group="1")) < 1e-6)
    True
    """
    spec = spec or AuditSpec()
    if not isinstance(cohort, pd.DataFrame):
        raise PhmTypeError(f"cohort must be a pandas DataFrame; got {type(cohort).__name__}")
    notes: list[str] = []
    features = _check_model(model, cohort, notes)
    sample_size = _check_size(sample_size, "sample_size")
    background_size = _check_size(background_size, "background_size")
    n_permutations = _check_size(n_permutations, "n_permutations")
    n_total = len(cohort)
    if sample_size > n_total:
        raise PhmInputError(
            f"sample_size={sample_size:,} is larger than the cohort ({n_total:,} people); "
            f"pass sample_size={n_total:,} or less"
        )
    check_columns(cohort, features, f"features of model '{model.name}'")
    check_columns(cohort, list(spec.attributes), "protected attribute")
    if reference:
        unknown = [a for a in reference if a not in spec.attributes]
        if unknown:
            raise PhmInputError(
                f"a reference group is given for '{unknown[0]}', which is not audited"
                f"{closest(unknown[0], spec.attributes)}; attributes: {', '.join(spec.attributes)}"
            )
        spec = dataclasses.replace(spec, reference={**spec.reference, **{str(k): str(v) for k, v in reference.items()}})
    if spec.intersections:
        notes.append("explanations are given per attribute; intersections are not explained")
    need_col = _need_target(cohort, spec, need_target, notes)

    idx, bg_idx = _draw(n_total, sample_size, background_size, seed)
    sample = cohort.iloc[idx]
    background = cohort.iloc[bg_idx]
    codec = _Codec(cohort, features)
    att, score, not_applicable = _attribute(
        model, sample, background, codec, n_permutations=n_permutations, seed=seed, notes=notes
    )
    label = getattr(model, "target", None)
    base: dict[str, Any] = {"model": str(model.name), "analysis": ANALYSIS, "target": str(label or "")}
    rows = RowBuilder()
    groupings = [encode_groups(cohort, [a], reference=_default_reference(cohort, a, spec)) for a in spec.attributes]
    if att is None:
        reason = f"explanation is not applicable: {not_applicable}"
        notes.insert(0, f"{model.name}: {reason}")
        rows.add(**base, attribute="all", groups=["all"], metric="sample_size", value=sample_size, n=sample_size)
        rows.add(**base, attribute="all", groups=["all"], metric="mean_abs_shap", value=math.nan, reason=reason)
        return _result(model, cohort, spec, groupings, notes, rows, None, sample_size, need_col)
    names = list(att.names)
    phi = att.values
    residual = score - att.base - phi.sum(axis=1)
    # an approximate explainer's residual is carried as a part of its own, so the parts add up to the gap
    if not att.exact or np.max(np.abs(residual)) > 1e-9 * max(1.0, float(np.max(np.abs(score)))):
        names.append(REMAINDER)
        phi = np.column_stack([phi, residual])
    boot_rng = np.random.default_rng(spec.seed)
    _global_rows(rows, base, att, score, names, phi, n_boot=spec.n_boot, level=spec.confidence, rng=boot_rng)

    strata: np.ndarray | None = None
    n_strata = 1
    if need_col is not None:
        need = pd.to_numeric(cohort[need_col], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        if not np.isfinite(need).all():
            raise PhmInputError(f"need target '{need_col}' has missing or infinite values; fill or remove them")
        all_strata, labels = _need_strata(need, spec.need_strata)
        strata, n_strata = all_strata[idx], len(labels)
    x = codec.encode(sample)
    ranks = _ranks(x)
    for grouping in groupings:
        codes = grouping.codes[idx]
        _group_rows(
            rows,
            base,
            grouping,
            codes,
            strata,
            n_strata,
            score,
            names,
            phi,
            need_target=need_col or "",
            min_group_size=spec.min_group_size,
            n_boot=spec.n_boot,
            level=spec.confidence,
            rng=boot_rng,
        )
        # a model that reads the attribute itself is measured on its other inputs
        others = [j for j, f in enumerate(features) if f != grouping.attribute]
        if len(others) < len(features) and proxies:
            notes.append(
                f"{model.name}: it reads '{grouping.attribute}' directly; how well its inputs stand in for it is "
                "measured on its other inputs"
            )
        if others and proxies:
            _proxy_rows(
                rows,
                base,
                grouping,
                codes,
                x[:, others],
                [features[j] for j in others],
                ranks[:, others],
                min_group_size=spec.min_group_size,
                level=spec.confidence,
                seed=seed,
            )

    bg_text = (
        "no background (the trees' own training cover)"
        if att.background_size is None
        else f"a background of {att.background_size:,} people"
    )
    notes.insert(
        0,
        f"{model.name}: explained {sample_size:,} of {n_total:,} people (random sample, seed {seed}) with "
        f"{att.explainer}, which explains {att.quantity}, against {bg_text}; "
        f"max |base + sum of attributions - score| = {att.error:.3g}",
    )
    if REMAINDER in names:
        notes.append(
            f"{model.name}: what the explainer leaves unattributed (at most {att.error:.3g} per person) is "
            f"reported as '{REMAINDER}'"
        )
    return _result(model, cohort, spec, groupings, notes, rows, att, sample_size, need_col)


def explain_rows_for(
    models: Sequence[Any],
    audited: pd.DataFrame,
    spec: AuditSpec | None = None,
    *,
    sample_size: int | None = None,
    background_size: int = 200,
    seed: int = 0,
) -> AuditResult:
    """Explanations of several fitted models, merged into one result (the hook for ``phm-audit audit --explain``).

    The audit never fits a model: :func:`phm_audit.pipeline.explain_models` fits built-in models given
    by name and calls this.

    Parameters
    ----------
    models : sequence
        Fitted risk models. Anything that has only scores (a :class:`~phm_audit.audit.ScoredModel`,
        a scores table) cannot be explained and is listed in the notes.
    audited : pandas.DataFrame
        The audited people.
    spec : AuditSpec, optional
        As for :func:`explain`.
    sample_size : int, optional
        People explained per model; default ``min(5000, len(audited))``.
    background_size, seed
        As for :func:`explain`.

    Returns
    -------
    AuditResult
        Merge it into the audit's result with ``result.merge(...)``.

    Examples
    --------
    >>> from phm_audit.synth import generate
    >>> from phm_audit.audit import AuditSpec
    >>> from phm_audit.models import get_model
    >>> cohort = generate("england", 4_000, seed=1)
    >>> spec = AuditSpec(attributes=["sex"], intersections=[], n_boot=0)
    >>> result = explain_rows_for([get_model("prior_cost").fit(cohort)], cohort, spec, sample_size=1_000)
    >>> result.value(metric="sample_size", model="prior_cost")
    1000.0
    """
    spec = spec or AuditSpec()
    size = min(5000, len(audited)) if sample_size is None else sample_size
    notes: list[str] = []
    if sample_size is None and size < 5000:
        notes.append(f"explanations use all {size:,} audited people (fewer than the default sample of 5,000)")
    results: list[AuditResult] = []
    for model in models:
        if isinstance(model, str):
            raise PhmTypeError(
                f"explain_rows_for takes fitted models, not the name '{model}'; "
                "phm_audit.pipeline.explain_models fits built-in models by name"
            )
        if not (hasattr(model, "score") and hasattr(model, "features")):
            notes.append(f"{getattr(model, 'name', model)}: only its scores are known, so it cannot be explained")
            continue
        results.append(explain(model, audited, spec, sample_size=size, background_size=background_size, seed=seed))
    if not results:
        return AuditResult(
            spec=spec,
            models=(),
            groups={},
            cohort={"n": len(audited)},
            notes=tuple(notes),
            _metrics=RowBuilder().frame(),
            _curves=pd.DataFrame(columns=list(CURVE_COLUMNS)),
        )
    out = results[0]
    for other in results[1:]:
        out = out.merge(other)
    if notes:
        out = dataclasses.replace(out, notes=out.notes + tuple(n for n in notes if n not in out.notes))
    return out
