"""Models users bring: skops and pickle files, tables of scores, Python callables."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from phm_audit.exceptions import PhmInputError, PhmWarning, UntrustedModelError
from phm_audit.models import (
    RiskModel,
    check_risk_model,
    load_callable,
    load_model_file,
    load_pickle_model,
    load_scores_table,
    load_skops_model,
    split_cohort,
)

FEATURES = ["age", "n_ltc_recorded", "cost_prior"]
TREE_PREDICTOR = "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"


@pytest.fixture(scope="module")
def parts(cohort_factory):
    return split_cohort(cohort_factory("england", 20_000, 8), seed=8)


@pytest.fixture(scope="module")
def pipeline(parts):
    train, _ = parts
    return make_pipeline(StandardScaler(), LogisticRegression()).fit(train[FEATURES], train["emergency_admission_next"])


@pytest.fixture(autouse=True)
def _callables_importable(monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).parent))


# --- skops -----------------------------------------------------------------------------------


def test_skops_round_trip_of_a_pipeline(tmp_path, parts, pipeline):
    _, audit = parts
    path = tmp_path / "pipe.skops"
    sio.dump(pipeline, path)
    model = load_skops_model(path)
    assert isinstance(model, RiskModel)
    assert (model.name, model.kind, model.target, model.features) == ("pipe", "supplied", "unknown", FEATURES)
    expected = pipeline.predict_proba(audit[FEATURES])[:, 1]
    np.testing.assert_array_equal(model.fit(audit).score(audit), expected)
    assert check_risk_model(model, audit) == []


def test_a_regressor_scores_with_predict(tmp_path, parts):
    train, audit = parts
    reg = make_pipeline(StandardScaler(), LinearRegression()).fit(train[FEATURES], train["cost_next"])
    sio.dump(reg, tmp_path / "reg.skops")
    model = load_skops_model(tmp_path / "reg.skops", name="vendor", target="cost_next")
    assert (model.name, model.target) == ("vendor", "cost_next")
    np.testing.assert_array_equal(model.score(audit), reg.predict(audit[FEATURES]))


def test_an_untrusted_type_is_refused_until_trusted(tmp_path, parts):
    train, audit = parts
    clf = HistGradientBoostingClassifier(max_iter=5, random_state=0).fit(
        train[FEATURES], train["emergency_admission_next"]
    )
    path = tmp_path / "hgb.skops"
    sio.dump(clf, path)
    # skops' own reading of the file is the reference: which loss and binning types it trusts by default
    # differs between skops releases (0.9 trusts none of them), the tree predictor it never trusts
    untrusted = sio.get_untrusted_types(file=path)
    assert TREE_PREDICTOR in untrusted
    listed = re.escape(f"needs {len(untrusted)} type(s) that are not trusted: {', '.join(untrusted)}.")
    with pytest.raises(UntrustedModelError, match=f"{listed}.*--trust {re.escape(TREE_PREDICTOR)}"):
        load_skops_model(path)
    with pytest.raises(UntrustedModelError):
        load_skops_model(path, trust=["sklearn.linear_model.LogisticRegression"])
    model = load_skops_model(path, trust=untrusted)
    np.testing.assert_array_equal(model.score(audit), clf.predict_proba(audit[FEATURES])[:, 1])


def test_missing_features_are_listed_with_the_feature_map_fix(tmp_path, parts):
    train, audit = parts
    renamed = train[FEATURES].rename(columns={"n_ltc_recorded": "n_conditions", "cost_prior": "spend"})
    fitted = make_pipeline(StandardScaler(), LinearRegression()).fit(renamed, train["cost_next"])
    sio.dump(fitted, tmp_path / "renamed.skops")
    with pytest.raises(PhmInputError, match=r"2 feature.*n_conditions, spend.*--feature-map NAME=COLUMN"):
        load_skops_model(tmp_path / "renamed.skops").fit(audit)
    model = load_skops_model(
        tmp_path / "renamed.skops", feature_map=["n_conditions=n_ltc_recorded", "spend=cost_prior"]
    )
    assert model.features == FEATURES
    expected = fitted.predict(audit[FEATURES].set_axis(["age", "n_conditions", "spend"], axis=1))
    np.testing.assert_array_equal(model.score(audit), expected)


def test_a_feature_map_name_the_model_does_not_use_is_refused(tmp_path, parts, pipeline):
    _, audit = parts
    sio.dump(pipeline, tmp_path / "p.skops")
    with pytest.raises(PhmInputError, match=r"does not use.*did you mean 'age'"):
        load_skops_model(tmp_path / "p.skops", feature_map={"ages": "age"}).fit(audit)


def test_a_model_reading_outcomes_is_refused(tmp_path, parts):
    train, audit = parts
    leaky = LinearRegression().fit(train[["cost_prior", "need_true_next"]], train["cost_next"])
    sio.dump(leaky, tmp_path / "leaky.skops")
    with pytest.raises(PhmInputError, match=r"may not read need_true_next"):
        load_skops_model(tmp_path / "leaky.skops").fit(audit)


def test_a_model_fitted_on_an_array_cannot_be_matched_to_columns(tmp_path, parts):
    train, _ = parts
    bare = LinearRegression().fit(train[FEATURES].to_numpy(), train["cost_next"])
    sio.dump(bare, tmp_path / "bare.skops")
    with pytest.raises(PhmInputError, match=r"fitted without column names"):
        load_skops_model(tmp_path / "bare.skops")


def test_a_multiclass_classifier_is_refused(tmp_path, parts):
    train, audit = parts
    multi = make_pipeline(StandardScaler(), LogisticRegression()).fit(train[FEATURES], train["imd_quintile"])
    sio.dump(multi, tmp_path / "multi.skops")
    with pytest.raises(PhmInputError, match=r"classifier with 5 classes"):
        load_skops_model(tmp_path / "multi.skops").score(audit)


@pytest.mark.parametrize(
    ("content", "expected"),
    [(b"patient_id,score\n1,0.5\n", "not a skops file \\(not a zip"), (None, "holds a dict, not a model")],
)
def test_a_file_that_is_not_a_model(tmp_path, content, expected):
    path = tmp_path / "thing.skops"
    if content is None:
        sio.dump({"weights": [1, 2, 3]}, path)
    else:
        path.write_bytes(content)
    with pytest.raises(PhmInputError, match=expected):
        load_skops_model(path)


def test_a_missing_model_file(tmp_path):
    with pytest.raises(PhmInputError, match=r"does not exist"):
        load_skops_model(tmp_path / "nope.skops")


# --- pickle ----------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".pkl", ".joblib"])
def test_pickle_is_refused_without_allow_pickle_and_warned_with_it(tmp_path, parts, pipeline, suffix):
    _, audit = parts
    path = tmp_path / f"model{suffix}"
    if suffix == ".pkl":
        path.write_bytes(pickle.dumps(pipeline))
    else:
        joblib.dump(pipeline, path)
    with pytest.raises(PhmInputError, match=r"refusing to load.*runs any code.*--allow-pickle"):
        load_pickle_model(path)
    with pytest.raises(PhmInputError, match=r"refusing to load"):
        load_model_file(path)
    with pytest.warns(PhmWarning, match=r"runs code from the file"):
        model = load_pickle_model(path, allow_pickle=True)
    np.testing.assert_array_equal(model.score(audit), pipeline.predict_proba(audit[FEATURES])[:, 1])


def test_a_pickle_of_something_else_is_not_a_model(tmp_path):
    path = tmp_path / "list.pkl"
    path.write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.warns(PhmWarning), pytest.raises(PhmInputError, match=r"holds a list, not a model"):
        load_pickle_model(path, allow_pickle=True)


def test_an_unknown_model_file_extension(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"\x00")
    with pytest.raises(PhmInputError, match=r"must end in .skops, .pkl, .pickle, .joblib"):
        load_model_file(path)


# --- tables of scores ------------------------------------------------------------------------


def _table(audit: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"patient_id": audit["patient_id"].to_numpy(), "score": np.linspace(0, 1, len(audit))})


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_table_of_scores_in_any_order(tmp_path, parts, suffix):
    _, audit = parts
    table = _table(audit)
    path = tmp_path / f"vendor{suffix}"
    shuffled = table.sample(frac=1.0, random_state=1)
    shuffled.to_csv(path, index=False) if suffix == ".csv" else shuffled.to_parquet(path, index=False)
    model = load_scores_table(path, audit)
    assert (model.name, model.kind) == ("vendor", "supplied")
    np.testing.assert_array_equal(model.score(audit), table["score"].to_numpy())
    np.testing.assert_array_equal(model.score(audit.iloc[10:20]), table["score"].to_numpy()[10:20])
    assert check_risk_model(model, audit) == []


def _broken(audit: pd.DataFrame, how: str) -> pd.DataFrame:
    t = _table(audit).astype({"score": object})
    if how == "missing":
        return t.iloc[5:]
    if how == "duplicate":
        return pd.concat([t, t.iloc[:3]])
    if how == "unknown":
        return pd.concat([t, pd.DataFrame({"patient_id": [10**9], "score": [0.5]})])
    if how == "nan":
        t.loc[t.index[4], "score"] = np.nan
    elif how == "inf":
        t.loc[t.index[4], "score"] = np.inf
    elif how == "text":
        t.loc[t.index[4], "score"] = "high"
    return t


@pytest.mark.parametrize(
    ("how", "expected"),
    [
        ("missing", "5 person\\(s\\) of the cohort have no score"),
        ("missing", "has 9,\\d+ rows for 9,\\d+ people"),
        ("duplicate", "3 duplicate id\\(s\\)"),
        ("unknown", "1 id\\(s\\) not in the cohort \\(e.g. 1000000000\\)"),
        ("nan", "1 missing or NaN score\\(s\\) \\(first at row 5\\)"),
        ("inf", "1 infinite score\\(s\\) \\(first at row 5\\)"),
        ("text", "1 non-numeric score\\(s\\) \\(first: 'high' at row 5\\)"),
    ],
)
def test_a_bad_table_of_scores_is_refused(tmp_path, parts, how, expected):
    _, audit = parts
    path = tmp_path / "bad.csv"
    _broken(audit, how).to_csv(path, index=False)
    with pytest.raises(PhmInputError, match=expected):
        load_scores_table(path, audit)


def test_every_problem_of_a_table_is_reported_at_once(parts):
    _, audit = parts
    t = _table(audit).astype({"score": object})
    t.loc[t.index[1], "score"] = "high"
    t.loc[t.index[2], "score"] = np.nan
    t = pd.concat([t.iloc[1:], t.iloc[1:3]])
    with pytest.raises(PhmInputError) as err:
        load_scores_table(t, audit)
    for expected in ("duplicate", "have no score", "non-numeric", "NaN"):
        assert expected in str(err.value)


def test_the_score_column_is_chosen_or_named(parts):
    _, audit = parts
    t = _table(audit).rename(columns={"score": "risk"}).assign(band="x")
    with pytest.raises(PhmInputError, match=r"2 columns besides 'patient_id' \(risk, band\).*--score-column"):
        load_scores_table(t, audit)
    assert load_scores_table(t, audit, score_column="risk").score(audit)[-1] == 1.0
    with pytest.raises(PhmInputError, match=r"no id column 'patient_id'"):
        load_scores_table(t.rename(columns={"patient_id": "nhs_number"}), audit)


def test_a_table_scores_only_the_people_it_has(parts):
    train, audit = parts
    model = load_scores_table(_table(audit), audit)
    with pytest.raises(PhmInputError, match=r"no score for"):
        model.score(train)


# --- callables -------------------------------------------------------------------------------


def test_a_callable_scores_the_cohort(parts):
    _, audit = parts
    model = load_callable("_callables:risk")
    assert (model.name, model.kind) == ("_callables:risk", "supplied")
    expected = audit["n_ltc_recorded"].to_numpy(np.float64) + audit["age"].to_numpy(np.float64) / 200
    np.testing.assert_array_equal(model.score(audit), expected)
    np.testing.assert_array_equal(load_callable("_callables:as_series").score(audit), audit["cost_prior"])


def test_a_callable_never_sees_labels_or_truth(parts):
    _, audit = parts
    assert (load_callable("_callables:sees").score(audit) == 0).all()


@pytest.mark.parametrize(
    ("function", "expected"),
    [
        ("raises", "callable '_callables:raises' raised ValueError: the vendor's model needs column frailty_score"),
        ("wrong_shape", "returned an array of shape \\(\\d+, 2\\); expected one score per person"),
        ("too_short", "returned 9,\\d+ scores for 9,\\d+ people"),
        ("with_nan", "missing or infinite scores \\(the first at row 1: nan\\)"),
        ("words", "non-numeric scores \\(first: 'high' at row 1\\)"),
    ],
)
def test_a_failing_callable_is_a_clear_error(parts, function, expected):
    _, audit = parts
    with pytest.raises(PhmInputError, match=expected):
        load_callable(f"_callables:{function}").score(audit)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("_callables", "must be MODULE:FUNCTION"),
        ("no_such_module_xyz:f", "cannot import module 'no_such_module_xyz'"),
        ("_callables:rissk", "has no 'rissk' \\(did you mean 'risk'\\?\\)"),
        ("_callables:NOT_A_FUNCTION", "is a int, not a function"),
    ],
)
def test_a_bad_callable_spec(spec, expected):
    with pytest.raises(PhmInputError, match=expected):
        load_callable(spec)
