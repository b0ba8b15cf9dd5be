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

from phm_audit.audit._audit import audit
from phm_audit.audit._explain import attributions, explain, explain_rows_for
from phm_audit.audit._groups import Grouping, encode_groups
from phm_audit.audit._judgement import combined_pathway_scores
from phm_audit.audit._label_choice import label_choice_scores
from phm_audit.audit._operating_points import OperatingPoint, flag, parse_operating_point, resolve_k
from phm_audit.audit._result import METRIC_COLUMNS, AuditResult
from phm_audit.audit._spec import AuditSpec, ScoredModel

__all__ = [
    "METRIC_COLUMNS",
    "AuditResult",
    "AuditSpec",
    "Grouping",
    "OperatingPoint",
    "ScoredModel",
    "attributions",
    "audit",
    "combined_pathway_scores",
    "encode_groups",
    "explain",
    "explain_rows_for",
    "flag",
    "label_choice_scores",
    "parse_operating_point",
    "resolve_k",
]
