"""Benchmark the demo: each stage of ``phm-audit demo``, then ``write_report`` in parts, and the file sizes.

Targets: the whole demo (200,000 people, 200 bootstrap replicates) in at most 80 s wall-clock on
2 cores (the requirement is 120 s); ``audit.json`` under 10 MB and ``index.html`` under 4 MB.

    .venv/bin/python benchmarks/bench_report.py                         # the demo's stages and the report
    .venv/bin/python benchmarks/bench_report.py --cache /tmp/demo-result  # keep the audit result ...
    .venv/bin/python benchmarks/bench_report.py --cache /tmp/demo-result --repeat 3  # ... and time only the report

With ``--cache DIR``, the audit result is saved to DIR the first time and read back afterwards, so the
report stage can be timed again without rerunning the pipeline. Every line printed is one stage:
wall-clock and CPU seconds of this process's threads (CPU above wall means more than one core was
busy; on a shared machine, wall well above CPU means the process waited for a core; the processes
that draw the report's figures are not counted). The load average is printed first: timings on a
busy machine are not the ones the target is about.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from phm_audit._demo import build_demo_result
from phm_audit.audit import AuditResult, AuditSpec
from phm_audit.report import DisclosureControl, FindingRules, disclose_result, findings, render_html, write_report
from phm_audit.report._figures import available_cpus
from phm_audit.report._render import build_provenance

TARGET_SECONDS = 80.0
TARGET_JSON_MB = 10.0
TARGET_HTML_MB = 4.0


class Timer:
    """Collects (stage, wall seconds, CPU seconds) and prints each stage as it ends."""

    def __init__(self) -> None:
        self.stages: list[tuple[str, float, float]] = []

    @contextlib.contextmanager
    def step(self, text: str) -> Iterator[None]:
        wall, cpu = time.perf_counter(), time.process_time()
        yield
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        self.stages.append((text, wall, cpu))
        print(f"{wall:7.1f} s wall {cpu:7.1f} s CPU  {text}", flush=True)

    def total(self) -> tuple[float, float]:
        return sum(s[1] for s in self.stages), sum(s[2] for s in self.stages)


def _save(result: AuditResult, provenance: dict[str, Any], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    result.table().to_parquet(folder / "metrics.parquet")
    result.curves().to_parquet(folder / "curves.parquet")
    meta = {
        "spec": result.spec.to_dict(),
        "models": [dict(m) for m in result.models],
        "groups": {k: dict(v) for k, v in result.groups.items()},
        "cohort": dict(result.cohort),
        "notes": list(result.notes),
        "provenance": provenance,
    }
    (folder / "meta.json").write_text(json.dumps(meta, default=str), encoding="utf-8")


def _load(folder: Path) -> tuple[AuditResult, dict[str, Any]]:
    meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    spec = dict(meta["spec"])
    spec["intersections"] = [tuple(i) for i in spec["intersections"]]
    result = AuditResult(
        spec=AuditSpec(**spec),
        models=tuple(meta["models"]),
        groups=meta["groups"],
        cohort=meta["cohort"],
        notes=tuple(meta["notes"]),
        _metrics=pd.read_parquet(folder / "metrics.parquet"),
        _curves=pd.read_parquet(folder / "curves.parquet"),
    )
    return result, meta["provenance"]


def _sizes(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in sorted(folder.iterdir())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200_000, help="people generated (default: 200000, as the demo)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--bootstrap", type=int, default=200)
    parser.add_argument("--no-explain", action="store_true", help="skip the SHAP explanations")
    parser.add_argument("--cache", type=Path, help="save the audit result here, or read it back if it is there")
    parser.add_argument("--repeat", type=int, default=1, help="write the report this many times")
    parser.add_argument("--out", type=Path, help="report folder (default: a temporary folder)")
    parser.add_argument("--jobs", type=int, default=-1, help="processes drawing the figures (default -1: one per CPU)")
    args = parser.parse_args()

    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs", flush=True)
    timer = Timer()
    cached = args.cache is not None and (args.cache / "meta.json").exists()
    if cached:
        with timer.step(f"reading the cached audit result from {args.cache}"):
            result, provenance = _load(args.cache)
    else:
        result, provenance = build_demo_result(
            n=args.n, seed=args.seed, n_boot=args.bootstrap, explain=not args.no_explain, step=timer.step
        )
        if args.cache is not None:
            _save(result, provenance, args.cache)
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-report-")) / "demo"
    for _ in range(args.repeat):
        jobs = available_cpus() if args.jobs == -1 else args.jobs
        with timer.step(f"write_report to {out} (figures drawn in {jobs} process{'es' if jobs > 1 else ''})"):
            write_report(result, out, name="demo", provenance=provenance, deterministic=True, n_jobs=args.jobs)
    wall, cpu = timer.total()
    target = "the pipeline read from the cache" if cached else f"target for the whole demo <= {TARGET_SECONDS:.0f} s"
    print(f"{wall:7.1f} s wall {cpu:7.1f} s CPU  in all ({target})")

    # the report stage in parts (each is also done inside write_report)
    parts = Timer()
    control = DisclosureControl()
    with parts.step("  disclosure control"):
        published = disclose_result(result, control)
    with parts.step("  findings"):
        found = findings(published, FindingRules())
    prov = build_provenance(published, provenance, deterministic=True)
    with parts.step("  HTML with figures, in one process"):
        render_html(published, findings=found, provenance=prov, disclosure=control, rules=FindingRules(), name="demo")

    sizes = _sizes(out)
    for name, size in sizes.items():
        print(f"{size / 1e6:9.2f} MB  {name}")
    print(
        f"audit.json {sizes['audit.json'] / 1e6:.1f} MB (target < {TARGET_JSON_MB:.0f} MB), "
        f"index.html {sizes['index.html'] / 1e6:.1f} MB (target < {TARGET_HTML_MB:.0f} MB)"
    )


if __name__ == "__main__":
    main()
