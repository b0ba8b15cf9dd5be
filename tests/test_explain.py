"""Explanations (issue 7): exact attributions, the gap at equal need split by feature, proxies, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import roc_auc_score

from phm_audit.audit import AuditSpec, ScoredModel
from phm_audit.audit._explain import REMAINDER, attributions, explain
from phm_audit.exceptions import PhmInputError, PhmTypeError, PhmWarning
from phm_audit.models import CallableRiskModel, EstimatorRiskModel, get_model
from phm_audit.pipeline import explain_models

#: The baseline-year use and cost that the generator's access gap lowers at equal need.
ACCESS_FEATURES = ("cost_prior", "gp_contacts", "outpatient_attendances", "elective_admissions")


@pytest.fixture(scope="module")
def train(cohort_factory):
    return cohort_factory("england", 8_000, 31)


@pytest.fixture(scope="module")
def audited(cohort_factory):
    return cohort_factory("england", 6_000, 32)


@pytest.fixture(scope="module")
def cost_model(train):
    return get_model("actuarial_cost", max_iter=40).fit(train)


def _spec(**kw):
    base = {"attributes": ["imd_quintile", "ethnicity"], "intersections": [], "n_boot": 30}
    base.update(kw)
    return AuditSpec(**base)


def _gap_parts(result, attribute: str, group: str) -> tuple[float, pd.Series]:
    parts = result.get(metric="gap_contribution", attribute=attribute, group=group).set_index("feature")["value"]
    return result.value(metric="score_gap_at_equal_need", attribute=attribute, group=group), parts


# --------------------------------------------------------------------------------------------------
# additivity


@pytest.mark.slow
def test_tree_explainer_is_exact_for_a_regressor_and_a_classifier(cost_model, train, audited):
    people = audited.iloc[:800]
    att = attributions(cost_model, people)
    assert att.exact and "TreeExplainer" in att.explainer and "tree_path_dependent" in att.explainer
    assert att.background_size is None
    total = att.base_value + att.values.sum(axis=1).to_numpy()
    assert np.max(np.abs(total - cost_model.score(people))) <= 1e-6
    assert list(att.values.columns) == cost_model.features

    emergency = get_model("emergency_admission", max_iter=30).fit(train)
    att = attributions(emergency, people, background_size=100)
    assert "interventional" in att.explainer and "probability" in att.quantity
    total = att.base_value + att.values.sum(axis=1).to_numpy()
    assert np.max(np.abs(total - emergency.score(people))) <= 1e-6


# --------------------------------------------------------------------------------------------------
# the gap at equal need


def _hand_gap(att, people: pd.DataFrame, attribute: str, group: str, reference: str, edges) -> pd.Series:
    """The standardised gap per feature, recomputed with pandas from per-person attributions."""
    need = people["need_true_next"].to_numpy()
    pct = (pd.Series(need).rank(method="first").to_numpy() - 0.5) * 100 / need.size
    stratum = np.searchsorted(np.asarray(edges[1:-1]), pct, side="right")
    frame = att.values.reset_index(drop=True).assign(_score=att.score, _s=stratum)
    frame["_g"] = people[attribute].astype(str).to_numpy()
    means = frame.groupby(["_g", "_s"]).mean()
    counts = frame.groupby(["_g", "_s"]).size()
    shared = means.loc[group].index.intersection(means.loc[reference].index)
    w = counts.loc[group].loc[shared]
    diff = means.loc[group].loc[shared] - means.loc[reference].loc[shared]
    return (diff.mul(w, axis=0).sum() / w.sum()).rename({"_score": "score"})


@pytest.mark.slow
def test_parts_add_up_to_the_gap_and_match_an_independent_computation(cost_model, audited):
    spec = _spec()
    result = explain(cost_model, audited, spec, sample_size=len(audited), proxies=False)
    att = attributions(cost_model, audited)
    for attribute, reference in (("imd_quintile", "5"), ("ethnicity", "White")):
        groups = result.get(metric="score_gap_at_equal_need", attribute=attribute)["group"]
        assert reference not in set(groups) and len(groups) == audited[attribute].nunique() - 1
        for group in groups:
            gap, parts = _gap_parts(result, attribute, group)
            assert parts.sum() == pytest.approx(gap, rel=1e-9, abs=1e-9)
            assert REMAINDER not in parts.index  # the tree explainer is exactly additive
            hand = _hand_gap(att, audited, attribute, group, reference, spec.need_strata)
            assert gap == pytest.approx(hand["score"], rel=1e-9)
            np.testing.assert_allclose(parts[cost_model.features].to_numpy(), hand[cost_model.features], atol=1e-7)
    rows = result.get(metric="gap_contribution", attribute="imd_quintile", group="1")
    assert (rows["ci_low"] <= rows["ci_high"]).all() and rows["ci_low"].notna().all()
    assert (rows["target"] == "need_true_next").all() and (rows["analysis"] == "explain").all()
    # the feature column is filled on attribution rows only
    table = result.table()
    assert (table.loc[table["metric"] == "score_gap_at_equal_need", "feature"] == "").all()
    assert (table.loc[table["metric"].isin(["mean_shap", "gap_contribution"]), "feature"] != "").all()
    assert not table["metric"].str.startswith("proxy").any()


#: Need bands for the england / no_gap comparison: finer than the audit's default, so that "equal need"
#: leaves little difference in need between the groups inside a band (the heavy tail is split finely).
FINE_NEED_STRATA = (0, 20, 40, 50, 60, 70, 75, 80, 85, 90, 92, 94, 95, 96, 97, 98, 99, 99.5, 99.8, 100)


@pytest.mark.slow
def test_access_gap_shows_in_use_and_cost_features_and_not_where_access_is_equal(cohort_factory):
    """On england, the part of IMD quintile 1's score gap at equal need carried by the use and cost features
    that the access gap lowers is negative; on no_gap (the same people, equal access) it shrinks to under a
    third.

    Equal need is baseline-year need (``need_true``): the features describe the baseline year, and the
    access gap acts on baseline use at equal baseline need. Conditioning on outcome-year need instead mixes
    in how need changes between the years (people of the most deprived fifth with a given need next year
    were sicker the year before), which gives the use features a positive part on no_gap too.
    The whole audited cohort is explained: on a 5,000-person sample the contributions are too noisy for
    this comparison (cost is heavy-tailed). A lighter fit of the same learner (30 trees at rate 0.25)
    keeps the test fast; its decomposition matches the default fit's to a few percent.

    Margins (this test's loop run over other seeds): on 60,000 people (seeds 501-506) the access part on
    england was -164, -170, -159, -120, -28 and -136, and on one seed in six a use feature outside the access
    set led, with the leading access feature's no_gap part at 0.317 of its england part; those two
    assertions failed about one seed in six and were dropped. On 120,000 people (seeds 511-514, the size
    used here) the access part is -156, -153, -135 and -119 (mean -141, spread 18: 0 is 7.8 spreads away)
    and the no_gap part 0.019-0.187 of it (mean 0.08, spread 0.07: the bound 1/3 is 3.6 spreads away,
    P(fail) about 2e-4).
    """
    spec = AuditSpec(attributes=["imd_quintile"], intersections=[], n_boot=0, need_strata=FINE_NEED_STRATA)
    found = {}
    for scenario in ("england", "no_gap"):
        model = get_model("actuarial_cost", max_iter=30, learning_rate=0.25).fit(cohort_factory(scenario, 120_000, 601))
        audited = cohort_factory(scenario, 120_000, 602)
        result = explain(model, audited, spec, sample_size=len(audited), need_target="need_true", proxies=False)
        gap, parts = _gap_parts(result, "imd_quintile", "1")
        assert parts.sum() == pytest.approx(gap, rel=1e-9, abs=1e-9)
        found[scenario] = parts
    england, no_gap = found["england"], found["no_gap"]
    access = list(ACCESS_FEATURES)
    assert england[access].sum() < 0
    assert abs(no_gap[access].sum()) <= abs(england[access].sum()) / 3


# --------------------------------------------------------------------------------------------------
# other models


@pytest.mark.slow
def test_logistic_regression_falls_back_to_the_permutation_explainer_with_a_warning(train, audited):
    columns = ["age", "n_ltc_recorded", "cost_prior", "emergency_admissions"]
    estimator = LogisticRegression(max_iter=2000).fit(train[columns], train["emergency_admission_next"])
    model = EstimatorRiskModel(estimator, name="supplied_logit", target="emergency_admission_next")
    with pytest.warns(PhmWarning, match="model-agnostic"):
        result = explain(model, audited, _spec(n_boot=10), sample_size=400, background_size=50)
    note = next(n for n in result.notes if "no exact SHAP explainer applies" in n)
    assert "Permutation" in note and "log-odds" in note
    assert result.models[0]["explainer"].startswith("shap.explainers.Permutation")
    # additive by construction, up to rounding in the model's probabilities; what is left is reported
    assert result.value(metric="additivity_max_error") <= 1e-6
    assert result.value(metric="background_size") == 50
    gap, parts = _gap_parts(result, "imd_quintile", "1")
    assert parts.sum() == pytest.approx(gap, rel=1e-12, abs=1e-15)  # the residual is a part of its own
    assert abs(parts[REMAINDER]) <= 1e-6


def test_linear_regression_uses_the_exact_linear_explainer(train, audited):
    columns = ["age", "n_ltc_recorded", "gp_contacts"]
    estimator = LinearRegression().fit(train[columns], train["cost_next"])
    model = EstimatorRiskModel(estimator, name="supplied_linear", target="cost_next")
    att = attributions(model, audited.iloc[:500], background_size=100)
    assert att.exact and "LinearExplainer" in att.explainer
    assert att.additivity_error <= 1e-6
    # linear SHAP against a background: the coefficient times the distance from the background's mean
    offset = att.values["age"].to_numpy() - estimator.coef_[0] * audited["age"].iloc[:500].to_numpy()
    assert np.ptp(offset) <= 1e-6


@pytest.mark.slow
def test_a_callable_without_declared_features_is_explained_over_what_it_can_see(audited):
    def score(df: pd.DataFrame) -> np.ndarray:
        return np.log1p(df["cost_prior"].to_numpy()) * (1.0 + df["n_ltc_recorded"].to_numpy())

    model = CallableRiskModel(score, name="my_score")
    people = audited.iloc[:150]
    with pytest.warns(PhmWarning, match="no exact SHAP explainer applies"):
        att = attributions(model, people, background_size=20)
    assert not att.exact and att.additivity_error <= 1e-9
    unused = [c for c in att.values.columns if c not in ("cost_prior", "n_ltc_recorded")]
    assert "ethnicity" in unused and np.abs(att.values[unused].to_numpy()).max() == 0
    assert np.abs(att.values["cost_prior"]).mean() > 0


@pytest.mark.slow
def test_rules_and_judgement(train, audited):
    spec = _spec(n_boot=0)
    prior = get_model("prior_cost").fit(train)
    result = explain(prior, audited, spec, sample_size=2_000)
    assert "single-column" in result.models[0]["explainer"]
    gap, parts = _gap_parts(result, "imd_quintile", "1")
    assert list(parts.index) == ["cost_prior"] and parts["cost_prior"] == pytest.approx(gap, rel=1e-12)
    assert result.value(metric="share_of_score", feature="cost_prior") == 1.0

    judgement = get_model("clinician_judgement").fit(train)
    result = explain(judgement, audited, spec, sample_size=1_000)
    row = result.get(metric="mean_abs_shap")
    assert row["value"].isna().all() and row["reason"].str.contains("not applicable").all()
    assert any("not applicable" in n for n in result.notes)


# --------------------------------------------------------------------------------------------------
# proxies and the table


@pytest.mark.slow
def test_proxy_auroc_matches_scikit_learn_and_skips_an_attribute_the_model_reads(cost_model, audited):
    spec = _spec(attributes=["imd_quintile", "sex"], n_boot=0)
    result = explain(cost_model, audited, spec, sample_size=len(audited))
    for feature, group in (("cost_prior", "1"), ("age", "5"), ("rec_diabetes", "3")):
        auc = roc_auc_score(audited["imd_quintile"].astype(str) == group, audited[feature].astype(float))
        value = result.value(metric="proxy_auroc", attribute="imd_quintile", group=group, feature=feature)
        assert value == pytest.approx(max(auc, 1 - auc), abs=1e-12)
    overall = result.get(metric="proxy_auroc_all_features", attribute="imd_quintile")
    assert overall["value"].between(0.3, 1.0).all() and len(overall) == 5
    # actuarial_cost reads sex: its proxies for sex are measured on its other inputs, and a note says so
    assert "sex" not in set(result.get(metric="proxy_auroc", attribute="sex")["feature"])
    assert any("reads 'sex' directly" in n for n in result.notes)
    shares = result.get(metric="share_of_score", attribute="all")["value"]
    assert shares.sum() == pytest.approx(1.0)
    assert result.value(metric="sample_size") == len(audited)
    assert "explained 6,000 of 6,000 people" in result.notes[0]


@pytest.mark.slow
def test_explain_models_fits_named_models_and_skips_scores_only(train, audited):
    scored = ScoredModel("vendor", np.zeros(len(audited)))
    result = explain_models(["prior_cost", scored], audited, _spec(n_boot=0), train=train, sample_size=500)
    assert set(result.table()["model"]) == {"prior_cost"}
    assert any("vendor" in n and "cannot be explained" in n for n in result.notes)
    merged = result.merge(explain_models(["ltc_count"], audited, _spec(n_boot=0), train=train))
    assert merged.value(model="ltc_count", metric="sample_size") == 5000


# --------------------------------------------------------------------------------------------------
# bad input


def test_a_sample_larger_than_the_cohort_is_an_error(cost_model, audited):
    with pytest.raises(PhmInputError, match=r"sample_size=6,001 is larger than the cohort \(6,000 people\)"):
        explain(cost_model, audited, _spec(), sample_size=6_001)


def test_other_bad_input(cost_model, audited):
    with pytest.raises(PhmInputError, match="background_size must be at least 1"):
        explain(cost_model, audited, _spec(), background_size=0)
    with pytest.raises(PhmTypeError, match="object has no 'name', 'features', 'score'"):
        explain(object(), audited, _spec())
    with pytest.raises(PhmInputError, match="need_target"):
        explain(cost_model, audited, _spec(), sample_size=100, need_target="need_tru_next")
    with pytest.raises(PhmInputError, match="not audited"):
        explain(cost_model, audited, _spec(), sample_size=100, reference={"sex": "Male"})


def test_the_audit_never_fits_a_model_given_by_name(audited):
    # the audit stage explains fitted models only; fitting by name is the pipeline's (explain_models)
    from phm_audit.audit import explain_rows_for
    from phm_audit.exceptions import PhmTypeError

    with pytest.raises(PhmTypeError, match=r"phm_audit\.pipeline\.explain_models"):
        explain_rows_for(["prior_cost"], audited, _spec(n_boot=0))
