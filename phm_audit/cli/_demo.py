"""``phm-audit demo``: the whole product in one command, on the embedded default scenario.

Generates the default cohort, fits every built-in model on one half, audits them on the other half
(bias, cost-versus-need calibration, label choice, thresholds, allocation, net benefit, judgement,
explanations) and writes the report to ``reports/demo/``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from phm_audit._argtypes import at_least
from phm_audit._demo import build_demo_result
from phm_audit._progress import Progress
from phm_audit.cli._release import add_release_arguments, release_settings

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo", help="generate the default cohort, audit the built-in models, write reports/demo/", description=__doc__
    )
    p.add_argument("--n", type=at_least(1000), default=200_000, help="people to generate (default: 200000)")
    p.add_argument("--seed", type=int, default=7, help="random seed (default: 7)")
    p.add_argument("--scenario", default="england", help="scenario (default: england)")
    p.add_argument("--out", default="reports/demo", help="report folder (default: reports/demo)")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="write into a --out folder that also holds other files (they are kept; only the report's are replaced)",
    )
    p.add_argument("--bootstrap", type=int, default=200, help="bootstrap replicates (default: 200)")
    p.add_argument("--no-explain", action="store_true", help="skip the SHAP explanations")
    p.add_argument("--deterministic", action="store_true", help="omit the creation time (for comparisons)")
    p.add_argument("--quiet", action="store_true", help="print only the report's path")
    p.add_argument(
        "--equity-attribute",
        action="append",
        metavar="COL[,COL]",
        help="attribute (or intersection COL,COL) the headline ranks first (repeatable; default Core20PLUS5: "
        "imd_quintile, ethnicity and their intersection)",
    )
    add_release_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from phm_audit.cli._audit import equity_attributes
    from phm_audit.report import write_report
    from phm_audit.report._outputs import check_report_folder

    start = time.perf_counter()
    check_report_folder(args.out, overwrite=args.overwrite)  # before the work, not after it
    release = release_settings(args, args.out)
    equity = equity_attributes(args.equity_attribute)
    if equity is not None:
        from phm_audit.audit import AuditSpec

        AuditSpec(equity_attributes=equity)  # a name that is not audited fails before the work
    progress = Progress(quiet=args.quiet)
    result, provenance = build_demo_result(
        n=args.n,
        seed=args.seed,
        scenario=args.scenario,
        n_boot=args.bootstrap,
        explain=not args.no_explain,
        step=progress.step,
        equity_attributes=equity,
    )
    with progress.step(f"writing the report to {args.out}"):
        # the demo owns its process (its one other thread has finished): figures are drawn on every CPU
        path = write_report(
            result,
            Path(args.out),
            name="demo",
            provenance=provenance,
            disclosure=release.report,
            deterministic=args.deterministic,
            n_jobs=-1,
            overwrite=args.overwrite,
        )
    if release.bundle_folder is not None:
        from phm_audit.report import write_release_bundle

        with progress.step(f"writing the release bundle to {release.bundle_folder}"):
            write_release_bundle(
                result, release.bundle_folder, disclosure=release.bundle, deterministic=args.deterministic, n_jobs=-1
            )
    print(f"Report: {Path(path) / 'index.html'}  ({time.perf_counter() - start:.0f} s)")
    if release.bundle_folder is not None:
        print(f"Release bundle: {release.bundle_folder / 'README.md'}")
    if not args.quiet:
        # the headline and findings of the report itself (under disclosure control), not computed again
        doc = json.loads((Path(path) / "audit.json").read_text(encoding="utf-8"))
        print("What this audit found:")
        for i, st in enumerate(doc["headline"], 1):
            mechanism = f", {st['mechanism'].replace('_', ' ')}" if st["mechanism"] else ""
            print(f"  {i}. [{st['grade']}{mechanism}] {st['statement']}")
        if not doc["headline"]:
            print("  no group of the equity attributes is graded under-served or under-stated")
        counts = doc["summary"]
        print(
            f"Findings, one per effect: {counts['flag']} flag, {counts['review']} review, {counts['ok']} ok "
            "(listed in the report)."
        )
    sys.stdout.flush()
    return 0
