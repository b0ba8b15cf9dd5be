"""The synthetic cohort, generated in blocks: the whole of it, or chunk by chunk.

Each block of :data:`BLOCK_SIZE` people is drawn by :mod:`phm_audit.synth._causal_model` from its own
random stream derived from (seed, block number), so the cohort is the same whatever the chunk size
of the output or the number of worker processes.
"""

from __future__ import annotations

import collections
import math
import os
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

import numpy as np
import pandas as pd

from phm_audit._checks import check_int
from phm_audit._process import die_with_parent
from phm_audit.synth._causal_model import draw_practice_access, generate_block, practice_count
from phm_audit.synth._scenario import Scenario, load_scenario
from phm_audit.synth._schema import AGE_BANDS, COLUMNS, ETHNICITIES, SCHEMA_VERSION, column_roles

__all__ = ["BLOCK_SIZE", "generate", "iter_cohort_chunks"]

#: People per random-number block. Fixed: changing it changes the data for a given seed.
BLOCK_SIZE = 1 << 16


_CODED = {"ethnicity": ETHNICITIES, "sex": ("Female", "Male"), "age_band": AGE_BANDS}


def _to_frame(arrays: Mapping[str, np.ndarray]) -> pd.DataFrame:
    data: dict[str, Any] = {}
    for col in COLUMNS:
        values = arrays[col.name]
        if col.name in _CODED:
            data[col.name] = pd.Categorical.from_codes(
                values, categories=pd.Index(list(_CODED[col.name])), ordered=col.name == "age_band"
            )
        else:
            data[col.name] = values
    return pd.DataFrame(data, copy=False)


def _block_task(
    args: tuple[dict[str, float], int, int, int, int, np.ndarray],
) -> dict[str, np.ndarray]:
    return generate_block(*args)


#: :func:`generate` measures the memory a person takes, and refuses a cohort that cannot fit, from this size.
MEMORY_CHECK_FROM = 1_000_000
#: Copies of the cohort :func:`generate` holds at its peak (the blocks, joined, and the frame built from them).
_FRAME_PEAK_COPIES = 3


