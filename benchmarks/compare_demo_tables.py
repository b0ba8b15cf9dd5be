"""Compare the demo's raw metrics table between two versions of phm-audit (a redesign must not move numbers).

Save the table of ``build_demo_result`` (200,000 people, seed 7, 200 replicates, the SHAP explanations)
with each version, then compare::

    .venv/bin/python benchmarks/compare_demo_tables.py save before.parquet     # on the old checkout
    .venv/bin/python benchmarks/compare_demo_tables.py save after.parquet      # on the new one
    .venv/bin/python benchmarks/compare_demo_tables.py compare before.parquet after.parquet

The comparison matches rows on their key (model, analysis, attribute, group, operating point, metric,
target, feature) and prints: rows only in one table; finite values that differ by more than 1e-9
relative (and 1e-12 absolute), by analysis; counts ``n`` that differ; reasons that differ; and, per
analysis, how far the interval bounds moved as a share of the interval's width and the ratio of the
widths (what a change of bootstrap seeds alone does).
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd

KEY = ["model", "analysis", "attribute", "group", "operating_point", "metric", "target", "feature"]
RTOL, ATOL = 1e-9, 1e-12


def save(path: str) -> None:
    from phm_audit._demo import build_demo_result

    result, _ = build_demo_result(n=200_000, seed=7, n_boot=200, explain=True)
    result.table().to_parquet(path)
    print(f"saved {len(result.table()):,} rows to {path}")


def compare(before: str, after: str) -> None:
    a, b = pd.read_parquet(before), pd.read_parquet(after)
    merged = a.merge(b, on=KEY, how="outer", suffixes=("_a", "_b"), indicator=True)
    print(f"rows: {len(a):,} before, {len(b):,} after; {merged['_merge'].value_counts().to_dict()}")
    m = merged[merged["_merge"] == "both"]
    va, vb = m["value_a"].to_numpy(float), m["value_b"].to_numpy(float)
    finite = np.isfinite(va) & np.isfinite(vb)
    print(f"missing values in the same places: {bool((np.isnan(va) == np.isnan(vb)).all())}")
    moved = finite & ~np.isclose(va, vb, rtol=RTOL, atol=ATOL)
    print(
        f"values: {int(moved.sum()):,} of {int(finite.sum()):,} differ by more than {RTOL:g} relative, by analysis: "
        f"{m[moved].groupby('analysis').size().to_dict()}"
    )
    na = m["n_a"].astype("Float64").to_numpy(float, na_value=np.nan)
    nb = m["n_b"].astype("Float64").to_numpy(float, na_value=np.nan)
    n_moved = (na != nb) & ~(np.isnan(na) & np.isnan(nb))
    print(f"n: {int(n_moved.sum()):,} differ, by analysis: {m[n_moved].groupby('analysis').size().to_dict()}")
    reasons = m["reason_a"].fillna("") != m["reason_b"].fillna("")
    print(f"reasons: {int(reasons.sum()):,} differ")
    width = m["ci_high_a"] - m["ci_low_a"]
    ok = np.isfinite(m["ci_low_a"]) & np.isfinite(m["ci_low_b"]) & (width > 0)
    w = m[ok].assign(
        move=lambda f: (
            np.maximum(abs(f.ci_low_a - f.ci_low_b), abs(f.ci_high_a - f.ci_high_b)) / (f.ci_high_a - f.ci_low_a)
        ),
        ratio=lambda f: (f.ci_high_b - f.ci_low_b) / (f.ci_high_a - f.ci_low_a),
    )
    summary = w.groupby("analysis").agg(
        intervals=("move", "size"),
        move_median=("move", "median"),
        move_p90=("move", lambda x: x.quantile(0.9)),
        width_ratio_median=("ratio", "median"),
        width_ratio_p5=("ratio", lambda x: x.quantile(0.05)),
        width_ratio_p95=("ratio", lambda x: x.quantile(0.95)),
    )
    print("interval bounds: the larger move of the two bounds as a share of the old width, and new width / old")
    print(summary.round(3).to_string())


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "save":
        save(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "compare":
        compare(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
