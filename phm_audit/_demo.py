"""``phm-audit demo``: the whole product in one command, on the embedded default scenario.

Generates the default cohort, fits every built-in model on one half, audits them on the other half
(bias, cost-versus-need calibration, label choice, thresholds, allocation, net benefit, judgement,
explanations) and writes the report to ``reports/demo/``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from phm_audit._argtypes import at_least
from phm_audit._progress import Progress

DEMO_MODELS = (
    "actuarial_cost",
    "actuarial_avoidable_cost",
    "clinical_need",
    "emergency_admission",
    "ltc_count",
    "frailty_index",
    "prior_cost",
    "clinician_judgement",
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo", help="generate the default cohort, audit the built-in models, write reports/demo/", description=__doc__
    )
    p.add_argument("--n", type=at_least(1000), default=200_000, help="people to generate (default: 200000)")
    p.add_argument("--seed", type=int, default=7, help="random seed (default: 7)")
    p.add_argument("--scenario", default="england", help="scenario (default: england)")
    p.add_argument("--out", default="reports/demo", help="report folder (default: reports/demo)")
    p.add_argument("--bootstrap", type=int, default=200, help="bootstrap replicates (default: 200)")
    p.add_argument("--no-explain", action="store_true", help="skip the SHAP explanations")
    p.add_argument("--deterministic", action="store_true", help="omit the creation time (for comparisons)")
    p.add_argument("--quiet", action="store_true", help="print only the report's path")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from phm_audit._pipeline import train_and_score
    from phm_audit.audit import AuditSpec, ScoredModel, audit
    from phm_audit.audit._judgement import combined_pathway_scores
    from phm_audit.audit._label_choice import label_choice
    from phm_audit.report import write_report
    from phm_audit.synth import generate

    start = time.perf_counter()
    progress = Progress(quiet=args.quiet)
    with progress.step(f"generating {args.n:,} people ({args.scenario}, seed {args.seed})"):
        cohort = generate(args.scenario, args.n, seed=args.seed, n_jobs=-1)
    with progress.step(f"fitting {len(DEMO_MODELS)} built-in models on half the cohort and scoring the other half"):
        audited, train, scored = train_and_score(cohort, DEMO_MODELS, seed=args.seed)
    by_name = {m.name: m for m in scored}
    pathway = combined_pathway_scores(
        by_name["actuarial_cost"].scores, by_name["clinician_judgement"].scores, auto_share=0.015, review_share=0.10
    )
    scored.append(ScoredModel("combined_pathway", pathway, kind="judgement"))
    spec = AuditSpec(n_boot=args.bootstrap, seed=args.seed)
    with progress.step(f"auditing {len(scored)} models on {len(audited):,} people"):
        result = audit(audited, scored, spec)
    with progress.step("retraining the cost learner on each label (label choice)"):
        result = result.merge(label_choice(train, audited, spec))
    if not args.no_explain:
        from phm_audit.audit._explain import explain
        from phm_audit.models import get_model

        with progress.step("explaining actuarial_cost with SHAP on a 5,000-person sample"):
            model = get_model("actuarial_cost").fit(train)
            result = result.merge(explain(model, audited, spec, sample_size=5000, seed=args.seed))
    provenance = {
        "command": "phm-audit demo",
        "scenario": args.scenario,
        "seed": args.seed,
        "n_generated": args.n,
        "n_trained": len(train),
        "n_audited": len(audited),
    }
    with progress.step(f"writing the report to {args.out}"):
        path = write_report(
            result, Path(args.out), name="demo", provenance=provenance, deterministic=args.deterministic
        )
    print(f"Report: {Path(path) / 'index.html'}  ({time.perf_counter() - start:.0f} s)")
    if not args.quiet:
        from phm_audit.report import FindingRules, findings

        # the demo's story is deprivation and ethnicity; show those findings first, then the rest
        ranked = findings(result, FindingRules())
        headline = [f for f in ranked if f.grade == "flag" and f.attribute in ("imd_quintile", "ethnicity")]
        top = (headline + [f for f in ranked if f not in headline])[:5]
        if top:
            print("Top findings:")
            for f in top:
                print(f"  [{f.grade}] {f.text}")
    sys.stdout.flush()
    return 0
