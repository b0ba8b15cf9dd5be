"""Benchmark the threshold sweep against a loop of fairlearn MetricFrame calls and a bare numpy floor.

Targets: on 1,000,000 people, one model and one attribute (``imd_quintile``, 5 groups), a sweep of
100 operating points is at least 1000x faster than computing the same per-group metrics with one
fairlearn ``MetricFrame`` per operating point, and within 5x of the bare numpy floor (one stable
argsort of the scores plus a cumulative sum of the one-hot group matrix in that order).

    .venv/bin/python benchmarks/bench_sweep.py                      # 1,000,000 people, 5 MetricFrame calls
    .venv/bin/python benchmarks/bench_sweep.py --n 200000 --mf-thresholds 3

What is timed, in the same process and on the same arrays:

(a) ``threshold_sweep(scores, groups, need=need)``: 100 capacities from 0.5% to 50%, 8 metrics per
    group and for the whole population, default high need (the k people with the highest need), as
    a tidy DataFrame. Best and median of ``--repeats`` runs.
(b) per operating point: ``flag(scores, "top_k:k")`` and one ``MetricFrame`` with selection_rate,
    tpr, fpr, ppv (scikit-learn ``precision_score``, ``zero_division=nan``), fnr (= unmet_need_rate),
    need_captured (a custom metric with ``need`` as a sample parameter) and the flagged and high-need
    counts (from which flagged_share and high_need_share follow). The high-need mask of each
    capacity is taken from a need order computed once, outside the timing (in fairlearn's favour).
    Only ``--mf-thresholds`` operating points are timed; their mean is multiplied by the sweep's
    number of operating points: the MetricFrame-loop total is an EXTRAPOLATION, and is printed as one.
(c) the floor: ``order = np.argsort(-scores, kind="stable"); np.cumsum(onehot[order], axis=0)``,
    the one-hot matrix built beforehand; the faster of float64 and int32 one-hot is used.

Scores are ``cost_prior`` plus uniform noise below 0.001 GBP (so the order is not dominated by ties
at 0), groups ``imd_quintile``, need ``need_true_next``, from
``phm_audit.synth.generate("england", n, seed=1, n_jobs=2)``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np


def _times(fn: Callable[[], Any], repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def _floor(scores: np.ndarray, onehot: np.ndarray) -> np.ndarray:
    order = np.argsort(-scores, kind="stable")
    return np.cumsum(onehot[order], axis=0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="people (default 1,000,000)")
    parser.add_argument("--mf-thresholds", type=int, default=5, help="MetricFrame calls timed (default 5)")
    parser.add_argument("--repeats", type=int, default=5, help="runs of the sweep and of the floor (default 5)")
    args = parser.parse_args(argv)

    import fairlearn
    import pandas as pd
    from fairlearn.metrics import (
        MetricFrame,
        false_negative_rate,
        false_positive_rate,
        selection_rate,
        true_positive_rate,
    )
    from sklearn.metrics import precision_score

    from phm_audit.audit._operating_points import flag
    from phm_audit.audit._sweep import DEFAULT_SWEEP_FRACTIONS, threshold_sweep
    from phm_audit.synth import generate

    print(
        f"numpy {np.__version__}, pandas {pd.__version__}, fairlearn {fairlearn.__version__}, "
        f"python {platform.python_version()}, {os.cpu_count()} CPUs, load average at start "
        f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    start = time.perf_counter()
    cohort = generate("england", args.n, seed=1, n_jobs=2)
    print(f"generated {len(cohort):,} people in {time.perf_counter() - start:.1f} s")
    rng = np.random.default_rng(0)
    scores = cohort["cost_prior"].to_numpy(np.float64) + rng.random(len(cohort)) * 1e-3
    groups = cohort["imd_quintile"].to_numpy()
    need = cohort["need_true_next"].to_numpy(np.float64)
    n = scores.size
    fractions = np.asarray(DEFAULT_SWEEP_FRACTIONS)
    n_points = fractions.size

    # (a) the sweep
    threshold_sweep(scores, groups, need=need)  # warm-up (imports, first-touch allocations)
    sweep_times = _times(lambda: threshold_sweep(scores, groups, need=need), args.repeats)
    sweep = threshold_sweep(scores, groups, need=need)
    sweep_best = min(sweep_times)
    print(
        f"\n(a) threshold_sweep, {n_points} operating points x {sweep['group'].nunique()} groups x "
        f"{sweep['metric'].nunique()} metrics = {len(sweep):,} rows: best {sweep_best:.3f} s, "
        f"median {statistics.median(sweep_times):.3f} s over {args.repeats} runs"
    )

    # (c) the floor
    codes = groups.astype(np.int64) - 1
    onehot64 = np.zeros((n, 5), dtype=np.float64)
    onehot64[np.arange(n), codes] = 1.0
    onehot32 = onehot64.astype(np.int32)
    floor64 = _times(lambda: _floor(scores, onehot64), args.repeats)
    floor32 = _times(lambda: _floor(scores, onehot32), args.repeats)
    floor_times = floor64 if min(floor64) <= min(floor32) else floor32
    floor_best = min(floor_times)
    print(
        f"(c) numpy floor (stable argsort + cumsum of one-hot groups): float64 best {min(floor64):.3f} s, "
        f"int32 best {min(floor32):.3f} s; floor = {floor_best:.3f} s "
        f"(median {statistics.median(floor_times):.3f} s)"
    )

    # (b) one MetricFrame per operating point, on a few operating points spread over the sweep
    need_order = np.argsort(-need, kind="stable")  # outside the timing, in fairlearn's favour
    picks = np.unique(np.linspace(0, n_points - 1, max(1, args.mf_thresholds)).round().astype(int))

    def need_captured(y_true: np.ndarray, y_pred: np.ndarray, need: np.ndarray) -> float:
        return float(np.sum(need * y_pred) / np.sum(need))

    def count_flagged(y_true: np.ndarray, y_pred: np.ndarray) -> float:
        return float(np.sum(y_pred))

    def count_high(y_true: np.ndarray, y_pred: np.ndarray) -> float:
        return float(np.sum(y_true))

    metrics = {
        "selection_rate": selection_rate,
        "tpr": true_positive_rate,
        "fpr": false_positive_rate,
        "ppv": partial(precision_score, zero_division=np.nan),
        "unmet_need_rate": false_negative_rate,
        "need_captured": need_captured,
        "n_flagged": count_flagged,
        "n_high_need": count_high,
    }
    sensitive = pd.Series(groups, name="imd_quintile")
    mf_times = []
    worst = 0.0
    print(f"(b) fairlearn MetricFrame, one per operating point, timing {picks.size} of {n_points}:")
    for index in picks:
        k = int(sweep["k"].iloc[index])
        high = np.zeros(n, dtype=bool)
        high[need_order[:k]] = True
        start = time.perf_counter()
        flagged = flag(scores, f"top_k:{k}")
        frame = MetricFrame(
            metrics=metrics,
            y_true=high,
            y_pred=flagged,
            sensitive_features=sensitive,
            sample_params={"need_captured": {"need": need}},
        )
        by_group = frame.by_group
        shares = by_group[["n_flagged", "n_high_need"]] / by_group[["n_flagged", "n_high_need"]].sum()
        mf_times.append(time.perf_counter() - start)
        # sanity check: the two agree at this operating point
        ours = sweep[(sweep["fraction"] == fractions[index]) & (sweep["group"] != "all")]
        ours = ours.pivot(index="group", columns="metric", values="value")
        ours.index = ours.index.astype(int)
        for metric in ("selection_rate", "tpr", "fpr", "ppv", "unmet_need_rate", "need_captured"):
            worst = max(worst, float(np.max(np.abs(ours.loc[by_group.index, metric] - by_group[metric]))))
        worst = max(worst, float(np.max(np.abs(ours.loc[by_group.index, "flagged_share"] - shares["n_flagged"]))))
        print(f"    k = {k:>7,} ({100 * fractions[index]:.1f}%): {mf_times[-1]:.2f} s")
    mf_mean = statistics.fmean(mf_times)
    mf_total = mf_mean * n_points
    print(
        f"    mean {mf_mean:.2f} s per operating point; EXTRAPOLATED to {n_points} operating points: "
        f"{mf_total:.0f} s (= mean of {len(mf_times)} timed calls x {n_points}); "
        f"largest difference from the sweep {worst:.1e}"
    )

    speedup = mf_total / sweep_best
    over_floor = sweep_best / floor_best
    print(
        f"\nsweep {sweep_best:.3f} s | MetricFrame loop {mf_total:.0f} s (extrapolated) | floor {floor_best:.3f} s"
        f"\nMetricFrame loop / sweep = {speedup:,.0f}x (target >= 1000x): {'met' if speedup >= 1000 else 'NOT met'}"
        f"\nsweep / floor = {over_floor:.2f}x (target <= 5x): {'met' if over_floor <= 5 else 'NOT met'}"
        f"\nload average at end {', '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
