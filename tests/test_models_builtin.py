"""Built-in models: registry, conformance, determinism, the train/audit split, and sanity on england."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import r2_score, roc_auc_score
from threadpoolctl import threadpool_limits

from phm_audit.exceptions import PhmInputError
from phm_audit.models import (
    LABELS,
    MODEL_KINDS,
    RiskModel,
    check_disjoint,
    check_risk_model,
    fit_and_score,
    get_model,
    list_models,
    split_cohort,
)
from phm_audit.synth import columns_with_role

BUILT_IN = (
    "actuarial_cost",
    "actuarial_avoidable_cost",
    "clinical_need",
    "emergency_admission",
    "ltc_count",
    "frailty_index",
    "prior_cost",
    "clinician_judgement",
)
LEARNERS = BUILT_IN[:4]


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    # OpenMP threads fight other processes on a busy 2-core runner; one thread is steadier.
    with threadpool_limits(limits=1, user_api="openmp"):
        yield


@pytest.fixture(scope="module")
def small(cohort_factory):
    return cohort_factory("england", 20_000, 5)


def test_registry_lists_every_built_in_in_order():
    assert list_models() == list(BUILT_IN)
    assert LABELS == ("cost_next", "avoidable_cost_next", "n_conditions_next", "emergency_admission_next")
    assert MODEL_KINDS == ("actuarial", "clinical", "rule", "judgement", "supplied")


@pytest.mark.parametrize("name", BUILT_IN)
def test_every_built_in_passes_the_conformance_kit(name, cohort_factory):
    model = get_model(name)
    assert isinstance(model, RiskModel)
    assert check_risk_model(model, cohort_factory("england", 3000, 0)) == []


def test_conformance_kit_makes_its_own_cohort_when_none_is_given():
    assert check_risk_model(get_model("ltc_count")) == []


@pytest.mark.parametrize("name", BUILT_IN)
def test_no_built_in_reads_labels_and_only_the_clinician_reads_truth(name):
    model = get_model(name)
    assert not set(model.features) & set(columns_with_role("label"))
    truth = set(model.features) & set(columns_with_role("truth"))
    assert (model.kind == "judgement") == bool(truth)


def test_actuarial_learners_exclude_ethnicity_and_deprivation():
    for name in ("actuarial_cost", "actuarial_avoidable_cost", "clinical_need"):
        feats = get_model(name).features
        assert "ethnicity" not in feats and "imd_quintile" not in feats
        assert {"age", "sex", "cost_prior", "rec_diabetes", "emergency_admissions"} <= set(feats)


def test_get_model_returns_new_unfitted_models():
    a, b = get_model("actuarial_cost"), get_model("actuarial_cost")
    assert a is not b
    assert not hasattr(a, "estimator_")


@pytest.mark.parametrize(
    ("name", "expected"),
    [("actuarial_cst", "did you mean 'actuarial_cost'"), ("frailty", "did you mean 'frailty_index'")],
)
def test_unknown_model_suggests_the_closest(name, expected):
    with pytest.raises(PhmInputError, match=expected):
        get_model(name)


def test_unknown_label_suggests_the_closest():
    with pytest.raises(PhmInputError, match=r"unknown label 'cost_nxt' \(did you mean 'cost_next'\?\)"):
        get_model("actuarial_cost", label="cost_nxt")


@pytest.mark.parametrize("name", ["ltc_count", "frailty_index", "prior_cost", "clinician_judgement"])
def test_untrained_models_refuse_another_label_and_say_why(name):
    own = get_model(name).target
    other = next(label for label in LABELS if label != own)
    with pytest.raises(PhmInputError, match=f"'{name}' is not trained.*cannot take --label {other}.*learner"):
        get_model(name, label=other)


def test_rules_accept_their_own_label():
    assert get_model("ltc_count", label="n_conditions_next").target == "n_conditions_next"


def test_unknown_parameter_is_refused_with_the_accepted_ones():
    with pytest.raises(PhmInputError, match=r"no parameter 'reliabilty'.*did you mean 'reliability'"):
        get_model("clinician_judgement", reliabilty=0.5)


@pytest.mark.slow
def test_a_learner_trains_on_the_label_it_is_given(small):
    train, audit = split_cohort(small, seed=1)
    relabelled = get_model("actuarial_cost", label="n_conditions_next")
    assert relabelled.target == "n_conditions_next"
    assert relabelled.kind == "clinical"
    assert relabelled.name == "actuarial_cost[n_conditions_next]"
    scores = fit_and_score(relabelled, train, audit)
    # The same learner and features on the same label is clinical_need, to the bit.
    assert np.array_equal(scores, fit_and_score(get_model("clinical_need"), train, audit))
    assert abs(scores.mean() - train["n_conditions_next"].mean()) < 0.1
    cost = fit_and_score(get_model("actuarial_cost"), train, audit)
    assert cost.mean() > 100 * scores.mean()


def test_a_learner_becomes_a_classifier_on_a_true_false_label(small):
    train, audit = split_cohort(small, seed=1)
    model = get_model("actuarial_cost", label="emergency_admission_next")
    scores = fit_and_score(model, train, audit)
    assert ((scores >= 0) & (scores <= 1)).all()
    assert abs(scores.mean() - train["emergency_admission_next"].mean()) < 0.02


@pytest.mark.slow
@pytest.mark.parametrize("name", BUILT_IN)
def test_scores_are_deterministic_to_the_byte(name, small):
    train, audit = split_cohort(small, seed=2)
    first = fit_and_score(get_model(name), train, audit)
    second = fit_and_score(get_model(name), train.copy(), audit.copy())
    assert first.dtype == np.float64 and first.shape == (len(audit),)
    assert first.tobytes() == second.tobytes()


def test_fitting_a_large_cohort_uses_at_most_max_train_rows(small):
    model = get_model("actuarial_cost", max_train_rows=5000).fit(small)
    assert model.n_train_rows_ == 5000


def test_learner_refuses_a_label_as_a_feature(small):
    with pytest.raises(PhmInputError, match=r"may not read need_true_next"):
        get_model("actuarial_cost", features=["age", "need_true_next"]).fit(small)


def test_categories_are_coded_by_value_not_by_dtype(small):
    train, audit = split_cohort(small, seed=3)
    text = ("sex", "ethnicity")
    model = get_model("emergency_admission").fit(train.assign(**{c: train[c].astype(str) for c in text}))
    assert model.categories_["ethnicity"] == ["Asian", "Black", "Mixed", "Other", "White"]
    as_text = model.score(audit.assign(**{c: audit[c].astype(str) for c in text}))
    np.testing.assert_array_equal(model.score(audit), as_text)
    unseen = model.score(audit.assign(ethnicity="Not stated"))
    assert np.isfinite(unseen).all()  # an unseen category is scored as missing, not refused


def test_score_before_fit_says_fit_first(small):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError, match=r"call fit"):
        get_model("actuarial_cost").score(small)


# --- the train/audit split -------------------------------------------------------------------


def test_split_is_disjoint_complete_and_keeps_metadata(small):
    train, audit = split_cohort(small, seed=4)
    assert not set(train["patient_id"]) & set(audit["patient_id"])
    assert len(train) + len(audit) == len(small)
    assert abs(len(train) / len(small) - 0.5) < 0.02
    for part, name in ((train, "train"), (audit, "audit")):
        meta = part.attrs["phm_audit"]
        assert meta["roles"] == small.attrs["phm_audit"]["roles"]
        assert meta["seed"] == small.attrs["phm_audit"]["seed"]
        assert meta["split"] == {"part": name, "seed": 4, "train_fraction": 0.5}
    assert "split" not in small.attrs["phm_audit"]  # the cohort's own metadata is untouched


def test_split_depends_only_on_id_and_seed(small):
    train, _ = split_cohort(small, seed=4)
    shuffled = small.sample(frac=1.0, random_state=0)
    assert set(split_cohort(shuffled, seed=4)[0]["patient_id"]) == set(train["patient_id"])
    half = small.iloc[: len(small) // 2]
    assert set(split_cohort(half, seed=4)[0]["patient_id"]) == set(train["patient_id"]) & set(half["patient_id"])
    assert set(split_cohort(small, seed=5)[0]["patient_id"]) != set(train["patient_id"])


def test_split_fraction(small):
    train, _ = split_cohort(small, train_fraction=0.8, seed=0)
    assert abs(len(train) / len(small) - 0.8) < 0.02


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 2])
def test_split_refuses_a_fraction_outside_0_1(small, fraction):
    with pytest.raises(PhmInputError, match=r"train_fraction must be between 0 and 1"):
        split_cohort(small, train_fraction=fraction)


def test_split_refuses_duplicate_ids(small):
    doubled = pd.concat([small.iloc[:10], small.iloc[:10]])
    with pytest.raises(PhmInputError, match=r"duplicate 'patient_id'"):
        split_cohort(doubled)


def test_training_on_audited_people_is_refused(cohort_factory, small):
    train, audit = split_cohort(small, seed=0)
    with pytest.raises(PhmInputError, match=r"share 20,000 people"):
        fit_and_score(get_model("prior_cost"), small, small)
    with pytest.raises(PhmInputError, match=r"same scenario and seed"):
        check_disjoint(small, audit)
    check_disjoint(train, audit)
    # Another seed is other people, although ids are numbered from 1 in every cohort.
    check_disjoint(cohort_factory("england", 20_000, 6), small)


def test_overlap_without_metadata_is_judged_by_the_rows(small):
    bare_train, bare_audit = small.iloc[:1000].copy(), small.iloc[500:1500].copy()
    bare_train.attrs, bare_audit.attrs = {}, {}
    with pytest.raises(PhmInputError, match=r"share 500 people"):
        check_disjoint(bare_train, bare_audit)


# --- clinician judgement -----------------------------------------------------------------------


@pytest.mark.parametrize("reliability", [1.0, 0.7, 0.3, 0.0])
def test_judgement_correlates_with_true_need_at_its_reliability(small, reliability):
    model = get_model("clinician_judgement", reliability=reliability).fit(small)
    r = np.corrcoef(model.score(small), np.log1p(small["need_true"].to_numpy(np.float64)))[0, 1]
    assert abs(r - reliability) < 0.02


def test_judgement_of_a_person_does_not_depend_on_who_else_is_scored(small):
    model = get_model("clinician_judgement").fit(small)
    assert np.array_equal(model.score(small.iloc[100:200]), model.score(small)[100:200])
    other_seed = get_model("clinician_judgement", seed=1).fit(small)
    assert not np.array_equal(other_seed.score(small), model.score(small))


@pytest.mark.parametrize("reliability", [1.5, -0.1, "high"])
def test_judgement_refuses_a_reliability_outside_0_1(small, reliability):
    with pytest.raises(PhmInputError, match=r"reliability must be a number in \[0, 1\]"):
        get_model("clinician_judgement", reliability=reliability).fit(small)


def test_judgement_needs_ground_truth(small):
    with pytest.raises(PhmInputError, match=r"need_true.*ground truth"):
        get_model("clinician_judgement").fit(small.drop(columns=["need_true"]))


def test_rules_are_their_columns(small):
    np.testing.assert_array_equal(get_model("ltc_count").fit(small).score(small), small["n_ltc_recorded"])
    np.testing.assert_allclose(get_model("frailty_index").score(small), small["frailty_deficits_recorded"] / 36)
    np.testing.assert_array_equal(get_model("prior_cost").score(small), small["cost_prior"].astype(np.float64))


# --- sanity on england -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def england_models(cohort_factory):
    # Train and audit cohorts from different seeds: different people.
    train = cohort_factory("england", 100_000, 21)
    audit = cohort_factory("england", 100_000, 22)
    scores = {name: fit_and_score(get_model(name), train, audit) for name in ("emergency_admission", "actuarial_cost")}
    return audit, scores


@pytest.mark.slow
def test_emergency_admission_auroc_is_near_the_range_published_tools_reach(england_models):
    """AUROC of the QAdmissions-like model on adults: published 0.74-0.78, here 0.81-0.83 (a known deviation).

    DOMAIN.md: QAdmissions 0.764-0.783, gradient boosting (Rahimian 2018) 0.779, Cox 0.740; ACG's
    hospitalisation C 0.67-0.73. The lower bound, 0.70, is the published floor. The synthetic outcome is
    more predictable than real records: its admissions follow from recorded conditions and prior use with no
    coding drift, practice-level recording differences or missing records, and measured on adults it reaches
    0.813-0.825 over seeds 1, 3, 5 (0.82-0.83 on everyone). The upper bound, 0.84, is that measured range
    plus 0.015 (about 5 standard errors of an AUROC on 100,000 people): it catches a generator change that
    makes the outcome even easier to predict. The README lists this deviation under "Known deviations".
    """
    audit, scores = england_models
    adults = audit["age"].to_numpy() >= 18
    y = audit["emergency_admission_next"].to_numpy()
    auc = roc_auc_score(y[adults], scores["emergency_admission"][adults])
    assert 0.70 <= auc <= 0.84, auc
    assert roc_auc_score(y, scores["emergency_admission"]) > roc_auc_score(y, audit["emergency_admissions"])


@pytest.mark.slow
def test_actuarial_cost_explains_a_share_of_cost_variance_between_published_and_measured(england_models):
    """R² of the cost model: published 0.15-0.20 (prospective), here 0.51-0.60 (a known deviation).

    Published prospective cost models explain 15-20% of the variance (SOA 2016), concurrent ones 55%. In
    the generator, need persists from one year to the next (``annual_shock_sd`` 0.4) and costs have no
    catastrophic one-off events, so last year's cost alone explains 0.43-0.50 of next year's and the model
    reaches 0.51-0.60 over seeds 17, 5, 3, 8, 11, 23, 101 (benchmarks/truth_margins.py). The lower bound is
    the published prospective figure; the upper, 0.65, is the measured range plus 0.05, so a generator
    change that makes cost still more predictable fails here. Bringing R² down to the published range needs
    heavier-tailed one-off costs; the README lists this under "Known deviations".
    """
    audit, scores = england_models
    r2 = r2_score(audit["cost_next"], scores["actuarial_cost"])
    assert 0.15 <= r2 <= 0.65, r2
