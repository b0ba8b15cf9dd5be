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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from phm_audit._checks import check_columns, check_int
from phm_audit.audit._analyses import need_strata
from phm_audit.audit._audit import default_reference
from phm_audit.audit._explain_codec import FeatureCodec, attribution_columns
from phm_audit.audit._explain_gaps import REMAINDER, global_rows, group_rows, need_target_for, with_remainder
from phm_audit.audit._explainers import ExplainerOutput, attribute
from phm_audit.audit._groups import Grouping, encode_groups
from phm_audit.audit._proxy import feature_ranks, proxy_rows
from phm_audit.audit._result import CURVE_COLUMNS, AuditResult, RowBuilder, cohort_summary
from phm_audit.audit._spec import AuditSpec
from phm_audit.exceptions import PhmInputError, PhmTypeError, closest

__all__ = ["REMAINDER", "Attributions", "attributions", "explain", "explain_rows_for"]

ANALYSIS = "explain"


def _check_request(
    model: Any, people: object, what: str, notes: list[str], **sizes: object
) -> tuple[pd.DataFrame, list[str], list[int]]:
    """The people (a DataFrame named ``what`` in messages), the columns to attribute to, and the sizes, checked."""
    if not isinstance(people, pd.DataFrame):
        raise PhmTypeError(f"{what} must be a pandas DataFrame; got {type(people).__name__}")
    features = attribution_columns(model, people, notes)
    return people, features, [check_int(value, name, 1) for name, value in sizes.items()]


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
    notes: list[str] = []
    people, features, (background_size, n_permutations) = _check_request(
        model, people, "people", notes, background_size=background_size, n_permutations=n_permutations
    )
    if len(people) == 0:
        raise PhmInputError("there is nobody to explain: people is empty")
    check_columns(people, features, f"features of model '{model.name}'")
    _, bg_idx = _draw(len(people), 0, background_size, seed)
    att, score, why = attribute(
        model,
        people,
        people.iloc[bg_idx],
        FeatureCodec(people, features),
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
    att: ExplainerOutput | None,
    sample_size: int,
    need_col: str | None,
) -> AuditResult:
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
        cohort=cohort_summary(cohort, need_col, explain_sample_size=sample_size),
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
    notes: list[str] = []
    cohort, features, (sample_size, background_size, n_permutations) = _check_request(
        model,
        cohort,
        "cohort",
        notes,
        sample_size=sample_size,
        background_size=background_size,
        n_permutations=n_permutations,
    )
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
    need_col = need_target_for(cohort, spec, need_target, notes)

    idx, bg_idx = _draw(n_total, sample_size, background_size, seed)
    sample = cohort.iloc[idx]
    background = cohort.iloc[bg_idx]
    codec = FeatureCodec(cohort, features)
    att, score, not_applicable = attribute(
        model, sample, background, codec, n_permutations=n_permutations, seed=seed, notes=notes
    )
    label = getattr(model, "target", None)
    base: dict[str, Any] = {"model": str(model.name), "analysis": ANALYSIS, "target": str(label or "")}
    rows = RowBuilder()
    groupings = [encode_groups(cohort, [a], reference=default_reference(cohort, a, spec)) for a in spec.attributes]
    if att is None:
        reason = f"explanation is not applicable: {not_applicable}"
        notes.insert(0, f"{model.name}: {reason}")
        rows.add(**base, attribute="all", groups=["all"], metric="sample_size", value=sample_size, n=sample_size)
        rows.add(**base, attribute="all", groups=["all"], metric="mean_abs_shap", value=math.nan, reason=reason)
        return _result(model, cohort, spec, groupings, notes, rows, None, sample_size, need_col)
    names, phi = with_remainder(att, score)
    boot_rng = np.random.default_rng(spec.seed)
    global_rows(rows, base, att, score, names, phi, n_boot=spec.n_boot, level=spec.confidence, rng=boot_rng)

    strata: np.ndarray | None = None
    n_strata = 1
    if need_col is not None:
        need = pd.to_numeric(cohort[need_col], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        if not np.isfinite(need).all():
            raise PhmInputError(f"need target '{need_col}' has missing or infinite values; fill or remove them")
        all_strata, labels = need_strata(need, spec.need_strata)
        strata, n_strata = all_strata[idx], len(labels)
    x = codec.encode(sample)
    ranks = feature_ranks(x)
    for grouping in groupings:
        codes = grouping.codes[idx]
        group_rows(
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
        if proxies:
            proxy_rows(
                rows,
                base,
                grouping,
                codes,
                x,
                features,
                ranks,
                model_name=str(model.name),
                notes=notes,
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
