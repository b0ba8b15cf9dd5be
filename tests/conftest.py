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


#: The teaching page of the teach tests: two access gaps, 0% and 30%, at 60,000 people each (30,000 audited);
#: tests/test_teach.py says why this n is enough.
TEACH_N, TEACH_GAPS, TEACH_BOOT, TEACH_SEED = 60_000, (0.0, 0.3), 100, 7


@pytest.fixture(scope="session")
def teach_built(tmp_path_factory):
    """The teaching page built once, with the disclosed audit behind each grid point kept for comparison.

    Returns a dict: ``page`` (path), ``html`` (text), ``data`` (the embedded JSON), ``results`` (one
    disclosed ``AuditResult`` per gap, captured from the build itself) and the build settings. A file
    already in the output folder (``keep``) must survive the build.
    """
    import json
    import re

    from phm_audit.teach import _build, teach

    folder = tmp_path_factory.mktemp("teach")
    keep = folder / "notes.txt"
    keep.write_text("a teacher's own file\n", encoding="utf-8")
    captured = []
    original = _build.grid_point_result

    def capture(gap, **kwargs):
        result, n_audited = original(gap, **kwargs)
        captured.append((gap, result, n_audited))
        return result, n_audited

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_build, "grid_point_result", capture)
        page = teach(folder / "index.html", n=TEACH_N, seed=TEACH_SEED, gaps=TEACH_GAPS, n_boot=TEACH_BOOT)
    text = page.read_text(encoding="utf-8")
    payload = re.search(r'<script type="application/json" id="teach-data">(.*?)</script>', text, re.S).group(1)
    return {
        "page": page,
        "html": text,
        "data": json.loads(payload.replace("<\\/", "</")),
        "results": {gap: (result, n_audited) for gap, result, n_audited in captured},
        "keep": keep,
        "n": TEACH_N,
        "gaps": TEACH_GAPS,
        "n_boot": TEACH_BOOT,
        "seed": TEACH_SEED,
    }
