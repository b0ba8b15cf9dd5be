"""The audit: bias across groups, calibration against cost and need, referral thresholds.

Examples
--------
>>> from phm_audit.synth import generate
>>> from phm_audit.audit import AuditSpec, audit
>>> cohort = generate("england", n=5_000, seed=1)
>>> spec = AuditSpec(attributes=["sex"], intersections=[], n_boot=10, analyses=["fairness", "calibration"])
>>> result = audit(cohort, {"prior_cost": cohort["cost_prior"].to_numpy()}, spec)
>>> sorted(result.table()["analysis"].unique())
['calibration', 'fairness']
"""

from phm_audit.audit._analyses import REGISTRY as ANALYSIS_REGISTRY
from phm_audit.audit._analyses import Analysis, LabelScores
from phm_audit.audit._audit import audit
from phm_audit.audit._explain import attributions, explain, explain_rows_for
from phm_audit.audit._groups import Grouping, encode_groups
from phm_audit.audit._judgement import combined_pathway_scores
from phm_audit.audit._label_choice import label_choice_scores
from phm_audit.audit._metrics import METRICS, MetricDecl, lookup
from phm_audit.audit._operating_points import OperatingPoint, describe_point, flag, parse_operating_point, resolve_k
from phm_audit.audit._result import METRIC_COLUMNS, REASON_CODES, AuditResult
from phm_audit.audit._spec import AuditSpec, ScoredModel, is_cost_label
from phm_audit.audit._tables import ENGINES, audit_table

__all__ = [
    "ANALYSIS_REGISTRY",
    "ENGINES",
    "METRICS",
    "METRIC_COLUMNS",
    "REASON_CODES",
    "Analysis",
    "AuditResult",
    "AuditSpec",
    "Grouping",
    "LabelScores",
    "MetricDecl",
    "OperatingPoint",
    "ScoredModel",
    "attributions",
    "audit",
    "audit_table",
    "combined_pathway_scores",
    "describe_point",
    "encode_groups",
    "explain",
    "explain_rows_for",
    "flag",
    "is_cost_label",
    "label_choice_scores",
    "lookup",
    "parse_operating_point",
    "resolve_k",
]
