"""Progress lines on standard error: a bar on a terminal, one closing line in a log, nothing when quiet."""

from __future__ import annotations

import io

import numpy as np
import pytest

from phm_audit._progress import Progress
from phm_audit.audit import AuditSpec, audit


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _run(monkeypatch, stream: io.StringIO, *, quiet: bool = False) -> str:
    monkeypatch.setattr("sys.stderr", stream)
    with Progress(quiet=quiet).step("auditing 2 models") as tick:
        tick(0, 2, "first")
        tick(1, 2, "second")
        tick(2, 2, "")
    return stream.getvalue()


def test_a_terminal_gets_a_bar_that_ends_in_the_closing_line(monkeypatch):
    text = _run(monkeypatch, _Terminal())
    assert "[############------------] 1/2 second" in text
    assert "[########################] 2/2" in text
    last = text.rsplit("\r", 1)[-1]
    assert last.startswith("- auditing 2 models ... done (") and last.endswith("\n")


def test_a_log_gets_one_line_and_quiet_gets_nothing(monkeypatch):
    text = _run(monkeypatch, io.StringIO())
    assert text.startswith("- auditing 2 models ... done (") and text.count("\n") == 1
    assert "[" not in text and "\r" not in text
    assert _run(monkeypatch, _Terminal(), quiet=True) == ""


def test_audit_reports_each_model_as_it_goes(cohort_factory):
    cohort = cohort_factory("england", 3_000, 2)
    calls: list[tuple[int, int, str]] = []
    scores = {"a": cohort["cost_prior"].to_numpy(np.float64), "b": cohort["age"].to_numpy(np.float64)}
    spec = AuditSpec(attributes=["sex"], intersections=[], analyses=["fairness"], n_boot=0)
    audit(cohort, scores, spec, progress=lambda done, total, name: calls.append((done, total, name)))
    assert calls == [(0, 2, "a"), (1, 2, "b"), (2, 2, "")]


@pytest.mark.parametrize("quiet", [True, False])
def test_a_failed_step_says_so_unless_quiet(monkeypatch, quiet):
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    with pytest.raises(RuntimeError), Progress(quiet=quiet).step("writing"):
        raise RuntimeError("disk full")
    assert stream.getvalue() == ("" if quiet else "- writing ... failed\n")
