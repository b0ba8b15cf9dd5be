"""Referral thresholds, capacity and unmet need: kernels against naive computations and references."""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import MetricFrame, true_positive_rate
from sklearn.base import BaseEstimator

from phm_audit.audit import AuditSpec, ScoredModel, audit
from phm_audit.audit._allocation import equal_tpr_flags, replacement_swaps
from phm_audit.audit._cells import MemoryCells, Rank
from phm_audit.audit._groups import encode_groups
from phm_audit.audit._net_benefit import DEFAULT_THRESHOLDS, net_benefit_curve
from phm_audit.audit._operating_points import capacity_for_share
from phm_audit.audit._result import RowBuilder
from phm_audit.audit._stats import top_k_mask
from phm_audit.audit._sweep_rows import capacities, fraction_name, sweep_rows


@pytest.fixture(scope="module")
def small(cohort_factory):
    return cohort_factory("england", 20_000, 41)


def _naive_sweep(scores, need, groups, fractions):
    out = []
    n = scores.size
    for f in fractions:
        k = capacity_for_share(f, n)
        flagged = top_k_mask(scores, k)
        high = top_k_mask(need, k)
        for g in np.unique(groups):
            m = groups == g
            out.append(
                {
                    "group": str(g),
                    "operating_point": fraction_name(f),
                    "selection_rate": flagged[m].mean(),
                    "flagged_share": flagged[m].sum() / flagged.sum(),
                    "high_need_share": high[m].sum() / high.sum(),
                    "need_captured": need[m & flagged].sum() / need[m].sum(),
                    "unmet_need_rate": (high[m] & ~flagged[m]).sum() / high[m].sum() if high[m].any() else np.nan,
                    "tpr": (high[m] & flagged[m]).sum() / high[m].sum() if high[m].any() else np.nan,
                    "fpr": (~high[m] & flagged[m]).sum() / (~high[m]).sum(),
                    "ppv": (high[m] & flagged[m]).sum() / flagged[m].sum() if flagged[m].any() else np.nan,
                }
            )
    return pd.DataFrame(out)


def test_sweep_equals_the_naive_per_threshold_computation():
    rng = np.random.default_rng(0)
    n = 3_000
    scores = np.round(rng.gamma(2, 1, n), 1)  # ties in scores
    need = np.round(rng.gamma(1, 1, n), 1)  # ties in need
    groups = rng.choice(np.array(["a", "b", "c", "tiny"]), n, p=[0.5, 0.3, 0.195, 0.005])
    frame = pd.DataFrame({"g": groups})
    cells = MemoryCells(frame, ["g"], {"s": scores, "need": need})
    grouping = encode_groups(frame, ["g"])
    grouping = replace(grouping, strata=grouping.codes[cells.first_of_strata()])
    fractions, ks = capacities(n, None)
    edges = tuple(int(k) for k in ks)
    rows = RowBuilder()
    sweep_rows(
        rows,
        model="m",
        grouping=grouping,
        cube=cells.cube([Rank("s", edges), Rank("need", edges)], ["need"]),
        fractions=fractions,
        target="y",
        min_group_size=1,
        n_boot=0,
        level=0.95,
        rng=rng,
    )
    ours = rows.frame().pivot_table(index=["group", "operating_point"], columns="metric", values="value", dropna=False)
    naive = _naive_sweep(scores, need, groups, fractions).set_index(["group", "operating_point"])
    assert len(fractions) >= 100
    for metric in naive.columns:
        a = ours[metric].reindex(naive.index).to_numpy(float)
        b = naive[metric].to_numpy(float)
        assert np.array_equal(np.isnan(a), np.isnan(b)), metric
        assert np.allclose(a[~np.isnan(a)], b[~np.isnan(b)], rtol=0, atol=1e-12), metric


@pytest.mark.slow
def test_net_benefit_matches_dcurves():
    dcurves = pytest.importorskip("dcurves")
    rng = np.random.default_rng(1)
    n = 4_000
    p = np.round(rng.beta(1, 8, n), 3)
    y = (rng.random(n) < p).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # dcurves' own pandas deprecation warnings
        ref = dcurves.dca(
            data=pd.DataFrame({"y": y, "m": p}), outcome="y", modelnames=["m"], thresholds=list(DEFAULT_THRESHOLDS)
        )
    ours = net_benefit_curve(p, y, DEFAULT_THRESHOLDS)
    model = ref[ref["model"] == "m"].sort_values("threshold")["net_benefit"].to_numpy(float)
    treat_all = ref[ref["model"] == "all"].sort_values("threshold")["net_benefit"].to_numpy(float)
    assert np.allclose(ours["net_benefit"], model, atol=1e-9, rtol=0)
    assert np.allclose(ours["treat_all"], treat_all, atol=1e-9, rtol=0)


