"""The conformance kit catches each deliberate defect of a broken model, and all of them at once."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from phm_audit.models import check_risk_model


class Good:
    """A minimal conforming model: recorded conditions plus a little age."""

    name = "good"
    kind = "rule"
    target = "n_conditions_next"

    def __init__(self) -> None:
        self.features = ["n_ltc_recorded", "age"]

    def fit(self, cohort: pd.DataFrame) -> Good:
        return self

    def score(self, cohort: pd.DataFrame) -> np.ndarray:
        return cohort["n_ltc_recorded"].to_numpy(np.float64) + cohort["age"].to_numpy(np.float64) / 200


class NoName(Good):
    name = None  # type: ignore[assignment]


class MissingTarget:
    name, kind, features = "no_target", "rule", ["age"]

    def fit(self, cohort):
        return self

    def score(self, cohort):
        return cohort["age"].to_numpy(np.float64)


class WrongKind(Good):
    kind = "oracle"


class TupleFeatures(Good):
    def __init__(self) -> None:
        self.features = ("n_ltc_recorded", "age")  # type: ignore[assignment]


class UnknownFeature(Good):
    def __init__(self) -> None:
        self.features = ["n_ltc_recorded", "age", "smoking_status"]


class FitReturnsNone(Good):
    def fit(self, cohort):
        return None


class FitRaises(Good):
    def fit(self, cohort):
        raise RuntimeError("cannot fit")


class ScoreRaises(Good):
    def score(self, cohort):
        raise KeyError("frailty_score")


class ShortScores(Good):
    def score(self, cohort):
        return super().score(cohort)[:-1]


class TwoColumns(Good):
    def score(self, cohort):
        s = super().score(cohort)
        return np.column_stack([s, s])


class ReturnsList(Good):
    def score(self, cohort):
        return super().score(cohort).tolist()


class Float32(Good):
    def score(self, cohort):
        return super().score(cohort).astype(np.float32)


class NaNScores(Good):
    def score(self, cohort):
        s = super().score(cohort)
        s[::10] = np.nan
        return s


class InfScores(Good):
    def score(self, cohort):
        s = super().score(cohort)
        s[0] = np.inf
        return s


class Random(Good):
    def score(self, cohort):
        return super().score(cohort) + np.random.default_rng().random(len(cohort))


class DeclaresTruth(Good):
    def __init__(self) -> None:
        self.features = ["n_ltc_recorded", "need_true"]

    def score(self, cohort):
        return cohort["need_true"].to_numpy(np.float64)


class ReadsTruthSecretly(Good):
    def score(self, cohort):
        return super().score(cohort) + cohort["n_conditions_true"].to_numpy(np.float64)


class ReadsLabel(Good):
    def score(self, cohort):
        return super().score(cohort) + cohort["cost_next"].to_numpy(np.float64) / 1e6


class ReadsUndeclared(Good):
    def score(self, cohort):
        return super().score(cohort) + cohort["cost_prior"].to_numpy(np.float64) / 1e6


class Sorted(Good):
    def score(self, cohort):
        return np.sort(super().score(cohort))


class Constant(Good):
    def score(self, cohort):
        return np.ones(len(cohort))


class Mutates(Good):
    def fit(self, cohort):
        cohort["age"] = 0
        return self


class RandomFit(Good):
    def fit(self, cohort):
        self.offset_ = np.random.default_rng().random()
        return self

    def score(self, cohort):
        return super().score(cohort) + self.offset_


class NoScore:
    name, kind, target, features = "no_score", "rule", "cost_next", ["cost_prior"]

    def fit(self, cohort):
        return self


@pytest.fixture(scope="module")
def cohort(cohort_factory):
    return cohort_factory("england", 3000, 0)


def test_a_good_model_has_no_problems(cohort):
    assert check_risk_model(Good(), cohort) == []


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        (NoName(), "attribute 'name' is a NoneType; it must be a str"),
        (MissingTarget(), "missing attribute 'target'"),
        (WrongKind(), "kind 'oracle' is not one of actuarial, clinical, rule, judgement, supplied"),
        (TupleFeatures(), "attribute 'features' is a tuple; it must be a list"),
        (UnknownFeature(), "features not in the cohort: smoking_status"),
        (FitReturnsNone(), "fit(cohort) returned NoneType; it must return the model itself"),
        (FitRaises(), "fit(cohort) raised RuntimeError: cannot fit"),
        (ScoreRaises(), "score(cohort) raised KeyError"),
        (ShortScores(), "score(cohort) returned 2,999 scores for 3,000 people"),
        (TwoColumns(), "returned an array of shape (3000, 2)"),
        (ReturnsList(), "returned a list; it must return a numpy array"),
        (Float32(), "returned dtype float32; it must return float64"),
        (NaNScores(), "returned 300 missing or infinite scores"),
        (InfScores(), "returned 1 missing or infinite scores (the first at row 1: inf)"),
        (Random(), "score(cohort) is not deterministic"),
        (DeclaresTruth(), "features include ground-truth column(s) need_true while kind is 'rule'"),
        (ReadsTruthSecretly(), "score reads ground-truth column(s) n_conditions_true; only kind 'judgement'"),
        (ReadsLabel(), "score reads outcome-year label column(s) cost_next"),
        (ReadsUndeclared(), "score reads column(s) cost_prior that are not declared in features"),
        (Sorted(), "scores do not follow the rows"),
        (Constant(), "gave every row the same score"),
        (Mutates(), "fit or score modified the cohort passed in (columns age)"),
        (RandomFit(), "fit is not deterministic"),
        (NoScore(), "missing method 'score(cohort)'"),
    ],
    ids=lambda v: type(v).__name__ if not isinstance(v, str) else "",
)
def test_each_defect_is_caught(cohort, model, expected):
    problems = check_risk_model(model, cohort)
    assert any(expected in p for p in problems), problems


def test_a_judgement_model_may_read_declared_truth(cohort):
    class Judge(DeclaresTruth):
        kind = "judgement"

    assert check_risk_model(Judge(), cohort) == []


def test_every_problem_is_reported_at_once(cohort):
    class Many(Good):
        kind = "oracle"

        def fit(self, cohort):
            return None

        def score(self, cohort):
            s = cohort["n_ltc_recorded"].to_numpy(np.float32) + cohort["need_true"].to_numpy(np.float32)
            s[0] = np.nan
            return s

    problems = check_risk_model(Many(), cohort)
    for expected in (
        "kind 'oracle'",
        "returned NoneType",
        "dtype float32",
        "1 missing or infinite scores",
        "reads ground-truth column(s)",
    ):
        assert any(expected in p for p in problems), (expected, problems)


def test_the_cohort_passed_in_is_left_alone(cohort):
    before = cohort.copy(deep=True)
    check_risk_model(Mutates(), cohort)
    pd.testing.assert_frame_equal(cohort, before)
