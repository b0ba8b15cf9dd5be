"""``phm-audit audit --cohort`` with supplied models: the same audited people, provenance, explanations."""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from phm_audit._io import write_table
from phm_audit.cli import main
from phm_audit.models import split_cohort

FEATURES = ["age", "n_ltc_recorded", "cost_prior"]
SEED = 4


pytestmark = pytest.mark.usefixtures("one_openmp_thread", "callables_importable")


@pytest.fixture(scope="module")
def files(tmp_path_factory, cohort_factory):
    """A 4,000-person cohort, its audited half, a skops pipeline, score tables and a pickle."""
    d = tmp_path_factory.mktemp("supplied")
    cohort = cohort_factory("england", 4000, 41)
    write_table(cohort, d / "cohort.parquet")
    write_table(cohort_factory("england", 3000, 42), d / "train.parquet")
    _, audited = split_cohort(cohort, seed=SEED)
    pipe = make_pipeline(StandardScaler(), LogisticRegression()).fit(
        cohort[FEATURES], cohort["emergency_admission_next"]
    )
    sio.dump(pipe, d / "pipe.skops")
    (d / "pipe.pkl").write_bytes(pickle.dumps(pipe))
    linear = make_pipeline(StandardScaler(), LinearRegression()).fit(cohort[FEATURES], cohort["cost_next"])
    sio.dump(linear, d / "linear.skops")
    # distinct scores for everyone (a vendor scores the whole population), so no ties at a threshold
    rng = np.random.default_rng(7)
    vendor = pd.DataFrame({"patient_id": cohort["patient_id"], "score": rng.permutation(len(cohort)) / len(cohort)})
    vendor.to_csv(d / "vendor.csv", index=False)
    in_audit = vendor["patient_id"].isin(audited["patient_id"]).to_numpy()
    vendor[in_audit].to_csv(d / "vendor_audited.csv", index=False)
    # three audited people without a score
    dropped = audited["patient_id"].iloc[[5, 17, 40]].to_numpy()
    vendor[~vendor["patient_id"].isin(dropped)].to_csv(d / "vendor_gaps.csv", index=False)
    return d, cohort, audited, vendor, dropped


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _audit(d: Path, out: Path, *extra: str) -> list[str]:
    return [
        "audit",
        "--cohort",
        str(d / "cohort.parquet"),
        "--bootstrap",
        "20",
        "--seed",
        str(SEED),
        "--out",
        str(out),
        "--quiet",
        *extra,
    ]


