"""What a cohort needs before it is generated: memory for its chunks and disk for its file or dataset folder.

Both are measured on a sample of people.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pandas as pd

from phm_audit.exceptions import PhmInputError
from phm_audit.synth._generator import SAMPLE_SIZE, available_memory
from phm_audit.synth._scenario import Scenario

__all__ = ["check_resources", "resource_estimate"]


#: Memory a chunk takes at its peak, in copies of the chunk (blocks held, joined, and converted for writing).
_PEAK_COPIES = 4


def _gb(n_bytes: float) -> str:
    return f"{n_bytes / 1e9:,.1f} GB" if n_bytes >= 1e8 else f"{n_bytes / 1e6:,.1f} MB"


def resource_estimate(
    scenario: Scenario, n: int, out: Path, *, chunk_size: int, n_jobs: int, dataset: bool = False
) -> dict[str, float]:
    """Measure the bytes a person takes in memory and in ``out``'s format, and the totals for ``n`` people.

    A sample of people is generated and written to memory in the output's format; the totals scale
    its sizes. Memory is what one chunk needs at its peak (held, joined and converted for writing) plus
    the blocks the workers have in flight, whatever ``n``. A dataset folder holds one Parquet file per
    chunk, each with its own footer: the disk adds one footer (measured on a one-person file) per part.

    Parameters
    ----------
    scenario : Scenario
        The scenario to generate.
    n : int
        People to generate.
    out : Path
        The output file (its extension gives the format) or dataset folder.
    chunk_size : int
        Rows held in memory at once (and per part of a dataset).
    n_jobs : int
        Worker processes (-1: every core).
    dataset : bool, default False
        ``out`` is a Parquet dataset folder.

    Returns
    -------
    dict
        ``memory_per_person``, ``file_per_person``, ``file_overhead`` (bytes, measured), ``memory`` and
        ``disk`` (bytes needed).
    """
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    from phm_audit.synth._generator import BLOCK_SIZE, _resolve_jobs, measure_sample

    sample = measure_sample(scenario)
    in_memory = float(sample.memory_usage(deep=True).sum()) / SAMPLE_SIZE

    def parquet_bytes(frame: pd.DataFrame) -> int:
        buffer = io.BytesIO()
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), buffer, compression="zstd")
        return buffer.getbuffer().nbytes

    overhead = 0.0
    if dataset or out.suffix.lower() == ".parquet":
        on_disk = parquet_bytes(sample) / SAMPLE_SIZE
        if dataset:
            overhead = float(parquet_bytes(sample.iloc[:1]))
    else:
        on_disk = len(sample.to_csv(index=False, lineterminator="\n").encode()) / SAMPLE_SIZE
    jobs = _resolve_jobs(n_jobs)
    held = min(n, chunk_size) * _PEAK_COPIES + (2 * jobs * BLOCK_SIZE if jobs > 1 else 0)
    parts = -(-n // chunk_size) if dataset else 0
    return {
        "memory_per_person": in_memory,
        "file_per_person": on_disk,
        "file_overhead": overhead,
        "memory": in_memory * held,
        "disk": on_disk * n + overhead * parts,
    }


def check_resources(
    scenario: Scenario, n: int, out: Path, *, chunk_size: int, n_jobs: int, dataset: bool = False
) -> None:
    """Refuse, before any work, a cohort whose chunks cannot fit in memory or whose output cannot fit on disk.

    The parameters are those of :func:`resource_estimate`. A dataset folder is written beside its
    destination before it takes its place, so the disk checked is that of its parent folder (the
    nearest one that exists: missing ones are made).

    Raises
    ------
    PhmInputError
        With the measured bytes per person and the estimate.
    """
    est = resource_estimate(scenario, n, out, chunk_size=chunk_size, n_jobs=n_jobs, dataset=dataset)
    memory = available_memory()
    if memory is not None and est["memory"] > 0.8 * memory:
        fits = int(0.8 * memory / est["memory_per_person"] / _PEAK_COPIES)
        raise PhmInputError(
            f"--n {n:,} with --chunk-size {chunk_size:,} needs about {_gb(est['memory'])} of memory "
            f"({est['memory_per_person']:,.0f} bytes per person, measured, held {_PEAK_COPIES} times at the peak) "
            f"but {_gb(memory)} is available; give --chunk-size {max(1, fits):,} or less"
        )
    parent = out.parent if str(out.parent) else Path(".")
    if dataset:
        parent = Path(os.path.abspath(parent))
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
    try:
        free = shutil.disk_usage(parent).free
    except OSError:
        return
    if est["disk"] > free:
        where, fmt = (f"the folder {out}", "parquet") if dataset else (out.name, out.suffix[1:])
        raise PhmInputError(
            f"--n {n:,} needs about {_gb(est['disk'])} in {where} ({est['file_per_person']:,.0f} bytes per "
            f"person in {fmt}, measured) but {parent} has {_gb(free)} free; give --n "
            f"{max(1, int(free / est['file_per_person'] * 0.9)):,} or less, or choose another --out"
        )
