"""``phm-audit audit --table``: an extract phm-audit did not make, end to end."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from phm_audit.cli import main


@pytest.fixture(scope="module")
def extract(tmp_path_factory, cohort_factory):
    df = cohort_factory("england", 20_000, 31)
    table = pd.DataFrame(
        {
            "nhs_pseudo": df["patient_id"],
            "risk": df["cost_prior"].to_numpy(float) + df["n_ltc_recorded"].to_numpy(float),
            "deprivation": df["imd_quintile"],
            "ethnic_group": df["ethnicity"].astype(str),
            "conditions_next": df["n_conditions_next"],
            "spend_next": df["cost_next"],
        }
    )
    path = tmp_path_factory.mktemp("extract") / "scored.csv"
    table.to_csv(path, index=False)
    return path, table


def _args(path, out, *extra):
    return [
        "audit",
        "--table",
        str(path),
        "--score",
        "risk",
        "--group",
        "deprivation",
        "--group",
        "ethnic_group",
        "--need",
        "conditions_next",
        "--cost",
        "spend_next",
        "--bootstrap",
        "30",
        "--out",
        str(out),
        "--quiet",
        *extra,
    ]


@pytest.mark.slow
def test_audit_table_writes_the_outputs(extract, tmp_path):
    path, _ = extract
    out = tmp_path / "report"
    assert main(_args(path, out, "--reference", "deprivation=5", "--intersection", "ethnic_group,deprivation")) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        ".phm-audit-manifest.json",
        "audit.json",
        "curves.csv",
        "index.html",
        "metrics.csv",
        "summary.md",
    ]
    metrics = pd.read_csv(out / "metrics.csv", keep_default_na=False, na_values=[""])
    assert list(metrics.columns[:10]) == [
        "model",
        "analysis",
        "attribute",
        "group",
        "operating_point",
        "metric",
        "value",
        "ci_low",
        "ci_high",
        "n",
    ]
    assert set(metrics["attribute"]) == {"deprivation", "ethnic_group", "ethnic_group x deprivation"}
    assert {"fairness", "calibration", "thresholds", "allocation"} <= set(metrics["analysis"])
    assert "need_true_next" not in set(metrics["target"])  # no ground truth in an extract
    doc = json.loads((out / "audit.json").read_text())
    assert doc["schema_version"] and doc["groups"]["deprivation"]["reference"] == "5"
    assert "# phm-audit summary" in (out / "summary.md").read_text()


@pytest.mark.parametrize(
    "change,extra,message",
    [
        (None, ["--group", "deprivaton"], "did you mean 'deprivation'"),
        ("single", ["--group", "region"], "single value"),
        ("nan", [], "missing or infinite scores"),
        ("text", [], "non-numeric values"),
        (None, ["--reference", "deprivation=9"], "reference group '9' does not exist"),
        (None, ["--reference", "Whte"], "did you mean 'White'"),
        (None, ["--operating-point", "top_pct:three"], "top_pct:three"),
    ],
)
def test_audit_table_bad_input_exits_2_and_writes_nothing(extract, tmp_path, capsys, change, extra, message):
    path, table = extract
    if change:
        table = table.copy()
        if change == "single":
            table["region"] = "North"
        if change == "nan":
            table.loc[[3, 7], "risk"] = np.nan
        if change == "text":
            table["risk"] = table["risk"].astype(object)
            table.loc[5, "risk"] = "high"
        path = tmp_path / "bad.csv"
        table.to_csv(path, index=False)
    out = tmp_path / "report"
    assert main(_args(path, out, *extra)) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".report")]


def test_audit_needs_a_source(tmp_path, capsys):
    assert main(["audit", "--out", str(tmp_path / "r")]) == 2
    assert "exactly one of --table" in capsys.readouterr().err


@pytest.mark.slow
def test_fail_on_flag_gates_with_exit_3(tmp_path, capsys, cohort_factory):
    df = cohort_factory("england", 20_000, 31)
    # a score that ignores the most deprived fifth entirely: a planted disparity the gate must catch
    risk = df["need_true_next"].to_numpy(float) * (df["imd_quintile"].to_numpy() != 1)
    table = pd.DataFrame(
        {"risk": risk, "imd": df["imd_quintile"], "need": df["need_true_next"], "cost": df["cost_next"]}
    )
    path = tmp_path / "t.csv"
    table.to_csv(path, index=False)
    args = [
        "audit",
        "--table",
        str(path),
        "--score",
        "risk",
        "--group",
        "imd",
        "--need",
        "need",
        "--cost",
        "cost",
        "--reference",
        "imd=5",
        "--bootstrap",
        "30",
        "--quiet",
        "--fail-on",
        "flag",
    ]
    assert main([*args, "--out", str(tmp_path / "r")]) == 3
    assert "gate failed" in capsys.readouterr().err
    assert (tmp_path / "r" / "index.html").exists()


def _gate_table(tmp_path, cohort_factory, risk_of, group_of=None) -> tuple[list[str], pd.DataFrame]:
    df = cohort_factory("england", 20_000, 31)
    table = pd.DataFrame(
        {
            "risk": risk_of(df),
            "imd": df["imd_quintile"] if group_of is None else group_of(df),
            "need": df["need_true_next"],
            "cost": df["cost_next"],
        }
    )
    path = tmp_path / "t.csv"
    table.to_csv(path, index=False)
    args = ["audit", "--table", str(path), "--score", "risk", "--group", "imd", "--need", "need", "--cost", "cost"]
    return [*args, "--reference", "imd=5", "--bootstrap", "30", "--quiet"], table


@pytest.mark.slow
def test_fail_on_passes_an_audit_with_nothing_to_flag_with_exit_0(tmp_path, capsys, cohort_factory):
    # the score is need itself and the groups are drawn at random, so no group differs from another in truth
    args, _ = _gate_table(
        tmp_path,
        cohort_factory,
        lambda df: df["need_true_next"].to_numpy(float),
        lambda df: np.random.default_rng(5).integers(1, 6, len(df)),
    )
    assert main([*args, "--fail-on", "flag", "--out", str(tmp_path / "r")]) == 0
    assert "gate failed" not in capsys.readouterr().err
    doc = json.loads((tmp_path / "r" / "audit.json").read_text())
    assert doc["summary"]["flag"] == 0
    # the same audit with the gate on "review" as well fails exactly when the report holds a review finding
    code = main([*args, "--fail-on", "review", "--out", str(tmp_path / "r2")])
    assert code == (3 if doc["summary"]["review"] else 0)


@pytest.mark.slow
@pytest.mark.parametrize("grade", ["flag", "review"])
def test_the_gate_grades_the_findings_the_report_publishes(tmp_path, capsys, cohort_factory, grade):
    # a score that ignores the most deprived fifth entirely: a planted disparity the gate must catch
    args, _ = _gate_table(
        tmp_path, cohort_factory, lambda df: df["need_true_next"].to_numpy(float) * (df["imd_quintile"].to_numpy() != 1)
    )
    assert main([*args, "--fail-on", grade, "--out", str(tmp_path / "r")]) == 3
    err = capsys.readouterr().err
    doc = json.loads((tmp_path / "r" / "audit.json").read_text())
    grades = {"flag"} if grade == "flag" else {"flag", "review"}
    published = [f for f in doc["findings"] if f["grade"] in grades]
    assert f"gate failed: {len(published)} finding(s)" in err
    assert published[0]["text"] in err


def test_audit_table_reads_a_parquet_dataset_folder_as_one_table(extract, tmp_path, capsys):
    """``--table`` takes a folder of Parquet parts (as ``phm-audit generate --out folder/`` writes), read whole."""
    _, table = extract
    folder = tmp_path / "extract"
    folder.mkdir()
    for i, part in enumerate(np.array_split(np.arange(len(table)), 3)):
        table.iloc[part].to_parquet(folder / f"part-{i:05d}.parquet", index=False)
    from_file = tmp_path / "from_file.parquet"
    table.to_parquet(from_file, index=False)
    assert main(_args(folder, tmp_path / "a")) == 0
    assert main(_args(from_file, tmp_path / "b")) == 0
    a = pd.read_csv(tmp_path / "a" / "metrics.csv")
    b = pd.read_csv(tmp_path / "b" / "metrics.csv")
    pd.testing.assert_frame_equal(a, b)


def test_a_dataset_part_missing_a_column_is_named(extract, tmp_path, capsys):
    _, table = extract
    folder = tmp_path / "extract"
    folder.mkdir()
    table.iloc[:10_000].to_parquet(folder / "part-00000.parquet", index=False)
    table.iloc[10_000:].drop(columns=["spend_next"]).to_parquet(folder / "part-00001.parquet", index=False)
    out = tmp_path / "out"
    assert main(_args(folder, out)) == 2
    err = capsys.readouterr().err
    assert "part-00001.parquet lacks column(s) spend_next" in err and "Traceback" not in err
    assert not out.exists()
