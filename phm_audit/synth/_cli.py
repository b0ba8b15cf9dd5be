"""``phm-audit generate | scenarios | describe | data-dictionary``."""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import pandas as pd

from phm_audit._argtypes import at_least, whole_number
from phm_audit._io import _check_parent, _format, write_table_chunks
from phm_audit.exceptions import PhmInputError
from phm_audit.synth._cohort import read_cohort
from phm_audit.synth._describe import describe
from phm_audit.synth._generator import available_memory, iter_cohort_chunks
from phm_audit.synth._scenario import KNOBS, Scenario, list_scenarios, load_scenario, parse_overrides
from phm_audit.synth._schema import data_dictionary_markdown


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "generate",
        help="generate a synthetic cohort and write it to Parquet or CSV",
        description="Generate a synthetic English-NHS-like cohort with known ground truth.",
    )
    p.add_argument(
        "--scenario",
        default="england",
        help="built-in scenario name or YAML file (default: england)",
    )
    p.add_argument("--n", type=at_least(1), default=100_000, help="number of people (default: 100000)")
    p.add_argument("--seed", type=whole_number, default=0, help="random seed (default: 0)")
    p.add_argument("--out", required=True, help="output file, .parquet or .csv")
    p.add_argument("--set", action="append", metavar="KNOB=VALUE", help="override a scenario knob (repeatable)")
    p.add_argument("--chunk-size", type=at_least(1), default=1_000_000, help="rows held in memory at once")
    p.add_argument(
        "--jobs",
        type=whole_number,
        default=-1,
        help="worker processes (-1: every core; does not change the data)",
    )
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    p.set_defaults(func=_generate)

    p = sub.add_parser("scenarios", help="list the built-in scenarios and their knobs")
    p.add_argument("scenario", nargs="?", help="show one scenario's knob values")
    p.set_defaults(func=_scenarios)

    p = sub.add_parser("describe", help="print a cohort's key figures beside the published targets")
    p.add_argument("cohort", help="cohort file (.parquet or .csv)")
    p.add_argument("--out", help="also write the table to this .csv file")
    p.set_defaults(func=_describe)

    p = sub.add_parser("data-dictionary", help="print (or write) the data dictionary of the cohort")
    p.add_argument("--out", help="write to this file instead of printing")
    p.set_defaults(func=_dictionary)


#: People generated to measure the bytes a person takes in memory and in the file.
_SAMPLE = 4_000
#: Memory a chunk takes at its peak, in copies of the chunk (blocks held, joined, and converted for writing).
_PEAK_COPIES = 4


def _gb(n_bytes: float) -> str:
    return f"{n_bytes / 1e9:,.1f} GB" if n_bytes >= 1e8 else f"{n_bytes / 1e6:,.1f} MB"


def resource_estimate(scenario: Scenario, n: int, out: Path, *, chunk_size: int, n_jobs: int) -> dict[str, float]:
    """Measure the bytes a person takes in memory and in ``out``'s format, and the totals for ``n`` people.

    A sample of people is generated and written to memory in the output's format; the totals scale
    its sizes. Memory is what one chunk needs at its peak (held, joined and converted for writing) plus
    the blocks the workers have in flight.

    Parameters
    ----------
    scenario : Scenario
        The scenario to generate.
    n : int
        People to generate.
    out : Path
        The output file (its extension gives the format).
    chunk_size : int
        Rows held in memory at once.
    n_jobs : int
        Worker processes (-1: every core).

    Returns
    -------
    dict
        ``memory_per_person``, ``file_per_person`` (bytes, measured), ``memory`` and ``disk`` (bytes needed).
    """
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    from phm_audit.synth._generator import BLOCK_SIZE, _resolve_jobs, generate

    sample = generate(scenario, n=_SAMPLE, seed=0, n_jobs=1)
    in_memory = float(sample.memory_usage(deep=True).sum()) / _SAMPLE
    if out.suffix.lower() == ".parquet":
        buffer = io.BytesIO()
        pq.write_table(pa.Table.from_pandas(sample, preserve_index=False), buffer, compression="zstd")
        on_disk = buffer.getbuffer().nbytes / _SAMPLE
    else:
        on_disk = len(sample.to_csv(index=False, lineterminator="\n").encode()) / _SAMPLE
    jobs = _resolve_jobs(n_jobs)
    held = min(n, chunk_size) * _PEAK_COPIES + (2 * jobs * BLOCK_SIZE if jobs > 1 else 0)
    return {
        "memory_per_person": in_memory,
        "file_per_person": on_disk,
        "memory": in_memory * held,
        "disk": on_disk * n,
    }


