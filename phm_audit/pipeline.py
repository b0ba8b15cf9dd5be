"""The pipeline that joins the stages: split a cohort, fit and score models, and the analyses that fit models.

The stages never reach across: :mod:`phm_audit.audit` receives scores and fitted models and never
builds one. What needs a model fitted for it lives here, above the stages:

- :func:`split_for_audit` and :func:`score_models`: the audited and the training people, and one
  :class:`~phm_audit.audit.ScoredModel` per model;
- :func:`fit_label_scores` and :func:`label_choice`: the same learner trained on each candidate
  label, then audited (the ``label_choice`` analysis of :func:`phm_audit.audit.audit`);
- :func:`explain_models`: built-in models given by name fitted, then explained
  (:func:`phm_audit.audit.explain_rows_for`).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any

import pandas as pd

from phm_audit.audit._analyses import LabelScores
from phm_audit.audit._result import AuditResult
from phm_audit.audit._spec import AuditSpec, ScoredModel
from phm_audit.exceptions import PhmInputError

__all__ = ["explain_models", "fit_label_scores", "label_choice", "score_models", "split_for_audit"]


def split_for_audit(
    cohort: pd.DataFrame, *, train: pd.DataFrame | None = None, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The audited and the training people.

    Without ``train``, the cohort is split in two with :func:`phm_audit.models.split_cohort` (a seeded
    hash of ``patient_id``): models are fitted on one part and only the other part is audited, so no
    one is scored by a model that saw their outcome. With ``train``, every person of ``cohort`` is
    audited (that the two hold different people is checked when a model is fitted).

    Parameters
    ----------
    cohort : pandas.DataFrame
        The people to audit (or to split).
    train : pandas.DataFrame, optional
        A separate training cohort.
    seed : int, default 0
        Seed of the split.

    Returns
    -------
    (audited, train) : tuple of pandas.DataFrame

    Examples
    --------
    >>> from phm_audit.synth import generate
    >>> cohort = generate("england", 2000, seed=1)
    >>> audited, train = split_for_audit(cohort)
    >>> len(audited) + len(train) == len(cohort)
    True
    """
    from phm_audit.models import split_cohort

    if train is None:
        train, audited = split_cohort(cohort, seed=seed)
        return audited, train
    return cohort, train


def score_models(
    models: Sequence[Any],
    audited: pd.DataFrame,
    *,
    train: pd.DataFrame | None = None,
    quiet: bool = True,
) -> list[ScoredModel]:
    """Fit built-in models on ``train`` and score the audited people with every model.

    Supplied models (``kind == "supplied"``: a model file, a table of scores, a callable) are already
    fitted and are only scored. Every model scores the same people, ``audited``, so all of them are
    audited alike. Built-in models are fitted in place, so the caller can explain them afterwards.

    Parameters
    ----------
    models : sequence of RiskModel
        Built-in models (new, from :func:`phm_audit.models.get_model`) and supplied ones.
    audited : pandas.DataFrame
        The people to score.
    train : pandas.DataFrame, optional
        The people built-in models are fitted on (never the audited people); needed when any
        model is not supplied.
    quiet : bool, default True
        Print nothing; otherwise one line per model on standard error.

    Returns
    -------
    list of ScoredModel
        One per model, in order; ``kind`` and ``target`` as the audit needs them.

    Raises
    ------
    PhmInputError
        A built-in model without ``train``, training people who are also audited, or a model whose
        scores are not one finite number per audited person.
    """
    from phm_audit._checks import as_scores
    from phm_audit.exceptions import PhmInputError
    from phm_audit.models import fit_and_score

    scored = []
    for model in models:
        start = time.perf_counter()
        if getattr(model, "kind", "") == "supplied":
            scores = as_scores(model.score(audited), len(audited), f"model '{model.name}'")
            done = "scored"
        else:
            if train is None:
                raise PhmInputError(f"model '{model.name}' must be fitted, so score_models needs train=")
            scores = fit_and_score(model, train, audited)
            done = "fitted and scored"
        if not quiet:
            print(f"  {model.name}: {done} in {time.perf_counter() - start:.1f} s", file=sys.stderr)
        label = getattr(model, "target", None)
        scored.append(
            ScoredModel(
                model.name,
                scores,
                kind=model.kind,
                target=_own_scale_target(model),
                label=str(label) if label else None,
            )
        )
    return scored


def _own_scale_target(model: object) -> str | None:
    """The target a model predicts on its own scale (probability or expected value), if any."""
    kind = getattr(model, "kind", "")
    target = getattr(model, "target", None)
    return str(target) if kind in ("actuarial", "clinical") and target else None


