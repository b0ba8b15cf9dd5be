"""The audit inside a data engine: DuckDB embedded, Spark in local mode (started and stopped here), Polars.

The truth asserted: every engine reduces the same people to the same cells, so every count is identical
and every value (and interval) agrees within 1e-9 relative with the in-memory audit; ties follow the
stated key, not the row order; bad input is named in one line.
"""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from phm_audit.audit import AuditSpec, audit_table
from phm_audit.exceptions import PhmInputError

pytest.importorskip("duckdb")
pytest.importorskip("narwhals")

KEY = ["model", "analysis", "attribute", "group", "operating_point", "metric", "target"]
CLI = [sys.executable, "-m", "phm_audit", "audit"]


def _cli(table: object, out: object, *args: str) -> subprocess.CompletedProcess[str]:
    """``phm-audit audit --table TABLE --engine duckdb`` of need_true_next and cost_next, with ``args``."""
    common = ["--table", str(table), "--engine", "duckdb", "--need", "need_true_next", "--cost", "cost_next"]
    return subprocess.run([*CLI, *common, "--out", str(out), *args], capture_output=True, text=True, check=False)


SCORES = ["cost_prior", "n_ltc_recorded"]  # n_ltc_recorded: few values, so many ties at every cut


@pytest.fixture(scope="module")
def people(cohort_factory):
    """A cohort in shuffled row order: in-memory ties must follow patient_id, as in an engine."""
    cohort = cohort_factory("england", 30_000, 71)
    return cohort.sample(frac=1.0, random_state=3).reset_index(drop=True)


@pytest.fixture(scope="module")
def spec():
    return AuditSpec(n_boot=40, analyses=("fairness", "calibration", "thresholds", "referral"))


@pytest.fixture(scope="module")
def in_memory(people, spec):
    return audit_table(people, SCORES, spec, engine="memory").table()


