# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Actuarial versus clinical judgement
#
# Mechanical prediction is on average a little more accurate than unaided judgement (Grove et al.
# 2000), but an actuarial tool trained on cost inherits unequal access. Here a simulated structured
# professional judgement (which sees true need through noise) is compared with the actuarial and
# clinical models, and with a combined pathway in which clinicians review the band just below the
# cut-off, as in the US programme Obermeyer et al. studied. The harm it shows: which approach serves
# need better differs by group, and the combined pathway can recover some of the people a cost score
# misses.

# %%
import os

from phm_audit.audit import AuditSpec, ScoredModel, audit, combined_pathway_scores
from phm_audit.models import fit_and_score, get_model, split_cohort
from phm_audit.synth import generate

N = int(os.environ.get("PHM_AUDIT_EXAMPLE_N", "200000"))
cohort = generate("england", N, seed=5)
train, audited = split_cohort(cohort, seed=5)
names = ("actuarial_cost", "clinical_need", "clinician_judgement")
scored = [ScoredModel(n, fit_and_score(get_model(n), train, audited), kind=get_model(n).kind) for n in names]
pathway = combined_pathway_scores(scored[0].scores, scored[2].scores, auto_share=0.015, review_share=0.10)
scored.append(ScoredModel("combined_pathway", pathway, kind="judgement"))
result = audit(
    audited,
    scored,
    AuditSpec(
        attributes=["imd_quintile", "ethnicity"], intersections=[], n_boot=100, analyses=["fairness", "judgement"]
    ),
)

# %%
table = result.get(analysis="judgement", attribute="all")
print(table[["model", "metric", "value", "ci_low", "ci_high"]].to_string(index=False))
for note in result.notes:
    print(note)