def label_choice(
    train: pd.DataFrame,
    cohort: pd.DataFrame,
    spec: AuditSpec | None = None,
    *,
    learner: str = "actuarial_cost",
    labels: Sequence[str] | None = None,
    operating_point: str = "top_pct:3",
) -> AuditResult:
    """Train ``learner`` on each label and compare whom it flags at ``operating_point``.

    Obermeyer et al. (2019, Table 2) retrained their algorithm on total cost, avoidable cost and
    active chronic conditions and compared, in the top 3%, the share of Black patients and the share
    of all need and of all cost that the flagged held. This does the same for any built-in learner
    and any groups.

    Parameters
    ----------
    train : pandas.DataFrame
        People to fit on; must not overlap ``cohort`` (see :func:`phm_audit.models.split_cohort`).
    cohort : pandas.DataFrame
        People to audit.
    spec : AuditSpec, optional
        Groups, targets and bootstrap settings.
    learner : str, default "actuarial_cost"
        A built-in learner; it is retrained on each label.
    labels : sequence of str, optional
        Labels to compare; default every label of :data:`phm_audit.models.LABELS`.
    operating_point : str, default "top_pct:3"
        The decision compared (Obermeyer et al. used the top 3%).

    Returns
    -------
    AuditResult
        See :func:`phm_audit.audit.label_choice_scores` (models named ``learner[label]``).

    Examples
    --------
    >>> from phm_audit.synth import generate
    >>> from phm_audit.models import split_cohort
    >>> from phm_audit.audit import AuditSpec
    >>> train, audited = split_cohort(generate("england", 6_000, seed=1), seed=1)
    >>> result = label_choice(train, audited, AuditSpec(attributes=["sex"], intersections=[], n_boot=0),
    ...                       labels=["cost_next", "n_conditions_next"])
    >>> sorted(m["name"] for m in result.models)[:2]
    ['actuarial_cost[cost_next]', 'actuarial_cost[n_conditions_next]']
    """
    from phm_audit.audit import label_choice_scores

    given = fit_label_scores(train, cohort, learner=learner, labels=labels, operating_point=operating_point)
    return label_choice_scores(
        given.scores, cohort, spec, learner=given.learner, kind=given.kind, operating_point=given.operating_point
    )


def fit_label_scores(
    train: pd.DataFrame,
    cohort: pd.DataFrame,
    *,
    learner: str = "actuarial_cost",
    labels: Sequence[str] | None = None,
    operating_point: str = "top_pct:3",
) -> LabelScores:
    """Fit ``learner`` on ``train`` once per label and score ``cohort``: the input of the label-choice analysis.

    Pass the result to :func:`phm_audit.audit.audit` as ``label_scores=`` (with ``"label_choice"`` in
    the spec's analyses, as by default).

    Parameters
    ----------
    train, cohort : pandas.DataFrame
        People to fit on, and people to score (never the same people).
    learner : str, default "actuarial_cost"
        A built-in learner.
    labels : sequence of str, optional
        Labels to compare; default every label of :data:`phm_audit.models.LABELS`.
    operating_point : str, default "top_pct:3"
        The decision the analysis compares.

    Returns
    -------
    LabelScores
    """
    from phm_audit.audit import LabelScores
    from phm_audit.models import LABELS, get_model

    fitted = [get_model(learner, label=label) for label in (labels or LABELS)]  # unknown names fail first
    scores = {}
    for model in fitted:
        model.fit(train)
        scores[str(model.target)] = model.score(cohort)
    kind = fitted[0].kind if fitted else "actuarial"
    return LabelScores(scores, learner=learner, kind=kind, operating_point=operating_point)


def explain_models(
    models: Sequence[Any],
    audited: pd.DataFrame,
    spec: AuditSpec | None = None,
    *,
    train: pd.DataFrame | None = None,
    sample_size: int | None = None,
    background_size: int = 200,
    seed: int = 0,
) -> AuditResult:
    """Explanations of several models, built-in ones given by name fitted on ``train`` first.

    Parameters
    ----------
    models : sequence
        Fitted risk models, or names of built-in models. Anything that has only scores (a
        :class:`~phm_audit.audit.ScoredModel`, a scores table) cannot be explained and is listed
        in the notes.
    audited : pandas.DataFrame
        The audited people.
    spec : AuditSpec, optional
        As for :func:`phm_audit.audit.explain`.
    train : pandas.DataFrame, optional
        Training people for models given by name.
    sample_size, background_size, seed
        As for :func:`phm_audit.audit.explain_rows_for`.

    Returns
    -------
    AuditResult
        Merge it into the audit's result with ``result.merge(...)``.
    """
    from phm_audit.audit import explain_rows_for
    from phm_audit.models import get_model

    fitted = []
    for item in models:
        if isinstance(item, str):
            if train is None:
                raise PhmInputError(f"model '{item}' is given by name, so explain_models needs train= to fit it")
            item = get_model(item).fit(train)
        fitted.append(item)
    return explain_rows_for(fitted, audited, spec, sample_size=sample_size, background_size=background_size, seed=seed)
