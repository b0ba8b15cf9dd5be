"""Glue between the stages for the command line and the demo: train built-in models and score a cohort."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

import pandas as pd

from phm_audit.audit._spec import ScoredModel

__all__ = ["train_and_score"]


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
    saw their outcome.

    Returns
    -------
    (audited, train, scored) : tuple
        The audited people, the training people, and one :class:`ScoredModel` per model name.
    """
    from phm_audit.models import fit_and_score, get_model, split_cohort

    models = [get_model(name) for name in model_names]  # unknown names fail before any work
    if train is None:
        train, audited = split_cohort(cohort, seed=seed)
    else:
        audited = cohort
    scored = []
    for model in models:
        start = time.perf_counter()
        scores = fit_and_score(model, train, audited)
        if not quiet:
            print(f"  {model.name}: fitted and scored in {time.perf_counter() - start:.1f} s", file=sys.stderr)
        scored.append(ScoredModel(model.name, scores, kind=model.kind, target=_own_scale_target(model)))
    return audited, train, scored


def _own_scale_target(model: object) -> str | None:
    """The target a model predicts on its own scale (probability or expected value), if any."""
    kind = getattr(model, "kind", "")
    target = getattr(model, "target", None)
    return str(target) if kind in ("actuarial", "clinical") and target else None
