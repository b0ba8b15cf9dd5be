"""Hostile and careless input: refused with exit 2 and a message that speaks the user's file, never a crash."""

from __future__ import annotations

import textwrap

import pytest

from phm_audit.cli import main
from phm_audit.synth._cli import resource_estimate
from phm_audit.synth._scenario import load_scenario

# --- resources bounded before the work starts ----------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        pytest.param(
            ["--n", "1000000000000", "--out", "{tmp}/huge.parquet"], "bytes per person in parquet, measured", id="disk"
        ),
        pytest.param(
            ["--n", "1000000000", "--chunk-size", "1000000000", "--out", "{tmp}/big.csv"], "of memory", id="mem"
        ),
        pytest.param(["--n", "100", "--out", "/proc/cohort.csv"], "not a folder for files", id="proc"),
        pytest.param(["--n", "100", "--out", "/proc/self/cohort.parquet"], "cannot write", id="proc-self"),
    ],
)
def test_generate_refuses_what_cannot_fit_before_the_work(argv, words, tmp_path, capsys):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(["generate", "--quiet", *argv]) == 2
    err = capsys.readouterr().err
    assert words in err
    assert "internal error" not in err
    assert list(tmp_path.iterdir()) == []


def test_the_bytes_per_person_are_measured_not_guessed(tmp_path, cohort_factory):
    # the estimate, from a sample, is within 15% of the file actually written for 20,000 people
    cohort = cohort_factory("england", 20_000, 0)
    path = tmp_path / "c.csv"
    cohort.to_csv(path, index=False, lineterminator="\n")
    est = resource_estimate(load_scenario("england"), 20_000, path, chunk_size=1_000_000, n_jobs=1)
    assert est["disk"] == pytest.approx(path.stat().st_size, rel=0.15)
    in_memory = float(cohort.memory_usage(deep=True).sum())
    assert est["memory_per_person"] * 20_000 == pytest.approx(in_memory, rel=0.15)


# --- user code that ends the program -------------------------------------------------------------------------


@pytest.fixture
def exiting_module(tmp_path, monkeypatch, cohort_factory):
    (tmp_path / "quitter.py").write_text(
        textwrap.dedent(
            """
            import sys
            def risk(cohort):
                sys.exit(0)
            """
        )
    )
    (tmp_path / "quits_on_import.py").write_text("import sys\nsys.exit(0)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    cohort = tmp_path / "cohort.parquet"
    cohort_factory("england", 3_000, 2).to_parquet(cohort)
    return cohort


@pytest.mark.parametrize("spec", ["quitter:risk", "quits_on_import:risk"])
def test_a_callable_that_calls_sys_exit_is_a_bad_model_not_a_silent_end(exiting_module, spec, tmp_path, capsys):
    out = tmp_path / "r"
    code = main(["audit", "--cohort", str(exiting_module), "--model-callable", spec, "--out", str(out), "--quiet"])
    assert code == 2
    err = capsys.readouterr().err
    assert "sys.exit(0)" in err and "return one score per person" in err
    assert not out.exists()
