# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Audit your own model: a scikit-learn pipeline, or a table of scores
#
# Vendors often share scores but not models, and analysts often have a scikit-learn pipeline of
# their own. This demo saves a pipeline with skops (never pickle), loads it back trusting only the
# types it needs, scores a synthetic cohort, and audits it; then it audits the same scores from a
# CSV keyed by `patient_id`, as a vendor would send them. The harm it shows: a model that never sees
# deprivation can still under-flag the most deprived at equal need.

# %%
import os
import tempfile
from pathlib import Path

import skops.io as sio
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from phm_audit.audit import AuditSpec, ScoredModel, audit
from phm_audit.models import load_scores_table, load_skops_model, split_cohort
from phm_audit.synth import generate

N = int(os.environ.get("PHM_AUDIT_EXAMPLE_N", "200000"))
cohort = generate("england", N, seed=3)
train, audited = split_cohort(cohort, seed=3)
features = ["age", "n_ltc_recorded", "gp_contacts", "outpatient_attendances", "emergency_admissions", "cost_prior"]
pipeline = make_pipeline(StandardScaler(), LinearRegression()).fit(train[features], train["cost_next"])

folder = Path(tempfile.mkdtemp())
sio.dump(pipeline, folder / "my_model.skops")
model = load_skops_model(folder / "my_model.skops")
scores = model.score(audited)

# %%
spec = AuditSpec(attributes=["imd_quintile"], intersections=[], n_boot=100, analyses=["fairness", "calibration"])
result = audit(audited, [ScoredModel("my_model", scores)], spec)
print(
    result.get(metric="selection_ratio_at_equal_need", operating_point="top_3pct")[
        ["group", "value", "ci_low", "ci_high", "n"]
    ].to_string(index=False)
)

# %% [markdown]
# ## The same scores as a vendor's table

# %%
audited[["patient_id"]].assign(score=scores).to_csv(folder / "vendor_scores.csv", index=False)
vendor = load_scores_table(folder / "vendor_scores.csv", audited)
again = audit(audited, [ScoredModel("vendor", vendor.score(audited))], spec)
print(
    again.get(metric="label_gap_at_equal_score", target="need_true_next")[
        ["group", "value", "ci_low", "ci_high"]
    ].to_string(index=False)
)