def test_net_benefit_rows_per_group_match_the_curve(small):
    p = np.clip(small["cost_prior"].to_numpy(float) / 20_000, 0, 1)
    model = ScoredModel("p", p, target="emergency_admission_next")
    result = audit(small, [model], AuditSpec(attributes=["sex"], intersections=[], analyses=["net_benefit"], n_boot=20))
    y = small["emergency_admission_next"].to_numpy(float)
    female = (small["sex"] == "Female").to_numpy()
    curve = net_benefit_curve(p[female], y[female], DEFAULT_THRESHOLDS)
    rows = result.get(analysis="net_benefit", metric="net_benefit", group="Female")
    assert np.allclose(rows["value"].to_numpy(float), curve["net_benefit"], atol=1e-12)


def test_replacement_swaps_equal_the_step_by_step_simulation():
    rng = np.random.default_rng(2)
    for _ in range(50):
        flagged_ref = list(rng.integers(0, 20, rng.integers(0, 15)).astype(float))
        unflagged = list(rng.integers(0, 20, rng.integers(0, 15)).astype(float))
        a, b = sorted(flagged_ref), sorted(unflagged, reverse=True)
        swaps = 0
        while a and b and b[0] > a[0]:  # swap the healthiest flagged for the sickest unflagged
            a.pop(0)
            b.pop(0)
            swaps += 1
        assert replacement_swaps(np.array(flagged_ref), np.array(unflagged)) == swaps


def test_equal_tpr_thresholds_hold_capacity_and_equalise_tpr(small):
    scores = small["cost_prior"].to_numpy(float)
    need = small["need_true_next"].to_numpy(float)
    k = int(0.05 * len(small))
    high = top_k_mask(need, k)
    grouping = encode_groups(small, ["imd_quintile"])
    fair = equal_tpr_flags(scores, grouping.codes, high, k)
    assert fair.sum() == k
    mf = MetricFrame(
        metrics=true_positive_rate, y_true=high, y_pred=fair, sensitive_features=small["imd_quintile"].to_numpy()
    )
    smallest = min(np.bincount(grouping.codes[high]))
    assert mf.difference() <= 2.0 / smallest
    plain = MetricFrame(
        metrics=true_positive_rate,
        y_true=high,
        y_pred=top_k_mask(scores, k),
        sensitive_features=small["imd_quintile"].to_numpy(),
    )
    assert mf.difference() < plain.difference()


class _ScoreColumn(BaseEstimator):
    """A prefit scorer for fairlearn's post-processing: its decision function is the one column of X."""

    def fit(self, X, y=None):
        return self

    def decision_function(self, X):
        return np.asarray(X, dtype=np.float64)[:, 0]

    def __sklearn_is_fitted__(self):  # so ThresholdOptimizer(prefit=True) does not warn that it is unfitted
        return True


