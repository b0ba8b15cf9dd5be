"""The registry of built-in models, by name."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from phm_audit.exceptions import PhmInputError, closest
from phm_audit.models._builtin import (
    ACTUARIAL_FEATURES,
    EMERGENCY_FEATURES,
    ClinicianJudgement,
    GradientBoostingRiskModel,
    RuleRiskModel,
    kind_for_label,
)
from phm_audit.models._protocol import LABELS, RiskModel

__all__ = ["get_model", "is_learner", "list_models"]


@dataclass(frozen=True)
class _Entry:
    name: str
    description: str
    target: str
    learner: bool
    make: Callable[..., RiskModel]


def _learner(name: str, target: str, features: tuple[str, ...], description: str) -> _Entry:
    def make(*, label: str, **params: Any) -> RiskModel:
        params.setdefault("features", features)
        shown = name if label == target else f"{name}[{label}]"
        return GradientBoostingRiskModel(
            shown, kind=kind_for_label(label), target=label, description=description, **params
        )

    return _Entry(name, description, target, True, make)


def _rule(name: str, column: str, target: str, description: str, divisor: float = 1.0) -> _Entry:
    def make(**params: Any) -> RiskModel:
        params.setdefault("divisor", divisor)
        return RuleRiskModel(name, column=column, target=target, description=description, **params)

    return _Entry(name, description, target, False, make)


def _judgement(description: str) -> _Entry:
    def make(**params: Any) -> RiskModel:
        return ClinicianJudgement(description=description, **params)

    return _Entry("clinician_judgement", description, ClinicianJudgement.target, False, make)


_REGISTRY: dict[str, _Entry] = {
    e.name: e
    for e in (
        _learner(
            "actuarial_cost",
            "cost_next",
            ACTUARIAL_FEATURES,
            "gradient boosting on next-year cost from age, sex, recorded conditions, prior use and cost "
            "(no ethnicity or deprivation, as commercial tools)",
        ),
        _learner(
            "actuarial_avoidable_cost",
            "avoidable_cost_next",
            ACTUARIAL_FEATURES,
            "the same learner on avoidable cost (A&E and ambulatory-care-sensitive admissions)",
        ),
        _learner(
            "clinical_need",
            "n_conditions_next",
            ACTUARIAL_FEATURES,
            "the same learner on next-year recorded active chronic conditions",
        ),
        _learner(
            "emergency_admission",
            "emergency_admission_next",
            EMERGENCY_FEATURES,
            "QAdmissions-like classifier for an emergency admission next year (adds ethnicity and deprivation)",
        ),
        _rule("ltc_count", "n_ltc_recorded", "n_conditions_next", "count of recorded long-term conditions"),
        _rule(
            "frailty_index",
            "frailty_deficits_recorded",
            "emergency_admission_next",
            "eFI-like frailty index: recorded deficits / 36",
            divisor=36.0,
        ),
        _rule("prior_cost", "cost_prior", "cost_next", "last year's cost of care"),
        _judgement("simulated clinician who sees true need through noise (reliability 0.7 by default)"),
    )
}


def list_models() -> list[str]:
    """Names of the built-in models, in the order ``phm-audit models`` lists them.

    Returns
    -------
    list of str

    Examples
    --------
    >>> "actuarial_cost" in list_models()
    True
    """
    return list(_REGISTRY)


def _entry(name: str) -> _Entry:
    if not isinstance(name, str) or name not in _REGISTRY:
        raise PhmInputError(
            f"unknown model '{name}'{closest(str(name), _REGISTRY)}; built-in models: {', '.join(_REGISTRY)}"
        )
    return _REGISTRY[name]


def is_learner(name: str) -> bool:
    """Whether built-in model ``name`` is trained on a label (and so needs training people)."""
    return _entry(name).learner


def describe(name: str) -> str:
    """The one-line description of built-in model ``name``."""
    return _entry(name).description


def check_label(label: str) -> str:
    """Return ``label`` if it is one of :data:`LABELS`, else raise with the closest name."""
    if label not in LABELS:
        raise PhmInputError(f"unknown label '{label}'{closest(str(label), LABELS)}; labels: {', '.join(LABELS)}")
    return label


def get_model(name: str, *, label: str | None = None, **params: Any) -> RiskModel:
    """Return a new, unfitted built-in model.

    Parameters
    ----------
    name : str
        One of :func:`list_models`.
    label : str, optional
        For a learner, the label to train on instead of its own (one of :data:`LABELS`); the model is
        then named ``name[label]`` and its kind follows the label (``actuarial`` for cost labels,
        ``clinical`` otherwise). Rules and the clinician are not trained, so they accept only their
        own target.
    **params
        Passed to the model's class: for learners ``max_train_rows``, ``max_iter``, ``learning_rate``,
        ``max_leaf_nodes``, ``min_samples_leaf``, ``random_state``, ``n_threads``, ``features``; for
        ``clinician_judgement`` ``reliability`` and ``seed``; for rules ``divisor``.

    Returns
    -------
    RiskModel

    Raises
    ------
    PhmInputError
        Unknown model or label (with the closest name), a label a rule cannot take, or an unknown
        parameter.

    Examples
    --------
    >>> get_model("actuarial_cost", label="n_conditions_next").target
    'n_conditions_next'
    >>> get_model("actuarial_cst")
    Traceback (most recent call last):
    ...
    phm_audit.exceptions.PhmInputError: unknown model 'actuarial_cst' (did you mean 'actuarial_cost'?); ...
    """
    entry = _entry(name)
    if label is not None:
        check_label(label)
    if entry.learner:
        label = label or entry.target
        params["label"] = label
    elif label is not None and label != entry.target:
        learners = [n for n, e in _REGISTRY.items() if e.learner]
        raise PhmInputError(
            f"model '{name}' is not trained (it is a {'rule' if name != 'clinician_judgement' else 'judgement'}), "
            f"so it cannot take --label {label}; it stands for {entry.target}. To train on {label}, choose a "
            f"learner: {', '.join(learners)}"
        )
    allowed = _accepted(entry)
    unknown = sorted(set(params) - allowed - {"label"})
    if unknown:
        raise PhmInputError(
            f"model '{name}' has no parameter {', '.join(map(repr, unknown))}"
            f"{closest(unknown[0], allowed)}; it takes {', '.join(sorted(allowed)) or 'none'}"
        )
    return entry.make(**params)


def _accepted(entry: _Entry) -> set[str]:
    if entry.learner:
        cls: type = GradientBoostingRiskModel
        fixed = {"name", "kind", "target", "description"}
    elif entry.name == "clinician_judgement":
        cls, fixed = ClinicianJudgement, {"name", "description"}
    else:
        cls, fixed = RuleRiskModel, {"name", "column", "target", "description"}
    return {p for p in inspect.signature(cls).parameters if p not in fixed}
