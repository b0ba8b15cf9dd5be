# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Capacity, raising the bar, and unmet need
#
# A risk score matters through the decision it drives: a cut-off, a capacity ("45 virtual-ward beds
# per 100,000"), a bar raised each year to fit a budget. This demo sweeps the capacity from the top
# 0.5% to the top 50%, shows the share of each group's high-need members left unflagged, and then
# shrinks the capacity by 2% a year for five years. The harm it shows: as the bar rises, the people
# dropped are not dropped evenly, and the need left unmet grows fastest where access was already
# poorest.

# %%
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from phm_audit.audit import AuditSpec, ScoredModel, audit
from phm_audit.models import fit_and_score, get_model, split_cohort
from phm_audit.synth import generate

N = int(os.environ.get("PHM_AUDIT_EXAMPLE_N", "200000"))
cohort = generate("england", N, seed=11)
train, audited = split_cohort(cohort, seed=11)
scores = fit_and_score(get_model("actuarial_cost"), train, audited)
spec = AuditSpec(
    attributes=["imd_quintile"],
    intersections=[],
    n_boot=100,
    analyses=["thresholds", "raise_bar", "allocation"],
    operating_points=["per_100k:45", "top_pct:3"],
)
result = audit(audited, [ScoredModel("actuarial_cost", scores)], spec)

# %% [markdown]
# ## Unmet need across capacities

# %%
sweep = result.get(analysis="thresholds", metric="unmet_need_rate")
sweep["share"] = sweep["operating_point"].str.extract(r"top_([\d.]+)pct")[0].astype(float)
fig, ax = plt.subplots(figsize=(7, 4))
for (group, rows), marker in zip(sweep.groupby("group"), "os^vD", strict=False):
    rows = rows.sort_values("share")
    ax.plot(rows["share"], rows["value"], marker=marker, markevery=10, label=f"IMD quintile {group}")
ax.set_xlabel("capacity (% of population flagged)")
ax.set_ylabel("share of high-need members not flagged")
ax.legend()

# %% [markdown]
# ## Raising the bar: 2% fewer places a year

# %%
bar = result.get(analysis="raise_bar", metric="unmet_need_rate")
print(bar.pivot_table(index="operating_point", columns="group", values="value").round(3).to_string())
