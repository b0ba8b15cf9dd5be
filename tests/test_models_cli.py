"""``phm-audit models`` and ``phm-audit score``: outputs, and every bad input as exit 2 with nothing written."""

from __future__ import annotations

import argparse
import pickle

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from phm_audit._io import read_table, write_table
from phm_audit.cli import main
from phm_audit.models import fit_and_score, get_model, list_models, split_cohort
from phm_audit.synth import generate

FEATURES = ["age", "n_ltc_recorded", "cost_prior"]
TREE_PREDICTOR = "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"


pytestmark = pytest.mark.usefixtures("one_openmp_thread", "callables_importable")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A 6,000-person cohort, an independent training cohort, and supplied models and score tables."""
    d = tmp_path_factory.mktemp("score")
    cohort = generate("england", 6000, seed=31)
    write_table(cohort, d / "cohort.parquet")
    write_table(generate("england", 6000, seed=32), d / "train.parquet")
    pipe = make_pipeline(StandardScaler(), LogisticRegression()).fit(
        cohort[FEATURES], cohort["emergency_admission_next"]
    )
    sio.dump(pipe, d / "pipe.skops")
    (d / "pipe.pkl").write_bytes(pickle.dumps(pipe))
    sio.dump(
        HistGradientBoostingClassifier(max_iter=3).fit(cohort[FEATURES], cohort["emergency_admission_next"]),
        d / "hgb.skops",
    )
    frail = cohort[["age"]].assign(frailty_score=cohort["frailty_deficits_recorded"])
    sio.dump(LogisticRegression().fit(frail, cohort["emergency_admission_next"]), d / "frailty.skops")
    (d / "not_a_model.skops").write_text("patient_id,score\n1,0.5\n")
    sio.dump({"weights": [1.0, 2.0]}, d / "dict.skops")
    good = pd.DataFrame({"patient_id": cohort["patient_id"], "score": np.linspace(0, 1, len(cohort))})
    good.to_csv(d / "good.csv", index=False)
    bad = {
        "missing": good.iloc[3:],
        "duplicate": pd.concat([good, good.iloc[:2]]),
        "unknown": pd.concat([good.iloc[:-1], pd.DataFrame({"patient_id": [99_999_999], "score": [0.1]})]),
        "nan": good.assign(score=good["score"].where(good.index != 7)),
        "inf": good.assign(score=good["score"].where(good.index != 7, np.inf)),
        "text": good.astype({"score": object}).assign(score=lambda t: t["score"].where(t.index != 7, "very high")),
    }
    for name, table in bad.items():
        table.to_csv(d / f"{name}.csv", index=False)
    return d, cohort, pipe


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_models_lists_every_model_one_line_each(capsys):
    code, out, _ = _run(capsys, "models")
    assert code == 0
    lines = out.splitlines()
    for name in list_models():
        (line,) = [x for x in lines if x.startswith(name + " ")]
        model = get_model(name)
        assert model.kind in line and model.target in line
    assert "rec_* (17)" in out


def test_models_shows_one_in_full(capsys):
    code, out, _ = _run(capsys, "models", "emergency_admission")
    assert code == 0 and "ethnicity" in out and "rec_thyroid" in out and "QAdmissions" in out


def test_models_unknown_name(capsys):
    code, _, err = _run(capsys, "models", "ltc_cont")
    assert code == 2 and "did you mean 'ltc_count'" in err


def test_score_a_rule_writes_every_person(files, capsys, tmp_path):
    d, cohort, _ = files
    code, out, _ = _run(
        capsys, "score", "--cohort", str(d / "cohort.parquet"), "--model", "ltc_count", "--out", str(tmp_path / "s.csv")
    )
    assert code == 0 and "every person scored" in out
    scores = pd.read_csv(tmp_path / "s.csv")
    assert list(scores.columns) == ["patient_id", "score"]
    np.testing.assert_array_equal(scores["patient_id"], cohort["patient_id"])
    np.testing.assert_array_equal(scores["score"], cohort["n_ltc_recorded"])


def test_score_a_learner_writes_only_the_audited_part(files, capsys, tmp_path):
    d, cohort, _ = files
    out_file = tmp_path / "s.parquet"
    code, out, _ = _run(
        capsys,
        "score",
        "--cohort",
        str(d / "cohort.parquet"),
        "--model",
        "actuarial_cost",
        "--label",
        "n_conditions_next",
        "--seed",
        "3",
        "--out",
        str(out_file),
    )
    assert code == 0
    train, audit = split_cohort(cohort, seed=3)
    assert f"fitted on {len(train):,} people and {len(audit):,} others scored" in out
    assert "split by a hash of patient_id (seed 3)" in out
    written = read_table(out_file)
    np.testing.assert_array_equal(written["patient_id"], audit["patient_id"])
    expected = fit_and_score(get_model("actuarial_cost", label="n_conditions_next"), train, audit)
    np.testing.assert_array_equal(written["score"].to_numpy(), expected)


def test_score_is_deterministic_to_the_byte(files, capsys, tmp_path):
    d, _, _ = files
    for name in ("a.csv", "b.csv"):
        assert (
            _run(
                capsys,
                "score",
                "--cohort",
                str(d / "cohort.parquet"),
                "--model",
                "emergency_admission",
                "--out",
                str(tmp_path / name),
            )[0]
            == 0
        )
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


def test_score_with_a_train_cohort_scores_everyone(files, capsys, tmp_path):
    d, cohort, _ = files
    code, out, _ = _run(
        capsys,
        "score",
        "--cohort",
        str(d / "cohort.parquet"),
        "--model",
        "clinical_need",
        "--train-cohort",
        str(d / "train.parquet"),
        "--out",
        str(tmp_path / "s.csv"),
    )
    assert code == 0 and "every person scored" in out
    assert len(pd.read_csv(tmp_path / "s.csv")) == len(cohort)


def test_score_round_trips_through_a_scores_table(files, capsys, tmp_path):
    d, _, _ = files
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    assert (
        _run(
            capsys,
            "score",
            "--cohort",
            str(d / "cohort.parquet"),
            "--model",
            "clinician_judgement",
            "--out",
            str(first),
        )[0]
        == 0
    )
    assert (
        _run(capsys, "score", "--cohort", str(d / "cohort.parquet"), "--scores", str(first), "--out", str(second))[0]
        == 0
    )
    a = pd.read_csv(first, float_precision="round_trip")
    b = pd.read_csv(second, float_precision="round_trip")
    assert list(a.columns) == list(b.columns) == ["patient_id", "score"]
    np.testing.assert_array_equal(a["patient_id"], b["patient_id"])
    # CSV keeps the shortest text that reads back as the same double, and phm-audit reads it back exactly
    np.testing.assert_array_equal(a["score"].to_numpy(np.float64), b["score"].to_numpy(np.float64))


def test_a_cohort_csv_is_read_back_to_the_last_digit(tmp_path):
    from phm_audit._io import read_table

    values = np.array([0.1 + 0.2, 1 / 3, 2.0**-1074, 123456.78901234567, 9.999999999999999e22])
    pd.DataFrame({"x": values}).to_csv(tmp_path / "x.csv", index=False)
    np.testing.assert_array_equal(read_table(tmp_path / "x.csv")["x"].to_numpy(), values)


def test_score_a_skops_pipeline_and_a_trusted_type(files, capsys, tmp_path):
    d, cohort, pipe = files
    code, _, _ = _run(
        capsys,
        "score",
        "--cohort",
        str(d / "cohort.parquet"),
        "--model-file",
        str(d / "pipe.skops"),
        "--out",
        str(tmp_path / "s.csv"),
    )
    assert code == 0
    written = pd.read_csv(tmp_path / "s.csv", float_precision="round_trip")
    np.testing.assert_array_equal(written["score"], pipe.predict_proba(cohort[FEATURES])[:, 1])
    code, _, _ = _run(
        capsys,
        "score",
        "--cohort",
        str(d / "cohort.parquet"),
        "--model-file",
        str(d / "hgb.skops"),
        "--trust",
        TREE_PREDICTOR,
        "--out",
        str(tmp_path / "t.csv"),
    )
    assert code == 0


def test_score_a_model_with_a_feature_map(files, capsys, tmp_path):
    d, _, _ = files
    code, _, _ = _run(
        capsys,
        "score",
        "--cohort",
        str(d / "cohort.parquet"),
        "--model-file",
        str(d / "frailty.skops"),
        "--feature-map",
        "frailty_score=frailty_deficits_recorded",
        "--out",
        str(tmp_path / "s.csv"),
    )
    assert code == 0


def test_score_a_pickle_only_with_allow_pickle_and_a_warning(files, capsys, tmp_path):
    d, _, _ = files
    code, _, err = _run(
        capsys,
        "score",
        "--cohort",
        str(d / "cohort.parquet"),
        "--model-file",
        str(d / "pipe.pkl"),
        "--allow-pickle",
        "--out",
        str(tmp_path / "s.csv"),
    )
    assert code == 0
    assert "warning:" in err and "runs code from the file" in err
    assert (tmp_path / "s.csv").exists()


def test_score_a_callable(files, capsys, tmp_path):
    d, cohort, _ = files
    code, _, _ = _run(
        capsys,
        "score",
        "--cohort",
        str(d / "cohort.parquet"),
        "--model-callable",
        "_callables:risk",
        "--out",
        str(tmp_path / "s.csv"),
        "--quiet",
    )
    assert code == 0
    assert len(pd.read_csv(tmp_path / "s.csv")) == len(cohort)


BAD = [
    (["--scores", "{d}/missing.csv"], "3 person(s) of the cohort have no score"),
    (["--scores", "{d}/duplicate.csv"], "2 duplicate id(s)"),
    (["--scores", "{d}/unknown.csv"], "1 id(s) not in the cohort (e.g. 99999999)"),
    (["--scores", "{d}/nan.csv"], "1 missing or NaN score(s) (first at row 8)"),
    (["--scores", "{d}/inf.csv"], "1 infinite score(s) (first at row 8)"),
    (["--scores", "{d}/text.csv"], "1 non-numeric score(s) (first: 'very high' at row 8)"),
    (["--scores", "{d}/missing.csv"], "has 5,997 rows for 6,000 people"),
    (["--scores", "{d}/good.csv", "--score-column", "risk"], "no column 'risk'"),
    (["--model-file", "{d}/not_a_model.skops"], "is not a skops file"),
    (["--model-file", "{d}/dict.skops"], "holds a dict, not a model"),
    (["--model-file", "{d}/hgb.skops"], f"needs 1 type(s) that are not trusted: {TREE_PREDICTOR}"),
    (["--model-file", "{d}/pipe.pkl"], "refusing to load"),
    (["--model-file", "{d}/good.csv"], "must end in .skops"),
    (["--model-file", "{d}/frailty.skops"], "feature(s) the cohort does not have: frailty_score"),
    (["--model-file", "{d}/frailty.skops", "--feature-map", "frailty"], "must be NAME=COLUMN"),
    (["--model-file", "{d}/nope.skops"], "does not exist"),
    (["--model-callable", "_callables:raises"], "raised ValueError: the vendor's model needs column frailty_score"),
    (["--model-callable", "_callables:wrong_shape"], "returned an array of shape (6000, 2)"),
    (["--model-callable", "_callables:too_short"], "returned 5,999 scores for 6,000 people"),
    (["--model-callable", "_callables:rissk"], "did you mean 'risk'"),
    (["--model", "actuarial_cst"], "unknown model 'actuarial_cst' (did you mean 'actuarial_cost'?)"),
    (["--model", "actuarial_cost", "--label", "cost_nxt"], "unknown label 'cost_nxt' (did you mean 'cost_next'?)"),
    (["--model", "ltc_count", "--label", "cost_next"], "'ltc_count' is not trained"),
    (["--model", "ltc_count", "--train-cohort", "{d}/train.parquet"], "--train-cohort cannot be used with"),
    (["--model", "actuarial_cost", "--train-cohort", "{d}/cohort.parquet"], "share 6,000 people"),
    (["--model", "ltc_count", "--seed", "3"], "--seed cannot be used with --model ltc_count"),
    (["--model", "actuarial_cost", "--trust", "x.Y"], "--trust cannot be used with --model"),
    (["--scores", "{d}/good.csv", "--label", "cost_next"], "--label cannot be used with --scores"),
    (["--model-file", "{d}/pipe.skops", "--score-column", "risk"], "--score-column cannot be used with --model-file"),
    (["--model-callable", "_callables:risk", "--trust", "x.Y"], "--trust cannot be used with --model-callable"),
    (["--model", "actuarial_cost", "--cohort", "{d}/absent.parquet"], "does not exist"),
]


@pytest.mark.parametrize(("args", "expected"), BAD, ids=[f"{i}-{e[:30]}" for i, (_, e) in enumerate(BAD)])
def test_bad_input_is_exit_2_one_line_and_nothing_written(files, capsys, tmp_path, args, expected):
    d, _, _ = files
    argv = ["score", "--cohort", str(d / "cohort.parquet")] + [a.format(d=d) for a in args]
    argv += ["--out", str(tmp_path / "scores.csv")]
    code, _, err = _run(capsys, *argv)
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("phm-audit score: error: "), err
    assert expected in err, err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["score", "--cohort", "c.parquet", "--out", "s.csv"], "one of the arguments --model"),
        (["score", "--cohort", "c.parquet", "--model", "a", "--scores", "s.csv", "--out", "s.csv"], "not allowed"),
        (["score", "--cohort", "c.parquet", "--model", "ltc_count", "--out", "s.txt"], "must end in .parquet or .csv"),
    ],
)
def test_usage_errors_are_exit_2(capsys, argv, expected):
    code, _, err = _run(capsys, *argv)
    assert code == 2 and expected in err


SUPPLIED_FLAGS = ("--model-file", "--scores", "--model-callable", "--trust", "--allow-pickle", "--feature-map")


def _options(command: str) -> dict[str, argparse.Action]:
    from phm_audit.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return {flag: action for action in sub.choices[command]._actions for flag in action.option_strings}


def test_score_and_audit_share_the_supplied_model_options():
    score, audit = _options("score"), _options("audit")
    for flag in (*SUPPLIED_FLAGS, "--score-column"):
        assert score[flag].metavar == audit[flag].metavar, flag
        assert audit[flag].help.startswith(score[flag].help.removesuffix(")")[:40]), flag
    # score uses one model; audit takes any number of each
    assert {audit[f].__class__ for f in SUPPLIED_FLAGS[:3]} == {argparse._AppendAction}
    assert {score[f].__class__ for f in SUPPLIED_FLAGS[:3]} == {argparse._StoreAction}
