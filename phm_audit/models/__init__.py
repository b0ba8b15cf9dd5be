"""Risk models: the ``RiskModel`` protocol, built-in models, and loaders for models users bring.

Built-in models stand for what health systems use: gradient-boosted learners trained on cost,
avoidable cost, chronic conditions or emergency admission (``actuarial_cost``,
``actuarial_avoidable_cost``, ``clinical_need``, ``emergency_admission``), fixed rules
(``ltc_count``, ``frailty_index``, ``prior_cost``) and a simulated clinician
(``clinician_judgement``). Learners are fitted on people who are never audited
(:func:`split_cohort`). Supplied models are loaded without trusting them: skops files build only
trusted types, pickles need ``allow_pickle``, tables of scores and callables are checked.

Examples
--------
>>> from phm_audit.synth import generate
>>> from phm_audit.models import fit_and_score, get_model, split_cohort
>>> train, audit = split_cohort(generate("england", 4000, seed=2), seed=2)
>>> scores = fit_and_score(get_model("emergency_admission"), train, audit)
>>> scores.shape == (len(audit),) and bool(((scores >= 0) & (scores <= 1)).all())
True
"""

from phm_audit.models._builtin import (
    ACTUARIAL_FEATURES,
    EMERGENCY_FEATURES,
    ClinicianJudgement,
    GradientBoostingRiskModel,
    RuleRiskModel,
)
from phm_audit.models._conformance import check_risk_model
from phm_audit.models._protocol import LABELS, MODEL_KINDS, RiskModel
from phm_audit.models._registry import get_model, is_learner, list_models
from phm_audit.models._split import check_disjoint, fit_and_score, split_cohort
from phm_audit.models._supplied import (
    CallableRiskModel,
    EstimatorRiskModel,
    ScoresTableRiskModel,
    load_callable,
    load_model_file,
    load_pickle_model,
    load_scores_table,
    load_skops_model,
)

__all__ = [
    "ACTUARIAL_FEATURES",
    "EMERGENCY_FEATURES",
    "LABELS",
    "MODEL_KINDS",
    "CallableRiskModel",
    "ClinicianJudgement",
    "EstimatorRiskModel",
    "GradientBoostingRiskModel",
    "RiskModel",
    "RuleRiskModel",
    "ScoresTableRiskModel",
    "check_disjoint",
    "check_risk_model",
    "fit_and_score",
    "get_model",
    "is_learner",
    "list_models",
    "load_callable",
    "load_model_file",
    "load_pickle_model",
    "load_scores_table",
    "load_skops_model",
    "split_cohort",
]
