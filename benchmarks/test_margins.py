"""How often each statistical test of the generator would fail when the code is right (not a test).

The tests in ``tests/test_synth_truth.py`` and ``tests/test_synth_realism.py`` compare a statistic of one
cohort with a bound. This script draws that statistic over many seeds (never the seeds the tests use, nor
those the defaults were chosen on), and for each bound prints the mean, the spread over seeds, how many
spreads the bound sits from the mean, and the normal-approximation probability of crossing it. A test's
docstring quotes these figures; each should be below 1 in 1,000.

    .venv/bin/python benchmarks/test_margins.py --seeds 301-310
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy.stats import norm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from test_synth_truth import _groups, _ratio

from phm_audit.synth import generate, load_scenario
from phm_audit.synth._describe import TARGETS

Check = tuple[str, Callable[..., float], float, float]  # name, statistic, lowest passing, highest passing


def _exact_checks() -> list[Check]:
    england = load_scenario("england")
    checks: list[Check] = []
    for group, knob in (
        ("imd_q1", "planned_access.imd_q1"),
        ("asian", "planned_access.asian"),
        ("black", "planned_access.black"),
    ):
        factor = england[knob]
        checks.append(
            (
                f"planned ratio {group}",
                lambda df, g=group: _ratio(df, _groups(df)[g], "planned_cost_next", "need_planned_true_next"),
                factor - 0.025,
                factor + 0.025,
            )
        )

        def total_gap(df, g=group):
            groups = _groups(df)
            return _ratio(df, groups["reference"], "cost_next", "need_true_next") - _ratio(
                df, groups[g], "cost_next", "need_true_next"
            )

        def emergency_gap(df, g=group):
            groups = _groups(df)
            return _ratio(df, groups[g], "emergency_cost_next", "need_true_next") - _ratio(
                df, groups["reference"], "emergency_cost_next", "need_true_next"
            )

        checks.append((f"total cost gap {group} (ref - group)", total_gap, 0.025, np.inf))
        checks.append((f"emergency excess {group}", emergency_gap, 0.0, np.inf))
    checks.append(
        (
            "planned ratio reference",
            lambda df: _ratio(df, _groups(df)["reference"], "planned_cost_next", "need_planned_true_next"),
            0.985,
            1.015,
        )
    )
    checks.append(
        (
            "total ratio reference",
            lambda df: _ratio(df, _groups(df)["reference"], "cost_next", "need_true_next"),
            0.985,
            1.015,
        )
    )
    return checks


def _england_checks() -> list[Check]:
    factor = load_scenario("england")["planned_access.imd_q1"]

    def q1_over_ref(df):
        g = _groups(df)
        return _ratio(df, g["imd_q1"], "planned_cost_next", "need_planned_true_next") / _ratio(
            df, g["reference"], "planned_cost_next", "need_planned_true_next"
        )

    def recording_gap(df):
        g = _groups(df)
        has = df["has_diabetes"]
        return df.loc[g["reference"] & has, "rec_diabetes"].mean() - df.loc[g["imd_q1"] & has, "rec_diabetes"].mean()

    checks: list[Check] = [
        ("planned q1/ref with practices", q1_over_ref, factor - 0.04, factor + 0.04),
        ("diabetes recording gap", recording_gap, 0.05, np.inf),
    ]
    checks += [(f"target: {t.metric}", t.compute, t.low, t.high) for t in TARGETS]
    return checks


def _no_gap_checks() -> list[Check]:
    checks: list[Check] = []
    for group in ("imd_q1", "asian", "black"):
        checks.append(
            (
                f"no_gap planned {group}",
                lambda df, g=group: _ratio(df, _groups(df)[g], "planned_cost_next", "need_planned_true_next"),
                0.975,
                1.025,
            )
        )
        checks.append(
            (
                f"no_gap total {group}",
                lambda df, g=group: _ratio(df, _groups(df)[g], "cost_next", "need_true_next"),
                0.96,
                1.04,
            )
        )
    checks.append(
        (
            "no_gap cost/need",
            lambda df: df["cost_next"].astype(float).sum() / df["need_true_next"].astype(float).sum(),
            0.98,
            1.02,
        )
    )
    return checks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="301-310", help="a range a-b or a comma-separated list")
    parser.add_argument("--n", type=int, default=400_000)
    args = parser.parse_args()
    if "-" in args.seeds:
        a, b = (int(x) for x in args.seeds.split("-"))
        seeds = list(range(a, b + 1))
    else:
        seeds = [int(s) for s in args.seeds.split(",")]
    plans = [
        (
            "england (practice_access_sd 0)",
            dict(scenario="england", overrides={"practice_access_sd": 0}),
            _exact_checks(),
        ),
        ("england", dict(scenario="england", overrides=None), _england_checks()),
        ("no_gap", dict(scenario="no_gap", overrides=None), _no_gap_checks()),
    ]
    for title, how, checks in plans:
        values: dict[str, list[float]] = defaultdict(list)
        start = time.perf_counter()
        for seed in seeds:
            df = generate(how["scenario"], args.n, seed=seed, n_jobs=2, overrides=how["overrides"])
            for name, stat, _, _ in checks:
                values[name].append(float(stat(df)))
        print(f"\n{title}: {args.n:,} people, seeds {seeds[0]}-{seeds[-1]} ({time.perf_counter() - start:.0f} s)")
        print(f"{'statistic':58s} {'mean':>9s} {'spread':>8s} {'low':>8s} {'high':>8s} {'spreads':>8s} {'P(fail)':>9s}")
        for name, _, low, high in checks:
            v = np.asarray(values[name])
            mean, sd = float(v.mean()), float(v.std(ddof=1))
            dist = min(mean - low, high - mean) / sd if sd > 0 else np.inf
            p = norm.sf(max(mean - low, 0) / sd) + norm.sf(max(high - mean, 0) / sd) if sd > 0 else 0.0
            flag = "  <-- above 1e-3" if p > 1e-3 else ""
            print(f"{name[:58]:58s} {mean:9.4f} {sd:8.4f} {low:8.4f} {high:8.4f} {dist:8.1f} {p:9.1e}{flag}")


if __name__ == "__main__":
    main()
