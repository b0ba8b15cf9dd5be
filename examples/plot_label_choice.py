# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Cost versus need: the label-choice mechanism on an English population
#
# A risk score trained to predict next year's **cost** learns that people who receive less care cost
# less. Where access to planned care is poorer at the same level of illness — in the most deprived
# areas and for some minority ethnic groups — the score ranks those people lower than their need
# warrants, and fewer of them are offered case management (Obermeyer et al., *Science* 2019).
#
# This demo generates a synthetic English population whose ground truth we know, trains the same
# learner on cost and on recorded chronic conditions, and compares, at the same score, how sick and
# how costly each group is. The harm it shows: at equal score, people in the most deprived fifth
# are sicker than the least deprived, so a cost label quietly under-serves them.

# %%
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from phm_audit.audit import AuditSpec, ScoredModel, audit
from phm_audit.models import fit_and_score, get_model, split_cohort
from phm_audit.pipeline import label_choice
from phm_audit.synth import generate

N = int(os.environ.get("PHM_AUDIT_EXAMPLE_N", "200000"))
cohort = generate("england", N, seed=7)
train, audited = split_cohort(cohort, seed=7)

# %% [markdown]
# ## One learner, two labels
# `actuarial_cost` predicts next year's cost; `clinical_need` is the same learner trained on the
# number of recorded chronic conditions.

# %%
scores = {name: fit_and_score(get_model(name), train, audited) for name in ("actuarial_cost", "clinical_need")}
spec = AuditSpec(
    attributes=["imd_quintile", "ethnicity"], intersections=[], n_boot=100, analyses=["fairness", "calibration"]
)
result = audit(audited, [ScoredModel(k, v) for k, v in scores.items()], spec)
gaps = result.get(metric="label_gap_at_equal_score", target="need_true_next", model="actuarial_cost")
print(gaps[["attribute", "group", "value", "ci_low", "ci_high", "n"]].to_string(index=False))

# %% [markdown]
# ## At the same score, who is sicker?
# Mean true need and mean cost by score decile, for the most and least deprived fifths.

# %%
curves = result.curves()
fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharex=True)
for ax, target in zip(axes, ("need_true_next", "cost_next"), strict=True):
    for group, style in (("1", "o-"), ("5", "s--")):
        c = curves[
            (curves["model"] == "actuarial_cost")
            & (curves["attribute"] == "imd_quintile")
            & (curves["group"] == group)
            & (curves["target"] == target)
            & (curves["bins"] == "decile")
        ]
        ax.plot(c["bin"] + 1, c["mean"], style, label=f"IMD quintile {group}")
    ax.set_xlabel("actuarial_cost score decile")
    ax.set_ylabel(f"mean {target}")
    ax.legend()
fig.tight_layout()

# %% [markdown]
# ## Retrain on each label: who is in the top 3%?

# %%
choice = label_choice(train, audited, spec)
shares = choice.get(metric="flagged_share", attribute="imd_quintile", group="1")
print(shares[["model", "value", "ci_low", "ci_high"]].to_string(index=False))
