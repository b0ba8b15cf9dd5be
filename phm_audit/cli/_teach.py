"""``phm-audit teach``: write the explorable teaching page (one self-contained HTML file)."""

from __future__ import annotations

import argparse
import time

from phm_audit._argtypes import at_least, whole_number
from phm_audit._progress import Progress

__all__ = ["parse_gaps", "register"]


def parse_gaps(text: str) -> tuple[float, ...]:
    """``"0,5,10"`` (percentages) -> ``(0.0, 0.05, 0.1)``."""
    out = []
    for part in text.split(","):
        try:
            value = float(part.strip().rstrip("%"))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"must be percentages separated by commas, e.g. 0,5,10,15,20,25,30; got '{part.strip()}'"
            ) from None
        out.append(round(value / 100, 10))
    return tuple(out)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "teach",
        help="write an explorable, offline teaching page: watch a cost label go wrong (reports/teach/index.html)",
        description=(
            "Audit one generated cohort per access gap, for a learner trained on each label, a simulated "
            "clinician and a combined pathway, and write one self-contained HTML page (no network, no server) "
            "with sliders for the access gap, the capacity and the label, guided steps and exercises."
        ),
    )
    p.add_argument("--out", default="reports/teach/index.html", help="the page (default: reports/teach/index.html)")
    p.add_argument("--n", type=at_least(2000), default=100_000, help="people per grid point (default: 100000)")
    p.add_argument("--seed", type=whole_number, default=7, help="random seed (default: 7)")
    p.add_argument("--bootstrap", type=at_least(0), default=200, help="bootstrap replicates (default: 200)")
    p.add_argument(
        "--gaps",
        type=parse_gaps,
        default="0,5,10,15,20,25,30",
        help="access gaps in percent, rising (default: 0,5,10,15,20,25,30)",
    )
    p.add_argument(
        "--jobs", type=whole_number, default=-1, help="worker processes (-1: every core; does not change the page)"
    )
    p.add_argument("--quiet", action="store_true", help="print only the page's path")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from phm_audit.teach import teach

    start = time.perf_counter()
    progress = Progress(quiet=args.quiet)
    with progress.step(f"auditing {len(args.gaps)} cohorts of {args.n:,} people (one per access gap)") as tick:
        path = teach(
            args.out, n=args.n, seed=args.seed, gaps=args.gaps, n_boot=args.bootstrap, n_jobs=args.jobs, progress=tick
        )
    size = path.stat().st_size / 1e6
    print(f"Teaching page: {path}  ({size:.1f} MB, {time.perf_counter() - start:.0f} s)")
    return 0
