"""Benchmark ``phm-audit teach``: build time of the default grid and the size of the page.

Targets (issue 14): the default grid (7 access gaps x 100,000 people, 200 bootstrap replicates) in
under 5 minutes wall-clock on this 2-core machine, and a page under 5 MB.

    .venv/bin/python benchmarks/bench_teach.py                 # default grid, every core
    .venv/bin/python benchmarks/bench_teach.py --jobs 1        # one process
    .venv/bin/python benchmarks/bench_teach.py --n 50000       # a smaller grid point

Prints the load average first (timings on a busy machine are not the ones the target is about), then
the wall-clock and the CPU seconds of this process and its workers (their sum over the cores is the
wall-clock of an idle machine), the page's size, and
whether a second build gives the same bytes (``--check-determinism``, which doubles the time).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

from phm_audit.teach import DEFAULT_GAPS, teach

TARGET_SECONDS = 300.0
TARGET_MB = 5.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000, help="people per grid point (default 100000)")
    parser.add_argument("--bootstrap", type=int, default=200, help="bootstrap replicates (default 200)")
    parser.add_argument("--jobs", type=int, default=-1, help="worker processes (default -1: every core)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--check-determinism", action="store_true", help="build twice and compare the bytes")
    parser.add_argument("--keep", type=Path, help="copy the page here")
    args = parser.parse_args()
    print(f"load average (1, 5, 15 min): {os.getloadavg()}; cores: {os.cpu_count()}")
    with tempfile.TemporaryDirectory() as tmp:
        digests = []
        for run in range(2 if args.check_determinism else 1):
            out = Path(tmp) / f"run{run}" / "index.html"
            start, cpu = time.perf_counter(), time.process_time()
            children = resource.getrusage(resource.RUSAGE_CHILDREN)
            teach(out, n=args.n, seed=args.seed, gaps=DEFAULT_GAPS, n_boot=args.bootstrap, n_jobs=args.jobs)
            wall = time.perf_counter() - start
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            workers = (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)
            own = time.process_time() - cpu
            size = out.stat().st_size / 1e6
            digests.append(hashlib.sha256(out.read_bytes()).hexdigest())
            print(
                f"grid of {len(DEFAULT_GAPS)} gaps x {args.n:,} people, {args.bootstrap} replicates, jobs {args.jobs}: "
                f"{wall:.1f} s wall; CPU {own + workers:.1f} s ({own:.1f} s here, {workers:.1f} s in workers), so "
                f"about {(own + workers) / (os.cpu_count() or 1):.0f} s on {os.cpu_count()} idle cores; "
                f"page {size:.2f} MB "
                f"[target < {TARGET_SECONDS:.0f} s: {'met' if wall < TARGET_SECONDS else 'MISSED'}; "
                f"< {TARGET_MB:.0f} MB: {'met' if size < TARGET_MB else 'MISSED'}]"
            )
        if args.keep:
            args.keep.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(out, args.keep)
        if args.check_determinism:
            print(f"same bytes on a second build: {digests[0] == digests[1]} (sha256 {digests[0][:16]}...)")


if __name__ == "__main__":
    main()
