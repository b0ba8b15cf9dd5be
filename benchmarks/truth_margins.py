"""How far the planted access gap clears the noise, over seeds (not a test; figures for the notes).

For each seed: generate ``england`` (and ``no_gap``), split, fit ``actuarial_cost`` and ``clinical_need``,
and at the top 3% report IMD quintile 1's share of the flagged, and the unmet-need rate of quintile 1
minus that of quintile 5 (high need = the same number of people with the highest ``need_true_next``).
The test suite asserts, for one seed, that the cost model's gap is positive, that the need model's gap
is smaller, and that the need model flags more of quintile 1; this script shows how often that holds.

    .venv/bin/python benchmarks/truth_margins.py --n 600000 --seeds 17,5,3,8,11,23
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.metrics import r2_score

from phm_audit.audit._stats import top_k_mask
from phm_audit.models import fit_and_score, get_model, split_cohort
from phm_audit.synth import generate


def _margins(scenario: str, n: int, seed: int) -> dict[str, float]:
    cohort = generate(scenario, n, seed=seed, n_jobs=2)
    train, audited = split_cohort(cohort, seed=seed)
    k = int(0.03 * len(audited))
    need = audited["need_true_next"].to_numpy(np.float64)
    q = audited["imd_quintile"].to_numpy()
    high = top_k_mask(need, k)
    out: dict[str, float] = {}
    for name in ("actuarial_cost", "clinical_need"):
        scores = fit_and_score(get_model(name), train, audited)
        flagged = top_k_mask(scores, k)
        unmet = [1 - (flagged & high & (q == g)).sum() / (high & (q == g)).sum() for g in (1, 5)]
        out[f"{name} Q1 share"] = (flagged & (q == 1)).sum() / k
        out[f"{name} unmet gap"] = unmet[0] - unmet[1]
        if name == "actuarial_cost":
            out["actuarial_cost R2"] = r2_score(audited["cost_next"], scores)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=600_000)
    parser.add_argument("--seeds", default="17,5,3")
    parser.add_argument("--scenarios", default="england,no_gap")
    args = parser.parse_args()
    for scenario in args.scenarios.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            start = time.perf_counter()
            m = _margins(scenario, args.n, seed)
            print(
                f"{scenario:8s} seed {seed:3d}  "
                + "  ".join(f"{k}={v:+.3f}" for k, v in m.items())
                + f"  ({time.perf_counter() - start:.0f} s)",
                flush=True,
            )


if __name__ == "__main__":
    main()
