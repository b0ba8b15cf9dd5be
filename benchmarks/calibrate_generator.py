"""Re-derive the generator's logit offsets so recorded prevalence matches QOF 2019/20.

Run after changing the prevalence curves, odds ratios or recording probabilities of
``phm_audit/synth/_causal_model.py``, and paste the printed ``_OFFSETS`` into it::

    .venv/bin/python benchmarks/calibrate_generator.py --n 1000000
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from phm_audit.synth import _causal_model as model
from phm_audit.synth import generate
from phm_audit.synth._describe import TARGETS
from phm_audit.synth._schema import CONDITIONS

QOF = {t.metric.split()[1].rstrip(","): t for t in TARGETS if t.metric.startswith("recorded ")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    for _ in range(args.rounds):
        cohort = generate("england", args.n, seed=12345, n_jobs=2)
        worst = 0.0
        for cond, target in QOF.items():
            now = target.compute(cohort)
            step = math.log(target.target / (1 - target.target)) - math.log(now / (1 - now))
            model._OFFSETS[cond] += 1.1 * step
            worst = max(worst, abs(now / target.target - 1))
        print(f"largest relative error this round: {worst:.4f}")
    print("_OFFSETS: dict[str, float] = {")
    for cond in CONDITIONS:
        print(f'    "{cond}": {np.round(model._OFFSETS[cond], 3)},')
    print("}")


if __name__ == "__main__":
    main()
