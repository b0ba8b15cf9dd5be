"""The report reads the audit's structure, never its strings: what an operating point means
(``AuditResult.operating_points``), the primary decision, an intersection's parts, a model's label, why a
value is missing (``reason_code``) and how a metric is formatted (the metric registry)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from phm_audit.audit import AuditSpec, audit
from phm_audit.audit._result import AuditResult
from phm_audit.report import DisclosureControl, disclose_result, findings, summary_markdown
from phm_audit.report._findings import describe_group, primary_operating_point
from phm_audit.report._html_tables import fmt, value_cell
from phm_audit.report._mechanism import label_kind, model_label
from phm_audit.report._sentences import Words


@pytest.fixture(scope="module")
def planted(cohort_factory) -> AuditResult:
    """A score that all but ignores the need of the most deprived fifth (its flagged count is suppressed)."""
    cohort = cohort_factory("england", 20_000, 5)
    need = cohort["need_true_next"].to_numpy(np.float64)
    most_deprived = cohort["imd_quintile"].to_numpy() == 1
    spec = AuditSpec(
        attributes=("imd_quintile",),
        intersections=(),
        operating_points=("top_pct:3",),
        analyses=("fairness",),
        n_boot=30,
        seed=1,
    )
    return audit(cohort, {"ignores_q1": np.where(most_deprived, 0.05 * need, need)}, spec)


def _with_table(result: AuditResult, table: pd.DataFrame) -> AuditResult:
    return dataclasses.replace(result, _metrics=table, operating_points=dict(result.operating_points))


def test_operating_point_words_are_read_from_the_result(planted):
    points = {k: dict(v) for k, v in planted.operating_points.items()}
    points["top_3pct"]["words"] = "the busiest three in a hundred"
    result = dataclasses.replace(planted, operating_points=points)
    texts = [f.text for f in findings(result) if f.operating_point == "top_3pct"]
    assert texts and all(t.startswith("At the busiest three in a hundred of ignores_q1 scores") for t in texts)
    assert "### imd_quintile at the busiest three in a hundred" in summary_markdown(result)


def test_the_primary_operating_point_is_the_audits(planted):
    assert primary_operating_point(planted) == planted.primary_operating_point == "top_3pct"
    assert primary_operating_point(dataclasses.replace(planted, primary_operating_point="top_9pct")) == "top_9pct"
    # a result without it (made by hand, or an older audit.json read back) is read from its table
    assert primary_operating_point(dataclasses.replace(planted, primary_operating_point="")) == "top_3pct"


def test_a_suppressed_row_is_bounded_by_its_code_and_the_control_not_its_words(planted):
    published = disclose_result(planted, DisclosureControl())
    bounded = [f for f in findings(published) if f.group == "1" and f.value is None and f.grade == "flag"]
    assert {f.metric for f in bounded} == {"flagged_to_high_need_ratio", "tpr_difference"}
    table = published.table()
    suppressed = (table["reason_code"] == "suppressed").to_numpy()
    assert suppressed.any()
    # other words, same code: still bounded
    reworded = table.copy()
    reworded.loc[suppressed, "reason"] = "hidden"
    again = [f for f in findings(_with_table(published, reworded)) if f.group == "1" and f.value is None]
    assert [(f.metric, f.grade, f.text) for f in again if f.grade == "flag"] == [
        (f.metric, f.grade, f.text) for f in bounded
    ]
    # the words of a suppression without its code: not bounded (the text is not parsed)
    uncoded = table.copy()
    uncoded.loc[suppressed, "reason_code"] = "undefined"
    assert not [f for f in findings(_with_table(published, uncoded)) if f.value is None and f.grade == "flag"]


def test_the_bound_is_the_threshold_of_the_control_applied(planted):
    control = DisclosureControl(threshold=10)
    published = disclose_result(planted, control)
    bounded = [f for f in findings(published, disclosure=control) if f.value is None and f.grade == "flag"]
    assert bounded and all("fewer than 11" in f.text for f in bounded)


def test_an_undefined_value_hidden_by_disclosure_keeps_its_code_and_words():
    from phm_audit.report import apply_disclosure

    table = pd.DataFrame(
        {
            "model": "m",
            "analysis": "fairness",
            "attribute": "sex",
            "group": ["F", "M", "X"],
            "operating_point": "top_3pct",
            "metric": "tpr",
            "value": [0.5, 0.4, np.nan],
            "ci_low": np.nan,
            "ci_high": np.nan,
            "n": [400, 420, 3],
            "target": "",
            "feature": "",
            "reason": ["", "", "group has fewer than 50 people"],
            "reason_code": ["", "", "undefined"],
        }
    )
    curves = pd.DataFrame(columns=["model", "attribute", "target", "bins", "group", "bin", "mean", "ci_low", "ci_high"])
    out, _ = apply_disclosure(table, curves.assign(n=[]), DisclosureControl(), references={"sex": "F"})
    assert list(out["reason_code"]) == ["", "suppressed_secondary", "undefined"]
    assert out["reason"].iloc[2] == "group has fewer than 50 people"


def test_cells_read_the_code_for_suppression():
    row = {"metric": "tpr", "analysis": "fairness", "value": np.nan, "ci_low": np.nan, "ci_high": np.nan}
    hidden = value_cell({**row, "reason": "made of a few people: fewer than 8", "reason_code": "suppressed"})
    assert (hidden.text, hidden.note) == ("*", "suppressed: fewer than 8")
    undefined = value_cell({**row, "reason": "suppressed by the supplier", "reason_code": "undefined"})
    assert (undefined.text, undefined.note) == ("not reported", "suppressed by the supplier")


def test_values_are_formatted_as_the_registry_says():
    assert fmt("label_gap_at_equal_score", 1.1) == "1.10"  # a ratio, not points
    assert fmt("tpr_difference", -0.05) == "-5.0 pts"
    assert fmt("unmet_need_gap", 0.123) == "+12.3 pts"
    assert fmt("calibration_in_the_large", 0.03) == "0.03"  # a difference, but not of per cents
    assert fmt("flagged_share_if_by_need", 0.1, "allocation") == fmt("flagged_share_if_by_need", 0.1) == "10.0%"
    assert fmt("equal_tpr_change_in_flagged", 15) == "+15"
    assert fmt("n", 1234) == "1,234"
    assert fmt("tpr_difference, unmet_need_gap", 0.5) == "0.50"  # not a metric


def test_an_intersection_is_described_from_its_parts_not_its_name():
    structure = {"sex x imd_quintile": (("sex", "imd_quintile"), {"F/1": ("F", "1")})}
    words = Words(points={}, structure=structure)
    assert words.group("sex x imd_quintile", "F/1") == "recorded as F and in the most deprived fifth (IMD quintile 1)"
    # an attribute whose name looks like an intersection, but is not one, is not split
    assert words.group("a x b", "p | q") == "with a x b p | q"
    assert describe_group("a x b", "p | q") == "with a p and with b q"  # no result at hand: the names' grammar


def test_a_models_label_is_read_from_its_fields():
    assert model_label({"name": "learner[cost_next]", "kind": "actuarial", "target": "n_conditions_next"}) == (
        "n_conditions_next"
    )
    assert model_label({"name": "prior_cost", "kind": "rule", "target": None, "label": "cost_next"}) == "cost_next"
    spec = AuditSpec()
    assert label_kind("avoidable_cost_next", spec) == "cost" and label_kind("need_true_next", spec) == "need"
    assert label_kind(spec.cost_target, spec) == "cost" and label_kind(None, spec) is None


def test_disclosure_rounds_the_capacity_in_the_primary_label(cohort_factory):
    cohort = cohort_factory("england", 5_000, 3)
    spec = AuditSpec(
        attributes=("sex",), intersections=(), operating_points=("top_k:148",), analyses=("fairness",), n_boot=0
    )
    result = audit(cohort, {"prior_cost": cohort["cost_prior"].to_numpy(np.float64)}, spec)
    assert result.primary_operating_point == "top_k_148"
    published = disclose_result(result, DisclosureControl())
    assert published.primary_operating_point == "top_k_150"
    assert set(published.table()["operating_point"]) == {"top_k_150"}
    assert published.operating_points["top_k_150"]["words"] == "the top 150 people"
