"""``phm-audit generate | scenarios | describe | data-dictionary`` end to end, in-process."""

from __future__ import annotations

import pandas as pd
import pytest

from phm_audit.cli import main
from phm_audit.synth import generate
from phm_audit.synth._cohort import read_cohort


@pytest.mark.parametrize("ext", ["parquet", "csv"])
def test_generate_writes_the_same_cohort_as_the_api(tmp_path, ext, capsys):
    out = tmp_path / f"cohort.{ext}"
    assert main(["generate", "--scenario", "england", "--n", "3000", "--seed", "7", "--out", str(out)]) == 0
    assert "wrote 3,000 people" in capsys.readouterr().out
    back = read_cohort(out)
    fresh = generate("england", 3000, seed=7)
    pd.testing.assert_frame_equal(back, fresh, check_exact=False, rtol=1e-6)
    meta = back.attrs["phm_audit"]
    assert meta["roles"]["need_true_next"] == "truth"
    if ext == "parquet":
        assert meta["seed"] == 7 and meta["scenario"]["name"] == "england"


@pytest.mark.slow
def test_generate_in_chunks_is_byte_identical(tmp_path):
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    assert main(["generate", "--n", "70000", "--seed", "2", "--out", str(a), "--quiet", "--jobs", "1"]) == 0
    assert (
        main(
            [
                "generate",
                "--n",
                "70000",
                "--seed",
                "2",
                "--out",
                str(b),
                "--quiet",
                "--jobs",
                "2",
                "--chunk-size",
                "9999",
            ]
        )
        == 0
    )
    pd.testing.assert_frame_equal(read_cohort(a), read_cohort(b))


def test_generate_with_override(tmp_path):
    out = tmp_path / "c.parquet"
    assert (
        main(
            [
                "generate",
                "--n",
                "2000",
                "--out",
                str(out),
                "--set",
                "planned_access.imd_q1=0.5",
                "--quiet",
            ]
        )
        == 0
    )
    assert read_cohort(out).attrs["phm_audit"]["scenario"]["knobs"]["planned_access.imd_q1"] == 0.5


@pytest.mark.parametrize(
    "args,message",
    [
        (["--n", "0"], "--n: must be at least 1"),
        (["--n", "-3"], "--n: must be at least 1"),
        (["--n", "ten"], "must be a whole number"),
        (["--scenario", "englnd"], "did you mean 'england'"),
        (["--set", "planned_acess.imd_q1=0.5"], "unknown knob"),
        (["--set", "emergency_substitution=2"], "must lie in [0, 1]"),
        (["--set", "nonsense"], "KNOB=VALUE"),
    ],
)
def test_generate_bad_input_exits_2_and_writes_nothing(tmp_path, capsys, args, message):
    out = tmp_path / "x.parquet"
    assert main(["generate", "--out", str(out), *args]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_generate_malformed_scenario_file(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("knobs:\n  planned_share: [\n")
    out = tmp_path / "x.csv"
    assert main(["generate", "--scenario", str(bad), "--out", str(out)]) == 2
    assert "not valid YAML" in capsys.readouterr().err
    assert not out.exists()


def test_generate_unwritable_output(tmp_path, capsys):
    assert main(["generate", "--n", "10", "--out", str(tmp_path / "missing" / "x.parquet")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["generate", "--n", "10", "--out", str(tmp_path / "x.txt")]) == 2
    assert ".parquet or .csv" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_interrupted_write_leaves_no_file(tmp_path, monkeypatch):
    from phm_audit import _io

    def broken(*args, **kwargs):
        raise KeyboardInterrupt

    out = tmp_path / "y.parquet"
    monkeypatch.setattr(_io.pq.ParquetWriter, "write_table", broken)
    assert main(["generate", "--n", "100", "--out", str(out), "--quiet"]) == 130
    assert list(tmp_path.iterdir()) == []


def test_scenarios_lists_scenarios_and_knobs(capsys):
    assert main(["scenarios"]) == 0
    out = capsys.readouterr().out
    for word in (
        "england",
        "no_gap",
        "high_gap",
        "planned_access.imd_q1",
        "emergency_substitution",
    ):
        assert word in out
    assert main(["scenarios", "no_gap"]) == 0
    assert "planned_access.imd_q1" in capsys.readouterr().out


def test_describe_prints_figures_beside_targets(tmp_path, capsys):
    out = tmp_path / "c.parquet"
    assert main(["generate", "--n", "20000", "--seed", "1", "--out", str(out), "--quiet"]) == 0
    assert main(["describe", str(out)]) == 0
    text = capsys.readouterr().out
    assert "recorded hypertension" in text and "share of cost, top 5%" in text and "target" in text


def test_describe_missing_file_and_wrong_table(tmp_path, capsys):
    assert main(["describe", str(tmp_path / "nope.parquet")]) == 2
    assert "does not exist" in capsys.readouterr().err
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    assert main(["describe", str(other)]) == 2
    assert "is missing" in capsys.readouterr().err


def test_no_command_and_unknown_command(capsys):
    assert main([]) == 2
    assert main(["frobnicate"]) == 2
