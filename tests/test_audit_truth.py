"""Ground truth: the audit finds the gaps the generator plants, and none where none was planted."""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import pytest

from phm_audit.audit import AuditSpec, ScoredModel, audit
from phm_audit.audit._label_choice import label_choice
from phm_audit.models import fit_and_score, get_model, split_cohort
from phm_audit.synth import generate


@functools.lru_cache(maxsize=4)
def _scored(scenario: str, n: int, seed: int):
    cohort = generate(scenario, n, seed=seed, n_jobs=2)
    train, audited = split_cohort(cohort, seed=seed)
    models = {name: fit_and_score(get_model(name), train, audited) for name in ("actuarial_cost", "clinical_need")}
    return train, audited, models


SPEC = AuditSpec(
    attributes=["imd_quintile", "ethnicity"],
    intersections=[],
    n_boot=200,
    seed=3,
    analyses=["fairness", "calibration", "allocation"],
)


@pytest.fixture(scope="module")
def england():
    # 600,000 people, 300,000 audited: the top 3% then holds about 1,100 high-need people of the least
    # deprived fifth, so their unmet-need rate has a standard error near 0.014, against a planted
    # difference of about 0.03 (benchmarks/truth_margins.py measures it over seeds).
    train, audited, models = _scored("england", 600_000, 17)
    result = audit(
        audited,
        [ScoredModel(k, v, kind="actuarial" if k == "actuarial_cost" else "clinical") for k, v in models.items()],
        SPEC,
    )
    return train, audited, result


def _row(result, **where):
    rows = result.get(**where)
    assert len(rows) == 1, where
    return rows.iloc[0]


@pytest.mark.parametrize("metric", ["need_ratio_at_equal_score", "label_gap_at_equal_score"])
def test_england_cost_model_under_rates_the_most_deprived_and_a_minority_group(england, metric):
    _, _, result = england
    q1 = _row(
        result, model="actuarial_cost", metric=metric, attribute="imd_quintile", group="1", target="need_true_next"
    )
    assert q1["value"] > 1 and q1["ci_low"] > 1, q1.to_dict()
    minority = [
        _row(result, model="actuarial_cost", metric=metric, attribute="ethnicity", group=g, target="need_true_next")
        for g in ("Asian", "Black", "Mixed", "Other")
    ]
    assert any(r["value"] > 1 and r["ci_low"] > 1 for r in minority), [r.to_dict() for r in minority]


def test_no_gap_finds_no_label_gap_in_19_of_20_seeds():
    train = generate("no_gap", 100_000, seed=999, n_jobs=2)
    model = get_model("actuarial_cost").fit(train)
    spec = AuditSpec(attributes=["imd_quintile", "ethnicity"], intersections=[], n_boot=200, analyses=["calibration"])
    covered = {"1": 0, "Asian": 0, "Black": 0}
    for seed in range(20):
        cohort = generate("no_gap", 30_000, seed=seed, n_jobs=1)
        result = audit(
            cohort, [ScoredModel("actuarial_cost", model.score(cohort))], dataclasses.replace(spec, seed=seed)
        )
        gaps = result.get(metric="label_gap_at_equal_score", target="need_true_next").set_index("group")
        for group in covered:
            covered[group] += int(gaps.loc[group, "ci_low"] <= 1 <= gaps.loc[group, "ci_high"])
    assert all(v >= 19 for v in covered.values()), covered


def test_label_choice_moves_the_flagged(england):
    train, audited, _ = england
    result = label_choice(train, audited, SPEC, labels=["cost_next", "n_conditions_next"])
    share = result.get(metric="flagged_share", attribute="imd_quintile", group="1").set_index("target")["value"]
    assert share["n_conditions_next"] > share["cost_next"]
    truth = result.get(model="flag by need_true_next", metric="flagged_share", attribute="imd_quintile", group="1")
    assert truth["value"].iloc[0] > share["cost_next"]


def test_england_unmet_need_is_higher_in_the_most_deprived_and_need_based_flagging_shrinks_it(england):
    _, _, result = england
    unmet = result.get(
        model="actuarial_cost", analysis="allocation", metric="unmet_need_rate", attribute="imd_quintile"
    ).set_index("group")["value"]
    assert unmet["1"] > unmet["5"]
    gap_now = _row(
        result,
        model="actuarial_cost",
        analysis="allocation",
        metric="unmet_need_gap",
        attribute="imd_quintile",
        group="1",
    )["value"]
    gap_need_model = _row(
        result,
        model="actuarial_cost",
        analysis="allocation",
        metric="unmet_need_gap_if_by_clinical_need",
        attribute="imd_quintile",
        group="1",
    )["value"]
    assert gap_need_model < gap_now
    # flagging by need itself leaves no high-need person unflagged at the same capacity
    by_need = result.get(
        model="actuarial_cost", analysis="allocation", metric="flagged_share_if_by_need", attribute="imd_quintile"
    ).set_index("group")["value"]
    flagged = result.get(
        model="actuarial_cost", analysis="allocation", metric="flagged_share", attribute="imd_quintile"
    ).set_index("group")["value"]
    assert by_need["1"] > flagged["1"]


def test_no_gap_cost_and_need_models_leave_the_same_unmet_need_gap():
    _, audited, models = _scored("no_gap", 140_000, 23)
    result = audit(
        audited,
        [
            ScoredModel("actuarial_cost", models["actuarial_cost"], kind="actuarial"),
            ScoredModel("clinical_need", models["clinical_need"], kind="clinical"),
        ],
        AuditSpec(attributes=["imd_quintile"], intersections=[], n_boot=200, analyses=["allocation"]),
    )
    change = _row(
        result,
        model="actuarial_cost",
        analysis="allocation",
        metric="unmet_need_gap_change_if_by_clinical_need",
        attribute="imd_quintile",
        group="1",
    )
    assert change["ci_low"] <= 0 <= change["ci_high"], change.to_dict()
    assert np.isfinite(change["value"])