def _round5(count: np.ndarray) -> np.ndarray:
    """Disclosure rounding, written out: nearest 5 (halves up), never down to 7 or fewer."""
    rounded = np.floor(count / 5 + 0.5) * 5
    return np.where((count > 7) & (rounded <= 7), 10, rounded)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_supplied_models_are_audited_with_a_builtin_on_the_same_people(files, capsys, tmp_path):
    d, cohort, audited, vendor, _ = files
    out = tmp_path / "report"
    code, _, err = _run(
        capsys,
        *_audit(
            d,
            out,
            "--model",
            "actuarial_cost",
            "--model-file",
            str(d / "pipe.skops"),
            "--scores",
            str(d / "vendor.csv"),
            "--model-callable",
            "_callables:risk",
            "--group",
            "imd_quintile",
            "--operating-point",
            "top_pct:10",
        ),
    )
    assert code == 0, err
    metrics = pd.read_csv(out / "metrics.csv", keep_default_na=False, na_values=[""])
    assert set(metrics["model"]) == {"actuarial_cost", "pipe", "vendor", "_callables:risk"}
    doc = json.loads((out / "audit.json").read_text())
    kinds = {m["name"]: m["kind"] for m in doc["models"]}
    supplied = dict.fromkeys(("pipe", "vendor", "_callables:risk"), "supplied")
    assert kinds == {"actuarial_cost": "actuarial", **supplied}
    # every model was audited on the audited half only, the same people
    assert doc["cohort"]["n"] == _round5(np.array([len(audited)]))[0] and len(audited) < len(cohort)

    # differential: the vendor's selection rate per deprivation fifth, from its scores on the audited people
    scores = vendor.set_index("patient_id")["score"].reindex(audited["patient_id"]).to_numpy()
    k = int(np.ceil(0.10 * len(audited)))
    flagged = np.zeros(len(audited), dtype=bool)
    flagged[np.argsort(-scores, kind="stable")[:k]] = True
    imd = audited["imd_quintile"].astype(str).to_numpy()
    rows = metrics[
        (metrics["model"] == "vendor")
        & (metrics["analysis"] == "fairness")
        & (metrics["metric"] == "selection_rate")
        & (metrics["operating_point"] == "top_10pct")
        & (metrics["attribute"] == "imd_quintile")
    ].set_index("group")
    assert sorted(rows.index.astype(str)) == ["1", "2", "3", "4", "5"]
    for group, row in rows.iterrows():
        in_group = imd == str(group)
        expected = _round5(np.array([flagged[in_group].sum()]))[0] / _round5(np.array([in_group.sum()]))[0]
        assert row["value"] == pytest.approx(expected, rel=1e-12), group
        assert row["n"] == _round5(np.array([in_group.sum()]))[0]

    prov = doc["provenance"]
    assert {f["name"]: f["sha256"] for f in prov["supplied_files"]} == {
        "pipe.skops": _sha256(d / "pipe.skops"),
        "vendor.csv": _sha256(d / "vendor.csv"),
    }
    assert prov["cohort"] == {"name": "cohort.parquet", "sha256": _sha256(d / "cohort.parquet")}
    assert (prov["scenario"], prov["seed"]) == ("england", 41)
    assert prov["n_audited"] == len(audited) and prov["n_cohort"] == len(cohort)
    assert prov["model_callables"] == ["_callables:risk"]
    assert "created" in prov and prov["deterministic"] is False


@pytest.mark.slow
def test_a_scores_table_may_hold_only_the_audited_people(files, capsys, tmp_path):
    d, _, audited, _, _ = files
    out = tmp_path / "report"
    code, _, err = _run(
        capsys,
        *_audit(d, out, "--model", "ltc_count", "--scores", str(d / "vendor_audited.csv"), "--group", "sex"),
    )
    assert code == 0, err
    doc = json.loads((out / "audit.json").read_text())
    assert [m["name"] for m in doc["models"]] == ["ltc_count", "vendor_audited"]
    assert doc["provenance"]["n_audited"] == len(audited)


@pytest.mark.slow
def test_only_supplied_models_audit_every_person(files, capsys, tmp_path):
    d, cohort, _, _, _ = files
    out = tmp_path / "report"
    code, _, err = _run(
        capsys,
        *_audit(d, out, "--scores", str(d / "vendor.csv"), "--model-file", str(d / "pipe.skops"), "--group", "sex"),
    )
    assert code == 0, err
    doc = json.loads((out / "audit.json").read_text())
    assert doc["provenance"]["n_audited"] == len(cohort) and doc["provenance"]["n_trained"] is None
    assert {m["name"] for m in doc["models"]} == {"pipe", "vendor"}


def test_a_pickle_with_allow_pickle_warns_in_one_line(files, capsys, tmp_path):
    d, _, _, _, _ = files
    out = tmp_path / "report"
    code, _, err = _run(
        capsys, *_audit(d, out, "--model-file", str(d / "pipe.pkl"), "--allow-pickle", "--group", "sex")
    )
    assert code == 0, err
    assert err.startswith("phm-audit audit: warning: ") and "runs code from the file" in err
    assert err.count("\n") == 1


