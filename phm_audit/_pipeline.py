"""Glue between the stages for the command line and the demo: train built-in models and score a cohort."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any

import pandas as pd

from phm_audit.audit._spec import ScoredModel

__all__ = ["score_models", "split_for_audit", "train_and_score"]


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
    from phm_audit.exceptions import PhmInputError
    from phm_audit.models import fit_and_score
    from phm_audit.models._validation import as_scores

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


def train_and_score(
    cohort: pd.DataFrame,
    model_names: Sequence[str],
    *,
    train: pd.DataFrame | None = None,
    seed: int = 0,
    quiet: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame, list[ScoredModel]]:
    """Fit built-in models and score the audited people.

    Without ``train``, the cohort is split in two with :func:`phm_audit.models.split_cohort`: models
    are fitted on one half and only the other half is audited, so no one is scored by a model that
    saw their outcome (see :func:`split_for_audit` and :func:`score_models`).

    Parameters
    ----------
    cohort : pandas.DataFrame
        The people to audit (or to split).
    model_names : sequence of str
        Built-in models ('phm-audit models' lists them).
    train : pandas.DataFrame, optional
        A separate training cohort; then every person of ``cohort`` is audited.
    seed : int, default 0
        Seed of the split.
    quiet : bool, default True
        Print nothing; otherwise one line per model on standard error.

    Returns
    -------
    (audited, train, scored) : tuple
        The audited people, the training people, and one :class:`ScoredModel` per model name.
    """
    from phm_audit.models import get_model

    models = [get_model(name) for name in model_names]  # unknown names fail before any work
    audited, train = split_for_audit(cohort, train=train, seed=seed)
    return audited, train, score_models(models, audited, train=train, quiet=quiet)


def _own_scale_target(model: object) -> str | None:
    """The target a model predicts on its own scale (probability or expected value), if any."""
    kind = getattr(model, "kind", "")
    target = getattr(model, "target", None)
    return str(target) if kind in ("actuarial", "clinical") and target else None
