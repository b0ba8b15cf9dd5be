"""The analysis registry: one loop, a seed per (model, analysis), and the analyses that need more than scores."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from phm_audit.audit import (
    ANALYSIS_REGISTRY,
    AuditSpec,
    LabelScores,
    ScoredModel,
    audit,
    describe_point,
    label_choice_scores,
)
from phm_audit.audit._spec import ANALYSES
from phm_audit.exceptions import PhmInputError
from phm_audit.synth import generate

KEY = ["model", "analysis", "attribute", "group", "operating_point", "metric", "target", "feature"]


@pytest.fixture(scope="module")
def cohort() -> pd.DataFrame:
    return generate("england", 6_000, seed=3)


def _models(cohort: pd.DataFrame) -> list[ScoredModel]:
    rng = np.random.default_rng(0)
    return [
        ScoredModel("cost", cohort["cost_prior"].to_numpy(np.float64), target="cost_next", label="cost_next"),
        ScoredModel(
            "clinical",
            cohort["n_ltc_recorded"].to_numpy(np.float64) + rng.random(len(cohort)),
            target="n_conditions_next",
            label="n_conditions_next",
        ),
        ScoredModel("noise", rng.random(len(cohort))),
    ]


def _spec(**kw: object) -> AuditSpec:
    base: dict[str, object] = {"attributes": ["imd_quintile", "sex"], "intersections": [], "n_boot": 30, "seed": 5}
    base.update(kw)
    return AuditSpec(**base)  # type: ignore[arg-type]


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(KEY, kind="stable").reset_index(drop=True)


def test_the_registry_is_the_list_of_analyses_and_each_declares_what_it_needs():
    assert tuple(ANALYSIS_REGISTRY) == ANALYSES
    vocabulary = {"scores", "capacity", "probability", "several models", "label scores", "fitted models", "rows"}
    for analysis in ANALYSIS_REGISTRY.values():
        assert analysis.needs and analysis.needs <= vocabulary, analysis.name
    assert not ANALYSIS_REGISTRY["judgement"].per_model and ANALYSIS_REGISTRY["fairness"].per_model


def test_reordering_the_models_changes_no_number(cohort):
    models = _models(cohort)
    a = audit(cohort, models, _spec())
    b = audit(cohort, models[::-1], _spec())
    pd.testing.assert_frame_equal(_sorted(a.table()), _sorted(b.table()))
    assert a.primary_operating_point == b.primary_operating_point == "top_3pct"


def test_adding_a_model_changes_no_other_models_numbers(cohort):
    """A model without a target is no allocation alternative: only the judgement, which compares all, changes."""
    models = _models(cohort)
    few = audit(cohort, models[:2], _spec()).table()
    more = audit(cohort, models, _spec()).table()
    kept = more[more["model"].isin(["cost", "clinical"]) & (more["analysis"] != "judgement")]
    pd.testing.assert_frame_equal(_sorted(few[few["analysis"] != "judgement"]), _sorted(kept))


def test_each_pair_draws_its_own_numbers(cohort):
    """The same scores under two names get different bootstrap draws, and the same point estimates."""
    scores = cohort["cost_prior"].to_numpy(np.float64)
    result = audit(cohort, {"a": scores, "b": scores.copy()}, _spec(analyses=["fairness"]))
    t = result.get(metric="selection_rate", attribute="imd_quintile", operating_point="top_3pct")
    a, b = t[t["model"] == "a"], t[t["model"] == "b"]
    np.testing.assert_array_equal(a["value"].to_numpy(), b["value"].to_numpy())
    assert not np.array_equal(a["ci_low"].to_numpy(), b["ci_low"].to_numpy())


def test_judgement_compares_at_one_capacity_whatever_the_order_even_for_a_cut_off(cohort):
    models = _models(cohort)
    spec = _spec(operating_points=["score_ge:0.9"], analyses=["judgement"])
    a = audit(cohort, models, spec)
    b = audit(cohort, models[::-1], spec)
    pd.testing.assert_frame_equal(_sorted(a.table()), _sorted(b.table()))
    counts = sorted(int((m.scores >= 0.9).sum()) for m in models)
    note = next(n for n in a.notes if n.startswith("judgement compares"))
    assert f"median, {counts[1]:,}" in note
    captured = a.get(metric="share_of_need_captured", model="noise")
    assert int(captured["n"].iloc[0]) == counts[1]


def test_allocation_alternatives_are_the_models_trained_on_a_health_outcome_unless_named(cohort):
    models = _models(cohort)
    default = audit(cohort, models, _spec(analyses=["allocation"])).table()
    metrics = set(default.loc[default["model"] == "cost", "metric"])
    assert "flagged_share_if_by_clinical" in metrics and "flagged_share_if_by_noise" not in metrics
    assert not any(m.endswith("_by_cost") for m in default.loc[default["model"] == "clinical", "metric"])
    named = audit(cohort, models, _spec(analyses=["allocation"], allocation_alternatives=["noise"])).table()
    metrics = set(named.loc[named["model"] == "cost", "metric"])
    assert "flagged_share_if_by_noise" in metrics and "flagged_share_if_by_clinical" not in metrics
    with pytest.raises(PhmInputError, match=r"allocation alternative 'nose' is not an audited model.*'noise'"):
        audit(cohort, models, _spec(analyses=["allocation"], allocation_alternatives=["nose"]))
    # a model declared clinical ranks need, with or without a target of its own
    declared = [*models[:2], dataclasses.replace(models[2], kind="clinical")]
    metrics = set(audit(cohort, declared, _spec(analyses=["allocation"])).get(model="cost")["metric"])
    assert {"flagged_share_if_by_noise", "flagged_share_if_by_clinical"} <= metrics


def test_label_choice_is_an_analysis_of_the_audit(cohort):
    given = LabelScores(
        {"cost_next": cohort["cost_prior"].to_numpy(np.float64), "n_conditions_next": cohort["n_ltc_recorded"]},
        learner="prior",
    )
    spec = _spec(analyses=["label_choice"])
    result = audit(cohort, [], spec, label_scores=given)
    names = {m["name"] for m in result.models}
    assert names == {"prior[cost_next]", "prior[n_conditions_next]", "flag by need_true_next"}
    assert set(result.table()["analysis"]) == {"label_choice"}
    wrapper = label_choice_scores(given.scores, cohort, spec, learner="prior")
    pd.testing.assert_frame_equal(_sorted(result.table()), _sorted(wrapper.table()))
    # without its input the analysis does not run
    plain = audit(cohort, _models(cohort)[:1], _spec())
    assert "label_choice" not in set(plain.table()["analysis"])


def test_label_choice_refuses_scores_of_the_wrong_length(cohort):
    given = LabelScores({"cost_next": np.zeros(10)})
    with pytest.raises(Exception, match="label 'cost_next' hold 10 values"):
        audit(cohort, [], _spec(analyses=["label_choice"]), label_scores=given)


def test_the_result_says_what_every_operating_point_means(cohort):
    result = audit(cohort, _models(cohort)[:2], _spec(operating_points=["top_pct:3", "top_k:100"]))
    ops = set(result.table()["operating_point"])
    assert ops == set(result.operating_points)
    assert result.operating_points["top_k_100"]["words"] == "the top 100 people"
    assert result.operating_points["top_3pct"]["fraction"] == pytest.approx(0.03)
    steps = [o for o in ops if o.startswith("step_")]
    assert steps and all(result.operating_points[o]["kind"] == "step" for o in steps)
    assert describe_point("top_3pct@practice_id")["place"] == "practice_id"
    undefined = result.table()
    assert ((undefined["reason"] != "") == (undefined["reason_code"] == "undefined")).all()
    assert result.to_dict()["primary_operating_point"] == "top_3pct"


def test_a_merged_result_keeps_the_primary_operating_point(cohort):
    models = _models(cohort)
    a = audit(cohort, models[:1], _spec(analyses=["fairness"]))
    b = audit(cohort, [], _spec(analyses=["label_choice"]), label_scores=LabelScores({"cost_next": models[0].scores}))
    assert b.primary_operating_point == ""
    merged = b.merge(a)
    assert merged.primary_operating_point == "top_3pct"
    assert set(merged.operating_points) == set(merged.table()["operating_point"])
    assert dataclasses.replace(merged).operating_points == merged.operating_points


def test_need_bands_and_top_k_by_selection_equal_the_sorted_definitions():
    """The O(N) selections give the people the stable sorts give, ties and all (the documented tie rule)."""
    from phm_audit.audit._analyses import need_strata
    from phm_audit.audit._stats import descending_order, top_k_mask

    rng = np.random.default_rng(0)
    for trial in range(200):
        n = int(rng.integers(1, 300))
        need = np.round(rng.gamma(0.5, 2.0, n), int(rng.integers(0, 3)))  # many ties, some all equal
        edges = (0.0, 80.0, 90.0, 95.0, 99.0, 100.0) if trial % 2 else (0.0, 50.0, 100.0)
        order = np.argsort(need, kind="stable")
        pct = np.empty(n)
        pct[order] = (np.arange(n) + 0.5) * 100.0 / n
        expected = np.searchsorted(np.asarray(edges[1:-1]), pct, side="right")
        np.testing.assert_array_equal(need_strata(need, edges)[0], expected)
        for k in (0, 1, n // 3, n - 1, n):
            np.testing.assert_array_equal(top_k_mask(need, k), top_k_mask(need, k, descending_order(need)))
