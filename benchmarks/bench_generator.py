"""Benchmark the generator: 1,000,000 people in memory, and 10,000,000 written to Parquet in chunks.

Targets (issue 2): 1,000,000 people in at most 10 s wall-clock on 2 cores with peak memory at most
3 GB; 10,000,000 people written to Parquet with peak memory under 8 GB. Issue 13: a national cohort
(57,000,000 people) written to a Parquet dataset folder with peak memory independent of its size.

    .venv/bin/python benchmarks/bench_generator.py                     # both
    .venv/bin/python benchmarks/bench_generator.py --skip-10m          # the in-memory one only
    .venv/bin/python benchmarks/bench_generator.py --dataset 57000000  # only: N people to a dataset folder

Each measurement runs in a fresh child process so that its peak resident memory (ru_maxrss) is its own.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap

CHILD = textwrap.dedent(
    """
    import json, resource, sys, time
    from phm_audit.synth import generate, iter_cohort_chunks
    from phm_audit._io import write_dataset, write_table_chunks
    mode, n, jobs, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    t = time.perf_counter()
    if mode == "memory":
        df = generate("england", n, seed=1, n_jobs=jobs)
        rows, nbytes = len(df), int(df.memory_usage(deep=True).sum())
    elif mode == "dataset":
        chunks = iter_cohort_chunks("england", n, seed=1, chunk_size=1_000_000, n_jobs=jobs)
        write_dataset(chunks, out, n_parts=-(-n // 1_000_000))
        rows, nbytes = n, 0
    else:
        write_table_chunks(iter_cohort_chunks("england", n, seed=1, chunk_size=1_000_000, n_jobs=jobs), out)
        rows, nbytes = n, 0
    seconds = time.perf_counter() - t
    peak_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    peak_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2
    print(json.dumps({"mode": mode, "n": rows, "jobs": jobs, "seconds": seconds, "frame_gb": nbytes / 1e9,
                      "peak_gb_main": peak_self, "peak_gb_worker": peak_children}))
    """
)


def run(mode: str, n: int, jobs: int, out: str) -> dict[str, float]:
    res = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(n), str(jobs), out], check=True, capture_output=True, text=True
    )
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--skip-10m", action="store_true")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--dataset", type=int, metavar="N", help="only write N people to a Parquet dataset folder")
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}")
    if args.dataset:
        bench_dataset(args.dataset, args.jobs)
        return
    for jobs in (1, args.jobs):
        r = run("memory", 1_000_000, jobs, "")
        print(
            f"1,000,000 in memory, {jobs} process(es): {r['seconds']:.2f} s, frame {r['frame_gb']:.2f} GB, "
            f"peak RSS main {r['peak_gb_main']:.2f} GB, largest worker {r['peak_gb_worker']:.2f} GB "
            f"(targets: <= 10 s, <= 3 GB)"
        )
    if not args.skip_10m:
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "cohort.parquet")
            r = run("parquet", 10_000_000, args.jobs, out)
            size = os.path.getsize(out) / 1e9
        print(
            f"10,000,000 to Parquet in chunks, {args.jobs} processes: {r['seconds']:.1f} s, file {size:.2f} GB, "
            f"peak RSS main {r['peak_gb_main']:.2f} GB, largest worker {r['peak_gb_worker']:.2f} GB (target < 8 GB)"
        )


def bench_dataset(n: int, jobs: int) -> None:
    """Write ``n`` people to a dataset folder (chunks of 1,000,000), report time and peak memory, extrapolate."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "england")
        r = run("dataset", n, jobs, out)
        parts = [f for f in os.listdir(out) if f.endswith(".parquet")]
        size = sum(os.path.getsize(os.path.join(out, f)) for f in parts) / 1e9
    print(
        f"{n:,} to a Parquet dataset in chunks of 1,000,000, {jobs} processes: {r['seconds']:.1f} s "
        f"({n / r['seconds']:,.0f} people/s), {len(parts)} parts, {size:.2f} GB, peak RSS main "
        f"{r['peak_gb_main']:.2f} GB, largest worker {r['peak_gb_worker']:.2f} GB"
    )
    national = 57_000_000
    print(
        f"extrapolated to {national:,} (time and disk in proportion; memory does not grow with n): "
        f"{r['seconds'] * national / n / 60:.0f} min, {size * national / n:.1f} GB, "
        f"{-(-national // 1_000_000)} parts"
    )


if __name__ == "__main__":
    main()
