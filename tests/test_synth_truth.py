"""Ground truth: the access and recording gaps the generator plants are there, at their size.

Each test compares a statistic of one cohort with a bound. ``benchmarks/test_margins.py --seeds 301-310``
draws each statistic over ten other seeds; the docstrings quote how many spreads (standard deviations over
seeds) the bound sits from the mean and the normal-approximation probability that a right generator fails
the test, each below 1 in 1,000. The seeds here (401-404) were fixed before the tests were run on them;
none is a seed a default was chosen on.
"""

from __future__ import annotations

import numpy as np
import pytest

from phm_audit.synth import generate, load_scenario

pytestmark = pytest.mark.slow  # cohorts of 200,000-400,000 people


def _ratio(df, mask, num, den):
    return float(df.loc[mask, num].astype(float).sum() / df.loc[mask, den].astype(float).sum())


def _groups(df):
    plain = (df["ethnicity"] == "White") & ~df["digitally_excluded"]
    mid_to_least = df["imd_quintile"] >= 3
    return {
        "imd_q1": plain & (df["imd_quintile"] == 1),
        "asian": (df["ethnicity"] == "Asian") & mid_to_least & ~df["digitally_excluded"],
        "black": (df["ethnicity"] == "Black") & mid_to_least & ~df["digitally_excluded"],
        "reference": plain & mid_to_least,
    }


@pytest.fixture(scope="module")
def exact_england():
    # Without practice-level variation, the planted factor is exact in expectation.
    return generate("england", 400_000, seed=401, n_jobs=2, overrides={"practice_access_sd": 0})


# Asian and Black people of IMD quintiles 3-5 who are online are few (about 10,000 and 4,000 in 400,000),
# so their ratios spread 3-4 times as much over seeds as quintile 1's: their tolerance is wider.
@pytest.mark.parametrize(
    "group,knob,tolerance",
    [
        ("imd_q1", "planned_access.imd_q1", 0.025),
        ("asian", "planned_access.asian", 0.04),
        ("black", "planned_access.black", 0.04),
    ],
)
def test_planned_care_at_equal_need_is_lower_by_the_configured_factor(exact_england, group, knob, tolerance):
    """Planned cost per £ of planned need is the configured factor, and 1 for the reference group.

    Over seeds 301-310: quintile 1 0.850 (spread 0.003; the bound is 7.6 spreads away, P(fail) 2e-14),
    Asian 0.882 (spread 0.008; 4.9 spreads, P 1e-6), Black 0.860 (spread 0.009; 4.3 spreads, P 2e-5), the
    reference 1.000 (spread 0.0025; 5.9 spreads, P 2e-9).
    """
    df = exact_england
    g = _groups(df)
    factor = load_scenario("england")[knob]
    got = _ratio(df, g[group], "planned_cost_next", "need_planned_true_next")
    ref = _ratio(df, g["reference"], "planned_cost_next", "need_planned_true_next")
    assert ref == pytest.approx(1.0, abs=0.015)
    assert got == pytest.approx(factor, abs=tolerance)


def test_missed_planned_care_returns_in_part_as_emergency_care_in_the_most_deprived_fifth(exact_england):
    """Emergency cost per £ of need is higher in quintile 1 than in the reference group.

    Over seeds 301-310 the excess is 0.031 (spread 0.005: 6.5 spreads above 0, P(fail) 3e-11). For Asian and
    Black people the planted excess is about 0.013 with a spread of 0.012-0.021 at this size: it cannot be
    told from noise here, so it is not asserted.
    """
    df = exact_england
    g = _groups(df)
    emergency = _ratio(df, g["imd_q1"], "emergency_cost_next", "need_true_next")
    emergency_ref = _ratio(df, g["reference"], "emergency_cost_next", "need_true_next")
    assert emergency > emergency_ref


@pytest.mark.parametrize(("group", "margin"), [("imd_q1", 0.025), ("asian", 0.025), ("black", 0.0)])
def test_total_cost_at_equal_need_is_lower_net_of_extra_emergency_care(exact_england, group, margin):
    """Total cost per £ of need is lower than the reference's (by ``margin`` or more), and the reference's is 1.

    Over seeds 301-310 the gap (reference minus group) is 0.089 for quintile 1 (spread 0.006; 11 spreads
    above 0.025, P(fail) 5e-30), 0.072 for Asian people (spread 0.011; 4.1 spreads, P 2e-5) and 0.087 for
    Black people (spread 0.022; 3.9 spreads above 0, P 5e-5); the reference's ratio 1.000 (spread 0.003;
    4.9 spreads, P 9e-7).
    """
    df = exact_england
    g = _groups(df)
    total = _ratio(df, g[group], "cost_next", "need_true_next")
    total_ref = _ratio(df, g["reference"], "cost_next", "need_true_next")
    assert total < total_ref - margin
    assert total_ref == pytest.approx(1.0, abs=0.015)