@pytest.fixture(scope="module")
def spark():
    pytest.importorskip("pyspark")
    if shutil.which("java") is None:
        pytest.skip("Spark needs Java 17 (Debian: openjdk-17-jre-headless; .ci/run installs it)")
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("phm-audit-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def _compare(ours: pd.DataFrame, theirs: pd.DataFrame) -> None:
    assert len(ours) == len(theirs) > 0
    merged = ours.merge(theirs, on=KEY, how="outer", suffixes=("_a", "_b"), indicator=True)
    assert (merged["_merge"] == "both").all(), merged.loc[merged["_merge"] != "both", KEY].head()
    assert np.array_equal(merged["n_a"].to_numpy(float), merged["n_b"].to_numpy(float), equal_nan=True)
    assert (merged["reason_a"].fillna("") == merged["reason_b"].fillna("")).all()
    for col in ("value", "ci_low", "ci_high"):
        a, b = merged[f"{col}_a"].to_numpy(float), merged[f"{col}_b"].to_numpy(float)
        assert np.array_equal(np.isnan(a), np.isnan(b)), col
        ok = ~np.isnan(a)
        np.testing.assert_allclose(b[ok], a[ok], rtol=1e-9, atol=1e-12, err_msg=col)


def test_no_running_spark_session_is_one_line():
    pytest.importorskip("pyspark")
    from pyspark.sql import SparkSession

    if SparkSession.getActiveSession() is not None:
        pytest.skip("a Spark session is running in this process")
    with pytest.raises(PhmInputError, match="no Spark session is running"):
        audit_table("phm_people", SCORES, AuditSpec(), engine="spark")


@pytest.mark.parametrize("engine", ["duckdb", "polars"])
def test_an_engine_agrees_with_memory_to_1e9(people, spec, in_memory, engine, tmp_path):
    path = tmp_path / "people.parquet"
    people.to_parquet(path)
    _compare(in_memory, audit_table(str(path), SCORES, spec, engine=engine).table())


def test_spark_in_local_mode_agrees_with_memory_to_1e9(people, spec, in_memory, spark, tmp_path):
    path = tmp_path / "people.parquet"
    people.to_parquet(path)
    _compare(in_memory, audit_table(str(path), SCORES, spec, engine="spark", spark=spark).table())
    # a Spark DataFrame passed in, and a table of Spark's catalog by name, give the same
    frame = spark.read.parquet(str(path))
    _compare(in_memory, audit_table(frame, SCORES, spec, engine="spark").table())
    frame.createOrReplaceTempView("phm_people")
    _compare(in_memory, audit_table("phm_people", SCORES, spec, engine="spark", spark=spark).table())
    with pytest.raises(PhmInputError, match="neither a file or folder nor a table"):
        audit_table("no_such_table", SCORES, spec, engine="spark", spark=spark)


def test_frames_of_every_kind_are_accepted(people, spec, in_memory):
    import duckdb
    import polars as pl

    small = AuditSpec(n_boot=0, analyses=("fairness",), attributes=("imd_quintile",), intersections=())
    want = audit_table(people, SCORES, small).table()
    arrow = pa.Table.from_pandas(people, preserve_index=False)
    for frame, engine in (
        (pl.from_pandas(people), "memory"),
        (arrow, "memory"),
        (pl.from_pandas(people).lazy(), "polars"),
        (arrow, "duckdb"),
        (duckdb.connect().from_arrow(arrow), "duckdb"),
    ):
        _compare(want, audit_table(frame, SCORES, small, engine=engine).table())


def test_ties_follow_the_key_not_the_row_order(people, spec):
    small = AuditSpec(n_boot=0, analyses=("fairness", "thresholds"), attributes=("ethnicity",), intersections=())
    ordered = people.sort_values("patient_id").reset_index(drop=True)
    a = audit_table(people, ["n_ltc_recorded"], small).table()
    b = audit_table(ordered, ["n_ltc_recorded"], small).table()
    _compare(a, b)
    # with no key, ties go by row order, and the shuffled order then flags other people
    c = audit_table(people, ["n_ltc_recorded"], small, key=None).table()
    assert not np.allclose(a["value"].to_numpy(float), c["value"].to_numpy(float), equal_nan=True)


def test_an_engine_says_which_analyses_need_rows(people, tmp_path):
    path = tmp_path / "p.parquet"
    people.to_parquet(path)
    result = audit_table(str(path), SCORES, AuditSpec(n_boot=0), engine="duckdb")
    assert set(result.table()["analysis"]) == {"fairness", "calibration", "thresholds", "referral"}
    for name in ("allocation", "raise_bar", "judgement"):
        assert any(note.startswith(f"{name} ") and "needs rows" in note for note in result.notes), name
    # a table of scores has no model to retrain or explain, in memory or in an engine: nothing to note
    assert not any(note.startswith(("label_choice ", "explanations ")) for note in result.notes)


def test_bad_input_in_an_engine_is_named(people, tmp_path):
    spec = AuditSpec(n_boot=0, analyses=("fairness",), attributes=("sex",), intersections=())
    path = tmp_path / "p.parquet"
    people.assign(cost_text=people["cost_prior"].astype(str)).to_parquet(path)
    with pytest.raises(PhmInputError, match=r"no column 'cost_prio'.*cost_prior"):
        audit_table(str(path), ["cost_prio"], spec, engine="duckdb")
    with pytest.raises(PhmInputError, match=r"'cost_text'.*must be numeric"):
        audit_table(str(path), ["cost_text"], spec, engine="duckdb")
    with pytest.raises(PhmInputError, match="does not exist"):
        audit_table(str(tmp_path / "nothing.parquet"), SCORES, spec, engine="duckdb")
    doubled = tmp_path / "doubled.parquet"
    pd.concat([people.head(50), people.head(50)]).to_parquet(doubled)
    with pytest.raises(PhmInputError, match="key column 'patient_id' repeats"):
        audit_table(str(doubled), SCORES, spec, engine="duckdb")
    gaps = tmp_path / "gaps.parquet"
    people.assign(cost_prior=people["cost_prior"].where(people.index > 5)).to_parquet(gaps)
    with pytest.raises(PhmInputError, match=r"'cost_prior'.*6 missing or infinite"):
        audit_table(str(gaps), SCORES, spec, engine="duckdb")
    negative = tmp_path / "negative.parquet"
    people.assign(cost_next=people["cost_next"].where(people.index > 2, -1.0)).to_parquet(negative)
    with pytest.raises(PhmInputError, match=r"'cost_next' has 3 negative values"):
        audit_table(str(negative), SCORES, spec, engine="duckdb")
    folder = tmp_path / "ds"
    folder.mkdir()
    pq.write_table(pa.Table.from_pandas(people.head(100), preserve_index=False), folder / "part-00000.parquet")
    pq.write_table(
        pa.Table.from_pandas(people.iloc[100:200].drop(columns=["sex"]), preserve_index=False),
        folder / "part-00001.parquet",
    )
    with pytest.raises(PhmInputError, match=r"part-00001.parquet lacks column.*sex"):
        audit_table(str(folder), SCORES, spec, engine="duckdb")


def test_cli_engine_bad_table_exits_2_and_writes_nothing(tmp_path):
    out = tmp_path / "report"
    proc = _cli(str(tmp_path / "none"), str(out), "--score", "s", "--group", "sex")
    assert proc.returncode == 2, proc.stderr
    assert "does not exist" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_cli_duckdb_engine_writes_the_report(people, tmp_path):
    path = tmp_path / "p.parquet"
    people.to_parquet(path)
    out = tmp_path / "report"
    proc = _cli(str(path), str(out), "--quiet", "--score", "cost_prior", "--group", "imd_quintile", "--bootstrap", "20")
    assert proc.returncode == 0, proc.stderr
    metrics = pd.read_csv(out / "metrics.csv")
    assert {"fairness", "calibration", "thresholds"} <= set(metrics["analysis"])
    assert (out / "index.html").is_file()


def test_an_engine_leaves_nothing_behind(people, tmp_path, monkeypatch):
    """DuckDB's ranked table is dropped from the user's database, and its temporary folder removed."""
    import duckdb

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    spec = AuditSpec(n_boot=0, analyses=("fairness",), attributes=("sex",), intersections=())
    con = duckdb.connect()
    audit_table(con.from_df(people), SCORES, spec, engine="duckdb")
    assert con.execute("select table_name from information_schema.tables").fetchall() == []
    path = tmp_path / "p.parquet"
    people.to_parquet(path)
    audit_table(str(path), SCORES, spec, engine="duckdb")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.parquet"]
    kept = tmp_path / "mine"
    kept.mkdir()
    (kept / "notes.txt").write_text("the user's own")
    audit_table(str(path), SCORES, spec, engine="duckdb", workdir=str(kept))
    assert sorted(p.name for p in kept.iterdir()) == ["notes.txt"]  # the user's folder and file stay


def test_cli_engine_column_of_the_wrong_type_is_one_line(people, tmp_path):
    path = tmp_path / "p.parquet"
    people.assign(cost_prior=people["cost_prior"].astype(str)).to_parquet(path)
    out = tmp_path / "report"
    proc = _cli(str(path), str(out), "--score", "cost_prior", "--group", "sex")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "phm-audit audit: error: column 'cost_prior' (score cost_prior) must be numeric in the duckdb engine; it is "
        "String: cast it, or name the numeric column that holds it"
    ]
    assert not out.exists()
