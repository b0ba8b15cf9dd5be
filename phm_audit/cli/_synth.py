"""``phm-audit generate | scenarios | describe | data-dictionary``."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import pandas as pd

from phm_audit._argtypes import at_least, whole_number
from phm_audit._folders import check_folder
from phm_audit._io import _check_parent, _format, dataset_part_names, write_dataset, write_table_chunks
from phm_audit.synth._cohort import read_cohort
from phm_audit.synth._describe import describe
from phm_audit.synth._generator import iter_cohort_chunks
from phm_audit.synth._resources import check_resources
from phm_audit.synth._scenario import KNOBS, list_scenarios, load_scenario, parse_overrides
from phm_audit.synth._schema import data_dictionary_markdown


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "generate",
        help="generate a synthetic cohort and write it to Parquet or CSV, or to a Parquet dataset folder",
        description=(
            "Generate a synthetic English-NHS-like cohort with known ground truth, written to one Parquet or CSV "
            "file, or (for national-scale cohorts) to a Parquet dataset folder of one part per chunk "
            "(part-00000.parquet, ...) that DuckDB, Spark and pyarrow read as one table. The same scenario, seed "
            "and --n give the same people whatever --chunk-size and --jobs."
        ),
    )
    p.add_argument(
        "--scenario",
        default="england",
        help="built-in scenario name or YAML file (default: england)",
    )
    p.add_argument("--n", type=at_least(1), default=100_000, help="number of people (default: 100000)")
    p.add_argument("--seed", type=whole_number, default=0, help="random seed (default: 0)")
    p.add_argument(
        "--out",
        required=True,
        help="output: a .parquet or .csv file, or a dataset folder (ending in '/', an existing folder, or a name "
        "without a suffix) written whole or not at all, with one Parquet part per chunk",
    )
    p.add_argument("--set", action="append", metavar="KNOB=VALUE", help="override a scenario knob (repeatable)")
    p.add_argument(
        "--chunk-size",
        type=at_least(1),
        default=1_000_000,
        help="rows held in memory at once, and per part of a dataset folder (default: 1000000)",
    )
    p.add_argument(
        "--jobs",
        type=whole_number,
        default=-1,
        help="worker processes (-1: every core; does not change the data)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="write a dataset into a folder that also holds files phm-audit did not write: only the dataset's "
        "files are replaced, every other file is kept (a .parquet or .csv file is always replaced)",
    )
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    p.set_defaults(func=_generate)

    p = sub.add_parser("scenarios", help="list the built-in scenarios and their knobs")
    p.add_argument("scenario", nargs="?", help="show one scenario's knob values")
    p.set_defaults(func=_scenarios)

    p = sub.add_parser("describe", help="print a cohort's key figures beside the published targets")
    p.add_argument("cohort", help="cohort file (.parquet or .csv) or Parquet dataset folder")
    p.add_argument("--out", help="also write the table to this .csv file")
    p.set_defaults(func=_describe)

    p = sub.add_parser("data-dictionary", help="print (or write) the data dictionary of the cohort")
    p.add_argument("--out", help="write to this file instead of printing")
    p.set_defaults(func=_dictionary)


def _is_dataset(out: str) -> bool:
    """``--out`` names a dataset folder: it ends with a separator, is a folder, or has no file suffix."""
    return out.endswith(("/", os.sep)) or Path(out).is_dir() or not Path(out).suffix


def _generate(args: argparse.Namespace) -> int:
    out = Path(args.out)
    dataset = _is_dataset(args.out)
    if not dataset:
        _format(out)
    scenario = load_scenario(args.scenario, overrides=parse_overrides(args.set))
    n_parts = -(-args.n // args.chunk_size)
    if dataset:  # refused before any work: the folder holds a user's files, or is a file
        check_folder(args.out, overwrite=args.overwrite, files=dataset_part_names(n_parts), kind="dataset")
    else:
        _check_parent(out)
    check_resources(scenario, args.n, out, chunk_size=args.chunk_size, n_jobs=args.jobs, dataset=dataset)
    start = time.perf_counter()
    chunks = iter_cohort_chunks(scenario, args.n, seed=args.seed, chunk_size=args.chunk_size, n_jobs=args.jobs)
    if dataset:
        written = write_dataset(chunks, args.out, n_parts=n_parts, overwrite=args.overwrite)
        where = f"{written}{os.sep} ({n_parts:,} Parquet part{'s' if n_parts > 1 else ''})"
    else:
        where = str(write_table_chunks(chunks, out))
    if not args.quiet:
        print(
            f"wrote {args.n:,} people ({scenario.name}, seed {args.seed}) to {where} "
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
