"""Shared fixtures: cohorts are generated once per session, as they are deterministic."""

from __future__ import annotations

import functools

import pandas as pd
import pytest

from phm_audit.synth import generate


@functools.lru_cache(maxsize=8)
def _cohort(scenario: str, n: int, seed: int) -> pd.DataFrame:
    return generate(scenario, n, seed=seed, n_jobs=2)


@pytest.fixture(scope="session")
def cohort_factory():
    """Return ``make(scenario, n, seed)``; results are cached, so treat them as read-only."""
    return _cohort


@pytest.fixture(scope="session")
def england_large() -> pd.DataFrame:
    """400,000 people of the default scenario: large enough for the realism tolerances."""
    return _cohort("england", 400_000, 402)


@pytest.fixture(scope="module")
def one_openmp_thread():
    """Fit on one OpenMP thread: the suite may share 2 cores with other work, where threads spin."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="openmp"):
        yield


@pytest.fixture
def callables_importable(monkeypatch):
    """Make ``tests/_callables.py`` importable as ``_callables`` (for ``--model-callable``)."""
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).parent))
