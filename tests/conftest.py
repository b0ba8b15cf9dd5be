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
    return _cohort("england", 400_000, 11)
