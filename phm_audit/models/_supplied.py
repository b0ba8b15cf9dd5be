"""Models that users bring: a saved scikit-learn estimator, a table of scores, a Python callable.

Nothing a user supplies is trusted by default. A skops file is read as data and only trusted types
are built; a pickle is refused unless the user says ``allow_pickle`` (loading a pickle runs code);
a table of scores is checked person by person against the cohort; a callable's output is checked
for shape and values.
"""

from phm_audit.models._supplied_base import SuppliedRiskModel
from phm_audit.models._supplied_callable import CallableRiskModel, load_callable
from phm_audit.models._supplied_file import (
    PICKLE_SUFFIXES,
    SKOPS_SUFFIXES,
    EstimatorRiskModel,
    load_model_file,
    load_pickle_model,
    load_skops_model,
    parse_feature_map,
)
from phm_audit.models._supplied_scores import ScoresTableRiskModel, load_scores_table

__all__ = [
    "PICKLE_SUFFIXES",
    "SKOPS_SUFFIXES",
    "CallableRiskModel",
    "EstimatorRiskModel",
    "ScoresTableRiskModel",
    "SuppliedRiskModel",
    "load_callable",
    "load_model_file",
    "load_pickle_model",
    "load_scores_table",
    "load_skops_model",
    "parse_feature_map",
]