@pytest.mark.slow
def test_deterministic_gives_byte_identical_reports(files, capsys, tmp_path):
    d, _, _, _, _ = files
    extra = ["--model", "ltc_count", "--scores", str(d / "vendor.csv"), "--group", "imd_quintile", "--deterministic"]
    # the report's name is its folder's name, so the two folders share a name
    for name in ("a", "b"):
        assert _run(capsys, *_audit(d, tmp_path / name / "report", *extra))[0] == 0
    a, b = tmp_path / "a" / "report", tmp_path / "b" / "report"
    first = (a / "audit.json").read_bytes()
    assert first == (b / "audit.json").read_bytes()
    assert (a / "metrics.csv").read_bytes() == (b / "metrics.csv").read_bytes()
    prov = json.loads(first)["provenance"]
    assert "created" not in prov and prov["deterministic"] is True


@pytest.mark.slow
def test_explain_adds_explanations_of_every_model_it_can_call(files, capsys, tmp_path):
    d, _, _, _, _ = files
    out = tmp_path / "report"
    code, _, err = _run(
        capsys,
        *_audit(
            d,
            out,
            "--model",
            "prior_cost",
            "--model-file",
            str(d / "linear.skops"),
            "--scores",
            str(d / "vendor.csv"),
            "--group",
            "imd_quintile",
            "--explain",
            "--explain-sample",
            "500",
            "--explain-background",
            "100",
        ),
    )
    assert code == 0, err
    metrics = pd.read_csv(out / "metrics.csv", keep_default_na=False, na_values=[""])
    explained = metrics[metrics["analysis"] == "explain"]
    assert set(explained["model"]) == {"prior_cost", "linear"}
    for model in ("prior_cost", "linear"):
        rows = explained[explained["model"] == model]
        sample = rows[rows["metric"] == "sample_size"]["value"]
        assert sample.tolist() == [500.0]
        assert rows["feature"].notna().any() and (rows["feature"].dropna() != "").any()
    linear_features = set(explained[explained["model"] == "linear"]["feature"].dropna())
    assert set(FEATURES) <= linear_features
    notes = json.loads((out / "audit.json").read_text())["notes"]
    assert any("vendor: only its scores are known" in n for n in notes)


BAD = [
    (["--model-file", "{d}/absent.skops"], "model file {d}/absent.skops does not exist"),
    (
        ["--model", "ltc_count", "--scores", "{d}/vendor_gaps.csv"],
        "scores table {d}/vendor_gaps.csv: 3 of the {n:,} people to score have no score "
        "(first missing: patient_id {f})",
    ),
    (["--model-file", "{d}/pipe.pkl"], "pass --allow-pickle"),
    (["--model", "ltc_count", "--explain", "--explain-sample", "1000000"], "--explain-sample 1,000,000 is larger than"),
    (["--scores", "{d}/vendor.csv", "--explain"], "--explain needs a model phm-audit can call"),
    (["--model", "ltc_count", "--explain-sample", "10"], "add --explain"),
    (["--model", "ltc_count", "--trust", "x.Y"], "--trust apply to --model-file only"),
    (["--model", "ltc_count", "--score-column", "risk"], "--score-column risk names a column of --scores"),
    (["--scores", "{d}/vendor.csv", "--score-column", "risk"], "has no column 'risk'"),
    (["--scores", "{d}/vendor.csv", "--train-cohort", "{d}/train.parquet"], "--train-cohort"),
    (["--scores", "{d}/vendor.csv", "--scores", "{d}/vendor.csv"], "two models are named 'vendor'"),
    (["--model-file", "{d}/pipe.skops", "--feature-map", "age"], "must be NAME=COLUMN"),
    (
        ["--model-file", "{d}/pipe.skops", "--model-file", "{d}/linear.skops", "--feature-map", "agee=age"],
        "--feature-map names agee, which none of the 2 --model-file models uses",
    ),
    (["--model", "ltc_count", "--need", "n_conditions_next"], "--need name(s) columns of --table"),
    (["--group", "sex"], "--cohort needs at least one model"),
]