def test_default_england_keeps_the_gap_with_practice_variation(england_large):
    """With practice-level variation, quintile 1 still gets less planned care at equal need.

    Practices add spread: over seeds 301-310 the ratio is 0.849 with a spread of 0.023. The test asserts
    it is below 0.96 (4.8 spreads, P(fail) 8e-7) and within 0.08 of the configured factor (3.4 spreads
    each side, P 6e-4).
    """
    df = england_large
    g = _groups(df)
    q1 = _ratio(df, g["imd_q1"], "planned_cost_next", "need_planned_true_next")
    ref = _ratio(df, g["reference"], "planned_cost_next", "need_planned_true_next")
    assert q1 / ref < 0.96
    assert q1 / ref == pytest.approx(load_scenario("england")["planned_access.imd_q1"], abs=0.08)


def test_no_gap_has_equal_cost_and_recording_at_equal_need(cohort_factory):
    """Where no gap is planted, cost per £ of need is 1 in every group.

    Over seeds 301-310 the widest spreads are Black people's (planned 0.010, total 0.014); with tolerances
    of 0.04 and 0.055 every ratio is at least 3.6 spreads inside (P(fail) below 3e-4 in all).
    """
    df = cohort_factory("no_gap", 400_000, 403)
    g = _groups(df)
    for name in ("imd_q1", "asian", "black"):
        assert _ratio(df, g[name], "planned_cost_next", "need_planned_true_next") == pytest.approx(1.0, abs=0.04)
        assert _ratio(df, g[name], "cost_next", "need_true_next") == pytest.approx(1.0, abs=0.055)
    assert np.allclose(df["access_planned"], 1.0)
    assert np.allclose(df["recording_multiplier"], 1.0)


def test_recording_is_lower_where_access_is_poorer(england_large):
    """Diabetes is recorded less often in quintile 1 than in the reference group.

    Over seeds 301-310 the gap is 0.044 (spread 0.012: 3.6 spreads above 0, P(fail) 1.4e-4). The earlier
    bound, a gap above 0.05, fails half of all seeds since the recording elasticity was lowered to 0.3.
    """
    df = england_large
    g = _groups(df)
    has = df["has_diabetes"]
    rec_q1 = df.loc[g["imd_q1"] & has, "rec_diabetes"].mean()
    rec_ref = df.loc[g["reference"] & has, "rec_diabetes"].mean()
    assert rec_q1 < rec_ref
    assert not (df["rec_diabetes"] & ~df["has_diabetes"]).any()  # only true conditions are recorded


def test_need_true_next_is_expected_cost_where_access_is_equal(cohort_factory):
    """Cost over need is 1 overall (0.999, spread 0.002 over seeds 301-310: 11 spreads, P(fail) 4e-27)."""
    df = cohort_factory("no_gap", 400_000, 403)
    ratio = df["cost_next"].astype(float).sum() / df["need_true_next"].astype(float).sum()
    assert ratio == pytest.approx(1.0, abs=0.02)
    # and within deciles of need, not only on average
    dec = np.searchsorted(np.quantile(df["need_true_next"], np.linspace(0.1, 0.9, 9)), df["need_true_next"])
    by = df.assign(d=dec).groupby("d")[["cost_next", "need_true_next"]].sum()
    assert np.allclose(by["cost_next"] / by["need_true_next"], 1.0, atol=0.05)


def test_high_gap_is_larger_than_england(cohort_factory, england_large):
    """Quintile 1's cost per £ of need is lower in ``high_gap`` than in ``england``, by more than 0.02.

    Over six pairs of seeds (311-316 and 411-416) the difference is 0.080 with a spread of 0.015: the bound
    is 4.1 spreads below (P(fail) 2e-5). The earlier bound, 0.05, was 2 spreads away (P 0.02).
    """
    high = cohort_factory("high_gap", 200_000, 404)
    g_high, g_eng = _groups(high), _groups(england_large)
    r_high = _ratio(high, g_high["imd_q1"], "cost_next", "need_true_next")
    r_eng = _ratio(england_large, g_eng["imd_q1"], "cost_next", "need_true_next")
    assert r_high < r_eng - 0.02
