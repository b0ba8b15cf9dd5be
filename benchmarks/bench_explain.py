"""Benchmark explanations: a built-in tree model explained on a 5,000-person sample.

Target (issue 7): at most 30 s wall-clock on 2 cores for a built-in tree model on a 5,000-person
sample, with the default audit spec (five protected attributes, 200 bootstrap replicates). Fitting
the model is timed apart and is not part of the target.

    .venv/bin/python benchmarks/bench_explain.py                          # actuarial_cost, 5,000 people
    .venv/bin/python benchmarks/bench_explain.py --model emergency_admission --repeat 2
    .venv/bin/python benchmarks/bench_explain.py --sample-size 20000

Each line printed is one JSON record: the model, the explainer, the sample and background sizes and
the seconds taken by :func:`phm_audit.audit._explain.explain`.
"""

from __future__ import annotations

import argparse
import json
import os
import time

from phm_audit.audit import AuditSpec, explain
from phm_audit.models import get_model
from phm_audit.synth import generate

TARGET_SECONDS = 30.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", help="built-in model (repeatable; default actuarial_cost)")
    parser.add_argument("--n", type=int, default=60_000, help="people in the training and in the audited cohort")
    parser.add_argument("--sample-size", type=int, default=5_000)
    parser.add_argument("--background-size", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=1, help="time the explanation this many times")
    args = parser.parse_args()
    train = generate("england", args.n, seed=1)
    audited = generate("england", args.n, seed=2)
    spec = AuditSpec()
    for name in args.model or ["actuarial_cost"]:
        start = time.perf_counter()
        model = get_model(name).fit(train)
        fit_seconds = time.perf_counter() - start
        for run in range(args.repeat):
            start = time.perf_counter()
            result = explain(
                model, audited, spec, sample_size=args.sample_size, background_size=args.background_size, seed=run
            )
            seconds = time.perf_counter() - start
            record = {
                "model": name,
                "explainer": result.models[0]["explainer"],
                "sample_size": args.sample_size,
                "background_size": result.models[0]["explain_background_size"],
                "rows": len(result.table()),
                "cpus": os.cpu_count(),
                "fit_seconds": round(fit_seconds, 2),
                "seconds": round(seconds, 2),
                "within_target": seconds <= TARGET_SECONDS,
            }
            print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