def test_equal_tpr_flags_match_fairlearn_threshold_optimizer_at_its_capacity():
    pytest.importorskip("fairlearn", reason="fairlearn is needed for the ThresholdOptimizer reference")
    from fairlearn.postprocessing import ThresholdOptimizer

    rng = np.random.default_rng(3)
    n = 30_000
    codes = rng.choice(3, n, p=[0.55, 0.3, 0.15])
    need = rng.normal(np.array([0.0, 0.4, 0.8])[codes], 1.0)  # so the groups' rates of high need differ
    # the score under-records need in groups 1 and 2, and is noisier there
    scores = need - np.array([0.0, 0.5, 0.9])[codes] + rng.normal(0.0, np.array([0.6, 0.8, 1.0])[codes])
    high = top_k_mask(need, int(0.05 * n))
    n_high = np.bincount(codes[high], minlength=3)
    X = scores[:, None]

    # ThresholdOptimizer picks the common TPR by its objective; the capacity is whatever that TPR costs
    opt = ThresholdOptimizer(
        estimator=_ScoreColumn(),
        constraints="true_positive_rate_parity",
        objective="balanced_accuracy_score",
        prefit=True,
        predict_method="decision_function",
    )
    opt.fit(X, high.astype(int), sensitive_features=codes)
    p_flag = opt._pmf_predict(X, sensitive_features=codes)[:, 1]  # each person's probability of being flagged
    tpr_to_g = np.bincount(codes[high], weights=p_flag[high], minlength=3) / n_high
    assert np.ptp(tpr_to_g) < 1e-9  # its constraint holds exactly in expectation
    tpr_to = float(tpr_to_g.mean())
    k_to = float(p_flag.sum())
    drawn = opt.predict(X, sensitive_features=codes, random_state=0)  # the public, randomised rule flags ~k_to
    assert abs(int(drawn.sum()) - k_to) <= 4 * np.sqrt(np.sum(p_flag * (1 - p_flag))) + 1

    k = round(k_to)
    fair = equal_tpr_flags(scores, codes, high, k)
    tpr = np.bincount(codes[fair & high], minlength=3) / n_high
    assert fair.sum() == k
    # Deterministic cut-offs move a group's TPR in steps of 1/n_high_g: every group is within one step of the
    # lowest (the solver's common rate r gives each group ceil(r * n_high_g) high-need members, and at most
    # one group takes one more at the last step).
    assert np.all(tpr - tpr.min() <= 1 / n_high + 1e-12), (tpr, n_high)
    # ThresholdOptimizer randomises between two cut-offs per group, i.e. it sits on the concave hull of each
    # group's ROC curve, which for a given TPR flags no more people than any single cut-off (the staircase
    # under the hull). So at the same capacity the solver cannot beat its TPR by more than one step, and
    # falls short by the staircase's dip below the hull at that point: a handful of high-need people per
    # group (on this generator, at most 4.4 of them over 30 seeds and both accuracy objectives). Allow 6.
    assert np.all(tpr <= tpr_to + 1 / n_high + 1e-12), (tpr, tpr_to, n_high)
    assert np.all(tpr >= tpr_to - 6 / n_high), (tpr, tpr_to, n_high)


def test_raising_the_bar_drops_people_and_unmet_need_grows(small):
    scores = small["cost_prior"].to_numpy(float)
    result = audit(
        small,
        {"m": scores},
        AuditSpec(attributes=["imd_quintile"], intersections=[], analyses=["raise_bar"], n_boot=20, raise_bar_steps=5),
    )
    dropped = result.get(analysis="raise_bar", metric="dropped")
    k0 = int(np.ceil(0.03 * len(small)))
    k_last = round(k0 * 0.98**5)
    assert dropped["value"].sum() == k0 - k_last
    unmet = result.get(analysis="raise_bar", metric="unmet_need_rate", group="1")
    steps = unmet["operating_point"].str.extract(r"step_(\d+)")[0].astype(int)
    values = unmet.assign(step=steps.to_numpy()).sort_values("step")["value"].to_numpy()
    assert np.all(np.diff(values) >= 0)


def test_referral_gate_refusals_equal_a_direct_count(small):
    scores = small["cost_prior"].to_numpy(float)
    result = audit(
        small,
        {"m": scores},
        AuditSpec(
            attributes=["imd_quintile"], intersections=[], analyses=["referral"], n_boot=20, referral_gate="top_pct:20"
        ),
    )
    refused = ~top_k_mask(scores, int(np.ceil(0.2 * len(small))))
    needing = small["specialist_need_next"].to_numpy(bool)
    q1 = (small["imd_quintile"] == 1).to_numpy()
    expected = (refused & needing & q1).sum() / (needing & q1).sum()
    got = result.value(analysis="referral", metric="refused_rate_among_needing", group="1")
    assert got == pytest.approx(expected, abs=1e-12)


def test_bad_operating_points(small):
    from phm_audit.exceptions import PhmInputError

    scores = small["cost_prior"].to_numpy(float)
    with pytest.raises(PhmInputError):
        audit(small, {"m": scores}, AuditSpec(attributes=["sex"], intersections=[], operating_points=["top_k:0"]))
    with pytest.raises(PhmInputError):
        audit(
            small,
            {"m": scores},
            AuditSpec(attributes=["sex"], intersections=[], operating_points=[f"top_k:{len(small) + 5}"]),
        )
    with pytest.raises(PhmInputError):
        audit(small, {"m": scores}, AuditSpec(attributes=["sex"], intersections=[], operating_points=["score_ge:1e12"]))
    with pytest.raises(PhmInputError):
        AuditSpec(operating_points=["top 3 percent"])
