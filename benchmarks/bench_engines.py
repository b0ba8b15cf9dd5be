"""The audit in memory, DuckDB, Polars and Spark (local[2]) on one Parquet dataset: time, peak memory, agreement.

Each engine runs in its own process (timed, its peak RSS read by ``/usr/bin/time``) on the same dataset with
two score columns (``cost_prior``, a prior-cost rule, and ``n_ltc_recorded``, a condition count, with many ties),
the default attributes and intersection, fairness at three operating points, calibration at equal score,
the 100-point sweep and the referral gate, with 200 bootstrap replicates. The tidy tables are then compared:
every count identical, every value within 1e-9 relative. Spark's time excludes its start.

    python benchmarks/bench_engines.py --n 1000000                      # all four engines, and the comparison
    python benchmarks/bench_engines.py --n 10000000 --engines duckdb,memory
    python benchmarks/bench_engines.py --data england/ --engines duckdb  # a dataset written by phm-audit generate
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCORES = ["cost_prior", "n_ltc_recorded"]
KEY = ["model", "analysis", "attribute", "group", "operating_point", "metric", "target"]


def _one(engine: str, data: str, out: str, n_boot: int) -> None:
    """Run one engine and write its table and timing (in the child process)."""
    from phm_audit.audit import AuditSpec, audit_table

    spec = AuditSpec(n_boot=n_boot, analyses=("fairness", "calibration", "thresholds", "referral"))
    spark = None
    started = 0.0
    if engine == "spark":
        from pyspark.sql import SparkSession

        t = time.perf_counter()
        spark = (
            SparkSession.builder.master("local[2]")
            .config("spark.ui.enabled", "false")
            .config("spark.sql.shuffle.partitions", "4")
            .config("spark.driver.memory", "4g")
            .getOrCreate()
        )
        spark.sparkContext.setLogLevel("ERROR")
        started = time.perf_counter() - t
    t = time.perf_counter()
    result = audit_table(data, SCORES, spec, engine=engine, spark=spark)
    seconds = time.perf_counter() - t
    result.table().to_parquet(out)
    Path(out + ".json").write_text(json.dumps({"seconds": seconds, "spark_start": started, "n": result.cohort["n"]}))
    if spark is not None:
        spark.stop()


def _run(engine: str, data: str, folder: str, n_boot: int) -> dict:
    out = os.path.join(folder, f"{engine}.parquet")
    cmd = ["/usr/bin/time", "-f", "%M", sys.executable, __file__, "--one", engine, "--data", data, "--out", out]
    cmd += ["--bootstrap", str(n_boot)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{engine} failed:\n{proc.stderr[-3000:]}")
    peak_kb = int(proc.stderr.strip().splitlines()[-1])
    info = json.loads(Path(out + ".json").read_text())
    return {"engine": engine, "seconds": info["seconds"], "peak_gb": peak_kb / 1024**2, "table": out, **info}


def _compare(a_path: str, b_path: str) -> tuple[int, float, bool]:
    import numpy as np
    import pandas as pd

    a, b = pd.read_parquet(a_path), pd.read_parquet(b_path)
    m = a.merge(b, on=KEY, how="outer", suffixes=("_a", "_b"), indicator=True)
    same_rows = bool((m["_merge"] == "both").all())
    counts_equal = bool(np.array_equal(m["n_a"].to_numpy(float), m["n_b"].to_numpy(float), equal_nan=True))
    worst = 0.0
    for col in ("value", "ci_low", "ci_high"):
        x, y = m[f"{col}_a"].to_numpy(float), m[f"{col}_b"].to_numpy(float)
        ok = np.isfinite(x) & np.isfinite(y)
        if (np.isnan(x) != np.isnan(y)).any():
            worst = float("inf")
        rel = np.abs(x[ok] - y[ok]) / np.maximum(np.abs(x[ok]), 1e-300)
        worst = max(worst, float(rel[np.abs(x[ok]) > 1e-12].max(initial=0.0)))
    return len(m), worst, same_rows and counts_equal


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1_000_000, help="people to generate (unless --data)")
    p.add_argument("--data", help="an existing Parquet dataset or file")
    p.add_argument("--engines", default="memory,duckdb,polars,spark")
    p.add_argument("--bootstrap", type=int, default=200)
    p.add_argument("--one", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        _one(args.one, args.data, args.out, args.bootstrap)
        return
    folder = tempfile.mkdtemp(prefix="phm-bench-engines-")
    data = args.data
    if data is None:
        data = os.path.join(folder, "people")
        t = time.perf_counter()
        generate = [sys.executable, "-m", "phm_audit", "generate", "--quiet", "--n", str(args.n), "--seed", "11"]
        subprocess.run([*generate, "--out", data + "/"], check=True)
        print(f"generated {args.n:,} people in {time.perf_counter() - t:.1f} s")
    runs = [_run(e, data, folder, args.bootstrap) for e in args.engines.split(",")]
    print(f"{'engine':8} {'people':>12} {'audit s':>9} {'peak GB':>8} {'spark start s':>14}")
    for r in runs:
        print(f"{r['engine']:8} {r['n']:>12,} {r['seconds']:>9.1f} {r['peak_gb']:>8.2f} {r['spark_start']:>14.1f}")
    first = runs[0]
    for r in runs[1:]:
        rows, worst, equal = _compare(first["table"], r["table"])
        print(
            f"{r['engine']} against {first['engine']}: {rows:,} rows, counts and rows identical: {equal}, "
            f"largest relative difference {worst:.2e}, time ratio {r['seconds'] / first['seconds']:.2f}"
        )


if __name__ == "__main__":
    main()