@pytest.mark.parametrize(("args", "expected"), BAD, ids=[f"{i}-{e[:30]}" for i, (_, e) in enumerate(BAD)])
def test_bad_input_is_exit_2_one_line_and_nothing_written(files, capsys, tmp_path, args, expected):
    d, _, audited, _, dropped = files
    out = tmp_path / "report"
    argv = _audit(d, out, *(a.format(d=d) for a in args))
    code, _, err = _run(capsys, *argv)
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("phm-audit audit: error: "), err
    first = audited["patient_id"][audited["patient_id"].isin(dropped)].iloc[0]
    assert expected.format(d=d, n=len(audited), f=first) in err, err
    assert list(tmp_path.iterdir()) == []


def test_explain_with_a_table_is_refused(files, capsys, tmp_path):
    d, cohort, _, _, _ = files
    table = cohort[["patient_id", "imd_quintile", "n_conditions_next", "cost_next", "cost_prior"]]
    path = tmp_path / "extract.csv"
    table.to_csv(path, index=False)
    out = tmp_path / "report"
    argv = ["audit", "--table", str(path), "--score", "cost_prior", "--group", "imd_quintile"]
    argv += ["--need", "n_conditions_next", "--cost", "cost_next", "--explain", "--out", str(out)]
    code, _, err = _run(capsys, *argv)
    assert code == 2 and err.count("\n") == 1
    assert "--explain needs --cohort and a model phm-audit can call" in err
    assert not out.exists()
    code, _, err = _run(capsys, *argv[:-3], "--model-file", str(d / "pipe.skops"), "--out", str(out))
    assert code == 2 and "--model-file cannot be used with --table" in err
    assert not out.exists()


@pytest.mark.slow
def test_label_choice_from_the_command_line_is_the_api_under_disclosure_control(files, capsys, tmp_path):
    """``audit --label-choice`` publishes what ``label_choice`` computes on the same split, disclosure applied."""
    from phm_audit.audit import AuditSpec
    from phm_audit.models import LABELS
    from phm_audit.pipeline import label_choice
    from phm_audit.report import DisclosureControl
    from phm_audit.report._disclosure import disclose_result
    from phm_audit.report._outputs import read_metrics

    d, cohort, audited, _, _ = files
    out = tmp_path / "report"
    code, _, err = _run(capsys, *_audit(d, out, "--model", "prior_cost", "--label-choice"))
    assert code == 0, err
    published = read_metrics(out / "metrics.csv")
    published = published[published["analysis"] == "label_choice"]
    assert {f"actuarial_cost[{label}]" for label in LABELS} <= set(published["model"])

    train, _ = split_cohort(cohort, seed=SEED)
    expected = disclose_result(label_choice(train, audited, AuditSpec(n_boot=20, seed=SEED)), DisclosureControl())
    expected = expected.table()
    keys = ["model", "attribute", "group", "operating_point", "metric", "target", "feature"]
    merged = published.merge(expected, on=keys, suffixes=("", "_api"), how="outer", indicator=True)
    assert (merged["_merge"] == "both").all(), merged.loc[merged["_merge"] != "both", keys].head()
    for column in ("value", "ci_low", "ci_high", "n"):
        np.testing.assert_allclose(
            merged[column].to_numpy(float), merged[f"{column}_api"].to_numpy(float), rtol=1e-9, equal_nan=True
        )


def test_label_choice_with_a_table_is_refused_before_anything_is_written(files, capsys, tmp_path):
    d, *_ = files
    out = tmp_path / "report"
    code, _, err = _run(
        capsys,
        "audit",
        "--table",
        str(d / "vendor.csv"),
        "--score",
        "score",
        "--group",
        "patient_id",
        "--need",
        "score",
        "--label-choice",
        "--out",
        str(out),
    )
    assert code == 2 and "--label-choice retrains models, so it needs --cohort" in err
    assert len(err.strip().splitlines()) == 1 and not out.exists()
