"""Side by side in one process: the public ``audit()`` for one attribute at one operating point against
aequitas's ``Group().get_crosstabs`` + ``Bias().get_disparity_predefined_groups`` on the same flags.

Target (issue 13): on 1,000,000 people, ``audit()`` (fairness only, one attribute, top 3%, no bootstrap)
faster than aequitas's crosstabs and disparities of the same flags. aequitas is not a dependency of
phm-audit; run this in an environment that has both::

    python -m venv /tmp/aeq && /tmp/aeq/bin/pip install aequitas -e .
    /tmp/aeq/bin/python benchmarks/bench_vs_aequitas.py [--n 1000000] [--repeats 5]

What is timed, on the same arrays: (a) ``audit(cohort, {"m": scores}, spec)`` with
``AuditSpec(attributes=["ethnicity"], intersections=[], operating_points=["top_pct:3"],
analyses=["fairness"], n_boot=0)``: who is flagged, who has the highest need, every rate and
disparity of the group with its n and the reference group's; (b) aequitas on a frame of the flags
(``score``), the high-need label (``label_value``) and the attribute, both computed beforehand, outside
the timing (in aequitas's favour): ``get_crosstabs`` then ``get_disparity_predefined_groups`` against
White. The best and median of ``--repeats`` runs are printed.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import pandas as pd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    from aequitas.bias import Bias
    from aequitas.group import Group

    from phm_audit.audit import AuditSpec, audit, flag
    from phm_audit.audit._stats import top_k_mask
    from phm_audit.synth import generate

    cohort = generate("england", args.n, seed=1, n_jobs=2)
    scores = cohort["cost_prior"].to_numpy(np.float64)
    spec = AuditSpec(
        attributes=["ethnicity"], intersections=[], operating_points=["top_pct:3"], analyses=["fairness"], n_boot=0
    )
    flagged = flag(scores, "top_pct:3")
    high = top_k_mask(cohort["need_true_next"].to_numpy(np.float64), int(flagged.sum()))
    frame = pd.DataFrame(
        {"score": flagged.astype(int), "label_value": high.astype(int), "ethnicity": cohort["ethnicity"].astype(str)}
    )

    def ours() -> None:
        audit(cohort, {"m": scores}, spec)

    def theirs() -> None:
        xtab, _ = Group().get_crosstabs(frame)
        Bias().get_disparity_predefined_groups(xtab, original_df=frame, ref_groups_dict={"ethnicity": "White"})

    times: dict[str, list[float]] = {"audit": [], "aequitas": []}
    ours(), theirs()  # warm up
    for _ in range(args.repeats):
        for name, run in (("audit", ours), ("aequitas", theirs)):
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    for name, values in times.items():
        print(f"{name}: best {min(values):.3f} s, median {statistics.median(values):.3f} s over {args.repeats} runs")
    ratio = min(times["audit"]) / min(times["aequitas"])
    print(f"audit / aequitas = {ratio:.2f} (target < 1): {'met' if ratio < 1 else 'NOT met'}")


if __name__ == "__main__":
    main()
