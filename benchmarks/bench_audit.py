"""Benchmark the audit core on 1,000,000 people.

Targets (issue 4): the full default audit of two models on 1,000,000 people with 200 bootstrap
replicates in at most 60 s on 2 cores (model training excluded); per-group metrics at one operating
point at least 100 times faster than fairlearn's MetricFrame on the same data, measured side by side.

    .venv/bin/python benchmarks/bench_audit.py
    .venv/bin/python benchmarks/bench_audit.py --n 200000 --analyses fairness calibration
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from fairlearn.metrics import (
    MetricFrame,
    false_negative_rate,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from sklearn.metrics import precision_score

from phm_audit.audit import AuditSpec, ScoredModel, audit
from phm_audit.audit._fairness import fairness_rows
from phm_audit.audit._groups import encode_groups
from phm_audit.audit._operating_points import flag, parse_operating_point
from phm_audit.audit._result import RowBuilder
from phm_audit.audit._spec import ANALYSES
from phm_audit.audit._stats import top_k_mask
from phm_audit.synth import generate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--bootstrap", type=int, default=200)
    parser.add_argument("--analyses", nargs="*", default=list(ANALYSES))
    args = parser.parse_args()
    cohort = generate("england", args.n, seed=1, n_jobs=2)
    rng = np.random.default_rng(0)
    models = [
        ScoredModel(
            "cost_like", cohort["cost_prior"].to_numpy(float) + rng.random(args.n), kind="actuarial", target="cost_next"
        ),
        ScoredModel(
            "need_like",
            cohort["n_ltc_recorded"].to_numpy(float) + 0.01 * cohort["frailty_deficits_recorded"].to_numpy(float),
            kind="clinical",
        ),
    ]
    spec = AuditSpec(n_boot=args.bootstrap, analyses=tuple(args.analyses))
    start = time.perf_counter()
    result = audit(cohort, models, spec)
    full = time.perf_counter() - start
    print(
        f"full default audit, 2 models, {args.n:,} people, {args.bootstrap} replicates, analyses "
        f"{', '.join(args.analyses)}: {full:.1f} s ({len(result.table()):,} rows) (target <= 60 s)"
    )

    # one operating point, one attribute: phm-audit's kernel (point estimates) against MetricFrame
    op = parse_operating_point("top_pct:3")
    scores = models[0].scores
    flagged = flag(scores, op)
    high = top_k_mask(cohort["need_true_next"].to_numpy(float), int(flagged.sum()))
    grouping = encode_groups(cohort, ["imd_quintile"])
    strata = np.zeros(args.n, dtype=np.int64)
    ours = []
    for _ in range(5):
        t = time.perf_counter()
        fairness_rows(
            RowBuilder(),
            model="m",
            grouping=grouping,
            flagged=flagged,
            high_need=high,
            need_stratum=strata,
            stratum_labels=["all"],
            operating_point=op.name,
            target="need",
            high_need_reason="",
            min_group_size=1,
            n_boot=0,
            level=0.95,
            rng=rng,
        )
        ours.append(time.perf_counter() - t)
    t = time.perf_counter()
    _ = MetricFrame(
        metrics={
            "selection_rate": selection_rate,
            "tpr": true_positive_rate,
            "fnr": false_negative_rate,
            "fpr": false_positive_rate,
            "ppv": lambda y, p: precision_score(y, p, zero_division=np.nan),
        },
        y_true=high.astype(int),
        y_pred=flagged.astype(int),
        sensitive_features=cohort["imd_quintile"].to_numpy(),
    ).by_group
    theirs = time.perf_counter() - t
    print(
        f"per-group metrics at top_3pct, imd_quintile: phm-audit {min(ours) * 1000:.1f} ms (best of 5, with "
        f"differences, ratios and the need-stratum rows), fairlearn MetricFrame {theirs:.2f} s: "
        f"{theirs / min(ours):,.0f}x faster (target >= 100x)"
    )


if __name__ == "__main__":
    main()