def check_resources(scenario: Scenario, n: int, out: Path, *, chunk_size: int, n_jobs: int) -> None:
    """Refuse, before any work, a cohort whose chunks cannot fit in memory or whose file cannot fit on disk.

    Raises
    ------
    PhmInputError
        With the measured bytes per person and the estimate.
    """
    est = resource_estimate(scenario, n, out, chunk_size=chunk_size, n_jobs=n_jobs)
    memory = available_memory()
    if memory is not None and est["memory"] > 0.8 * memory:
        fits = int(0.8 * memory / est["memory_per_person"] / _PEAK_COPIES)
        raise PhmInputError(
            f"--n {n:,} with --chunk-size {chunk_size:,} needs about {_gb(est['memory'])} of memory "
            f"({est['memory_per_person']:,.0f} bytes per person, measured, held {_PEAK_COPIES} times at the peak) "
            f"but {_gb(memory)} is available; give --chunk-size {max(1, fits):,} or less"
        )
    parent = out.parent if str(out.parent) else Path(".")
    try:
        free = shutil.disk_usage(parent).free
    except OSError:
        return
    if est["disk"] > free:
        raise PhmInputError(
            f"--n {n:,} needs about {_gb(est['disk'])} in {out.name} ({est['file_per_person']:,.0f} bytes per "
            f"person in {out.suffix[1:]}, measured) but {parent} has {_gb(free)} free; give --n "
            f"{max(1, int(free / est['file_per_person'] * 0.9)):,} or less, or choose another --out"
        )


def _generate(args: argparse.Namespace) -> int:
    out = Path(args.out)
    _format(out)
    scenario = load_scenario(args.scenario, overrides=parse_overrides(args.set))
    _check_parent(out)
    check_resources(scenario, args.n, out, chunk_size=args.chunk_size, n_jobs=args.jobs)
    start = time.perf_counter()
    chunks = iter_cohort_chunks(scenario, args.n, seed=args.seed, chunk_size=args.chunk_size, n_jobs=args.jobs)
    written = write_table_chunks(chunks, out)
    if not args.quiet:
        print(
            f"wrote {args.n:,} people ({scenario.name}, seed {args.seed}) to {written} "
            f"in {time.perf_counter() - start:.1f} s"
        )
    return 0


def _scenarios(args: argparse.Namespace) -> int:
    if args.scenario:
        scen = load_scenario(args.scenario)
        print(f"{scen.name}: {scen.description}\n")
        for name, value in scen.knobs.items():
            print(f"  {name:40s} {value:g}")
        return 0
    for name in list_scenarios():
        scen = load_scenario(name)
        changed = [k for k, v in scen.knobs.items() if v != KNOBS[k].default]
        print(f"{name}: {scen.description}")
        if changed:
            print("  differs from the defaults in: " + ", ".join(changed))
        print()
    print("Knobs (defaults are the england scenario):")
    for knob in KNOBS.values():
        print(f"  {knob.name:40s} {knob.default:<8g} {knob.kind:12s} {knob.doc}")
    return 0


def _describe(args: argparse.Namespace) -> int:
    cohort = read_cohort(args.cohort)
    table = describe(cohort)
    meta = cohort.attrs.get("phm_audit", {})
    scen = (meta.get("scenario") or {}).get("name", "unknown")
    print(f"{len(cohort):,} people; scenario {scen}; seed {meta.get('seed', 'unknown')}")
    with pd.option_context("display.width", 160, "display.max_rows", 200, "display.max_colwidth", 48):
        shown = table.assign(within=table["within"].map({True: "yes", False: "NO"}))
        print(
            shown[["section", "metric", "value", "target", "low", "high", "within", "source"]].to_string(
                index=False, float_format=lambda v: f"{v:.4g}"
            )
        )
    outside = int((~table["within"]).sum())
    print(f"\n{len(table) - outside} of {len(table)} figures within tolerance of their targets")
    if args.out:
        from phm_audit._io import atomic_path

        with atomic_path(args.out) as tmp:
            table.to_csv(tmp, index=False)
    return 0


def _dictionary(args: argparse.Namespace) -> int:
    text = data_dictionary_markdown()
    if args.out:
        from phm_audit._io import atomic_path

        with atomic_path(args.out) as tmp:
            tmp.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0
