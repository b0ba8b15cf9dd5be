"""The ``RiskModel`` protocol: what any risk-stratification model must offer to be audited."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

__all__ = ["LABELS", "MODEL_KINDS", "RiskModel"]

#: Observed outcome-year labels a learner may be trained on (Obermeyer et al. 2019 compared the first
#: three; ``emergency_admission_next`` is the label of QAdmissions-like tools).
LABELS: tuple[str, ...] = ("cost_next", "avoidable_cost_next", "n_conditions_next", "emergency_admission_next")

#: What a model is: ``actuarial`` (predicts cost), ``clinical`` (predicts a health outcome), ``rule``
#: (a fixed formula, not trained), ``judgement`` (a simulated clinician) or ``supplied`` (brought by
#: the user: a saved estimator, a table of scores or a Python callable).
MODEL_KINDS: tuple[str, ...] = ("actuarial", "clinical", "rule", "judgement", "supplied")


@runtime_checkable
class RiskModel(Protocol):
    """A risk-stratification model as phm-audit sees it.

    Any object with these attributes and methods can be audited; :func:`check_risk_model` tells a
    model author what theirs gets wrong.

    Attributes
    ----------
    name : str
        Name used in results and reports.
    kind : str
        One of :data:`MODEL_KINDS`.
    target : str
        The outcome the score stands for (a label such as ``cost_next``, or ``"unknown"`` for a
        supplied model that does not say).
    features : list of str
        The cohort columns the model reads. Only models of kind ``judgement`` may read ground-truth
        (``truth``) columns; no model reads outcome-year ``label`` columns when it scores.

    Methods
    -------
    fit(cohort)
        Learn from the training people and return ``self`` (a no-op for rules and supplied models).
    score(cohort)
        Return one finite ``float64`` per row of ``cohort``, in its row order; higher = higher risk.
    """

    name: str
    kind: str
    target: str
    features: list[str]

    def fit(self, cohort: pd.DataFrame) -> RiskModel:
        """Fit on ``cohort`` and return ``self``."""
        ...

    def score(self, cohort: pd.DataFrame) -> np.ndarray:
        """Return the risk score of every row of ``cohort`` (float64, finite, higher = higher risk)."""
        ...