def available_memory() -> int | None:
    """Bytes of memory available to new work (Linux ``MemAvailable``), or None where unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


#: People generated to measure what a person takes in memory and on disk.
SAMPLE_SIZE = 4_000


def measure_sample(scen: Scenario) -> pd.DataFrame:
    """:data:`SAMPLE_SIZE` people of ``scen`` (seed 0, one process), to measure the bytes a person takes."""
    return _to_frame(_concat(list(_iter_blocks(scen, SAMPLE_SIZE, 0, 1))))


def _check_memory(scen: Scenario, n: int) -> None:
    """Refuse, before any work, a cohort that cannot be held in memory (measured on a sample of 4,000 people)."""
    if n < MEMORY_CHECK_FROM:
        return
    memory = available_memory()
    if memory is None:
        return
    from phm_audit.exceptions import PhmInputError

    per_person = float(measure_sample(scen).memory_usage(deep=True).sum()) / SAMPLE_SIZE
    need = per_person * n * _FRAME_PEAK_COPIES
    if need > 0.8 * memory:
        fits = int(0.8 * memory / per_person / _FRAME_PEAK_COPIES)
        raise PhmInputError(
            f"generate(n={n:,}) needs about {need / 1e9:,.1f} GB of memory ({per_person:,.0f} bytes per person, "
            f"measured, held {_FRAME_PEAK_COPIES} times while the frame is built) but {memory / 1e9:,.1f} GB is "
            f"available; give n={max(fits, 1):,} or less, or write the cohort in chunks with "
            "phm_audit.synth.iter_cohort_chunks (or `phm-audit generate --n N --out cohort.parquet`)"
        )


def _iter_blocks(scenario: Scenario, n: int, seed: int, n_jobs: int) -> Iterator[dict[str, np.ndarray]]:
    knobs = dict(scenario.knobs)
    practice_access = draw_practice_access(knobs, practice_count(n, knobs), seed)
    n_blocks = math.ceil(n / BLOCK_SIZE)
    tasks = (
        (knobs, seed, i, i * BLOCK_SIZE, min(BLOCK_SIZE, n - i * BLOCK_SIZE), practice_access) for i in range(n_blocks)
    )
    if n_jobs == 1 or n_blocks == 1:
        for task in tasks:
            yield _block_task(task)
        return
    # workers end with this process, however it ends; at most 2 blocks per worker are in flight (pool.map
    # would submit every block at once and hold the finished ones in memory while the writer catches up)
    with ProcessPoolExecutor(max_workers=n_jobs, initializer=die_with_parent, initargs=(os.getpid(),)) as pool:
        pending: collections.deque[Future[dict[str, np.ndarray]]] = collections.deque()
        for task in tasks:
            pending.append(pool.submit(_block_task, task))
            if len(pending) >= 2 * n_jobs:
                yield pending.popleft().result()  # in order, so the output does not depend on the workers
        while pending:
            yield pending.popleft().result()


def _resolve_jobs(n_jobs: int | None) -> int:
    if n_jobs is None or n_jobs == 0:
        return 1
    if n_jobs < 0:
        return max(1, (os.cpu_count() or 1) + 1 + n_jobs)
    return int(n_jobs)


def _attach_metadata(df: pd.DataFrame, scenario: Scenario, n: int, seed: int) -> pd.DataFrame:
    df.attrs["phm_audit"] = {
        "schema_version": SCHEMA_VERSION,
        "roles": column_roles(),
        "scenario": scenario.to_dict(),
        "seed": int(seed),
        "n": int(n),
    }
    return df


def iter_cohort_chunks(
    scenario: str | Scenario = "england",
    n: int = 100_000,
    *,
    seed: int = 0,
    chunk_size: int = 1_000_000,
    n_jobs: int | None = 1,
) -> Iterator[pd.DataFrame]:
    """Generate a cohort chunk by chunk, for populations too large to hold at once.

    Parameters
    ----------
    scenario : str or Scenario, default "england"
        Scenario name, file path, or a loaded :class:`Scenario`.
    n : int
        Number of people.
    seed : int, default 0
        Random seed; the same scenario, seed and n give the same people whatever ``chunk_size``
        and ``n_jobs``.
    chunk_size : int, default 1_000_000
        Rows per yielded DataFrame (the last may be shorter).
    n_jobs : int, default 1
        Worker processes; ``-1`` uses every core.

    Yields
    ------
    pandas.DataFrame
        Consecutive rows of the cohort, with the cohort's metadata in ``attrs["phm_audit"]``.
    """
    scen = load_scenario(scenario) if not isinstance(scenario, Scenario) else scenario
    n = check_int(n, "n", 1)
    chunk_size = check_int(chunk_size, "chunk_size", 1)
    jobs = _resolve_jobs(n_jobs)
    buffer: list[dict[str, np.ndarray]] = []
    held = 0
    for block in _iter_blocks(scen, n, int(seed), jobs):
        buffer.append(block)
        held += block["patient_id"].size
        while held >= chunk_size:
            merged = _concat(buffer)
            yield _attach_metadata(_to_frame({k: v[:chunk_size] for k, v in merged.items()}), scen, n, seed)
            buffer = [{k: v[chunk_size:] for k, v in merged.items()}]
            held -= chunk_size
    if held:
        yield _attach_metadata(_to_frame(_concat(buffer)), scen, n, seed)


def _concat(blocks: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    if len(blocks) == 1:
        return blocks[0]
    return {k: np.concatenate([b[k] for b in blocks]) for k in blocks[0]}


def generate(
    scenario: str | Scenario = "england",
    n: int = 100_000,
    *,
    seed: int = 0,
    n_jobs: int | None = 1,
    overrides: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Generate a synthetic cohort with known ground truth.

    Parameters
    ----------
    scenario : str or Scenario, default "england"
        A built-in scenario (``england``, ``no_gap``, ``high_gap``), a YAML file, or a
        :class:`Scenario`.
    n : int, default 100_000
        Number of people.
    seed : int, default 0
        Random seed. The same scenario, seed and n give identical data.
    n_jobs : int, default 1
        Worker processes (``-1``: every core). Does not change the data.
    overrides : mapping, optional
        Knob values replacing the scenario's (see :func:`phm_audit.synth.load_scenario`).

    Returns
    -------
    pandas.DataFrame
        One row per person. ``df.attrs["phm_audit"]`` holds the column roles, the scenario, the
        seed and n.

    Examples
    --------
    >>> from phm_audit.synth import generate
    >>> cohort = generate("england", n=1000, seed=7)
    >>> cohort.shape[0]
    1000
    >>> cohort.attrs["phm_audit"]["roles"]["need_true_next"]
    'truth'
    """
    scen = load_scenario(scenario, overrides=overrides)
    n = check_int(n, "n", 1)
    _check_memory(scen, n)
    blocks = list(_iter_blocks(scen, n, int(seed), _resolve_jobs(n_jobs)))
    return _attach_metadata(_to_frame(_concat(blocks)), scen, n, seed)
