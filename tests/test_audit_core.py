"""The audit core: per-group numbers against fairlearn and scikit-learn, invariants, bad input."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import MetricFrame, false_positive_rate, selection_rate, true_positive_rate
from sklearn.metrics import precision_score

from phm_audit.audit import AuditSpec, ScoredModel, audit
from phm_audit.audit._bootstrap import cell_table, percentile_interval
from phm_audit.audit._stats import rank_bins, top_k_mask
from phm_audit.exceptions import PhmInputError


@pytest.fixture(scope="module")
def small(cohort_factory):
    return cohort_factory("england", 30_000, 21)


def _scores(df: pd.DataFrame) -> np.ndarray:
    return df["cost_prior"].to_numpy(np.float64) + df["n_ltc_recorded"].to_numpy(np.float64)


def _spec(**kw):
    base = {
        "attributes": ["imd_quintile", "ethnicity"],
        "intersections": [],
        "n_boot": 50,
        "analyses": ["fairness", "calibration"],
    }
    base.update(kw)
    return AuditSpec(**base)


@pytest.mark.slow
def test_group_rates_equal_fairlearn_metricframe(small):
    scores = _scores(small)
    result = audit(small, {"m": scores}, _spec())
    k = int(np.ceil(0.03 * len(small)))
    flagged = top_k_mask(scores, k)
    high = top_k_mask(small["need_true_next"].to_numpy(np.float64), k)
    for attribute in ("imd_quintile", "ethnicity"):
        mf = MetricFrame(
            metrics={
                "selection_rate": selection_rate,
                "tpr": true_positive_rate,
                "fpr": false_positive_rate,
                "ppv": lambda y, p: precision_score(y, p, zero_division=np.nan),
            },
            y_true=high.astype(int),
            y_pred=flagged.astype(int),
            sensitive_features=small[attribute].astype(str).to_numpy(),
        )
        for metric in ("selection_rate", "tpr", "fpr", "ppv"):
            rows = result.get(metric=metric, attribute=attribute, operating_point="top_3pct", analysis="fairness")
            ours = rows.set_index("group")["value"]
            theirs = mf.by_group[metric]
            for group, value in theirs.items():
                assert ours[str(group)] == pytest.approx(value, abs=1e-12), (attribute, group, metric)
        fnr = result.get(metric="fnr", attribute=attribute, operating_point="top_3pct").set_index("group")["value"]
        tpr = result.get(metric="tpr", attribute=attribute, operating_point="top_3pct").set_index("group")["value"]
        assert np.allclose(fnr + tpr, 1.0)


def test_shares_sum_to_one_and_differences_are_against_the_reference(small):
    result = audit(small, {"m": _scores(small)}, _spec(reference={"imd_quintile": "5"}))
    for metric in ("population_share", "flagged_share", "high_need_share"):
        for op in ("top_1pct", "top_3pct", "top_5pct"):
            values = result.get(metric=metric, attribute="imd_quintile", operating_point=op)["value"]
            assert values.sum() == pytest.approx(1.0)
    sel = result.get(metric="selection_rate", attribute="imd_quintile", operating_point="top_5pct").set_index("group")
    diff = result.get(metric="selection_rate_difference", attribute="imd_quintile", operating_point="top_5pct")
    ratio = result.get(metric="selection_rate_ratio", attribute="imd_quintile", operating_point="top_5pct")
    assert np.allclose(diff.set_index("group")["value"], sel["value"] - sel.loc["5", "value"])
    assert np.allclose(ratio.set_index("group")["value"], sel["value"] / sel.loc["5", "value"])
    assert result.groups["imd_quintile"]["reference"] == "5"


def test_every_value_carries_n_and_an_interval_or_a_reason(small):
    table = audit(small, {"m": _scores(small)}, _spec()).table()
    assert list(table.columns[:10]) == [
        "model",
        "analysis",
        "attribute",
        "group",
        "operating_point",
        "metric",
        "value",
        "ci_low",
        "ci_high",
        "n",
    ]
    defined = table["value"].notna()
    assert (table.loc[~defined, "reason"] != "").all()
    has_interval = table["ci_low"].notna()
    excused = table["reason"] != ""
    no_ci_by_design = table["metric"].isin(["n", "bins_left_out", "people_left_out"])
    assert (has_interval | excused | no_ci_by_design | ~defined).all()
    with_ci = table[has_interval & defined]
    assert (with_ci["ci_low"] <= with_ci["ci_high"] + 1e-12).all()
    assert table["n"].notna().all()


def test_ratio_at_equal_score_is_direct_standardisation(small):
    scores = _scores(small)
    result = audit(small, {"m": scores}, _spec(n_score_bins=20, reference={"imd_quintile": "5"}))
    bins, _, _ = rank_bins(scores, 20)
    df = pd.DataFrame({"g": small["imd_quintile"].to_numpy(), "b": bins, "y": small["need_true_next"].to_numpy(float)})
    means = df.groupby(["g", "b"])["y"].agg(["mean", "size"]).unstack("g")
    ref = means["mean"][5]
    for g in (1, 2, 3, 4):
        n_g, m_g = means["size"][g], means["mean"][g]
        ok = n_g.notna() & ref.notna()
        expected = (n_g[ok] * m_g[ok]).sum() / (n_g[ok] * ref[ok]).sum()
        got = result.value(
            metric="need_ratio_at_equal_score", attribute="imd_quintile", group=str(g), target="need_true_next"
        )
        assert got == pytest.approx(expected, rel=1e-10)


def test_count_bootstrap_matches_a_row_bootstrap():
    rng = np.random.default_rng(3)
    n = 20_000
    cells = rng.integers(0, 8, n)
    cells[:40] = 8  # a small cell, resampled exactly
    values = rng.lognormal(6, 1.2, n)
    table = cell_table(cells, 9, values[:, None], n_boot=1000, rng=np.random.default_rng(4))
    ours = table.sums[1:, :, 0] / table.counts[1:]
    rows = []
    for _ in range(300):
        idx = rng.integers(0, n, n)
        rows.append(np.bincount(cells[idx], weights=values[idx], minlength=9) / np.bincount(cells[idx], minlength=9))
    theirs = np.array(rows)
    assert np.allclose(ours.std(axis=0), theirs.std(axis=0), rtol=0.15)
    assert np.allclose(table.counts[0], np.bincount(cells, minlength=9))


def test_percentile_interval_equals_numpy_nanquantile():
    reps = np.random.default_rng(0).normal(size=(200, 6))
    reps[:30, 2] = np.nan
    low, high = percentile_interval(reps)
    assert np.allclose(low, np.nanquantile(reps, 0.025, axis=0))
    assert np.allclose(high, np.nanquantile(reps, 0.975, axis=0))
    reps[:150, 4] = np.nan  # most replicates undefined: no interval
    low, _ = percentile_interval(reps)
    assert np.isnan(low[4])


def test_relabelling_groups_permutes_results(small):
    scores = _scores(small)
    relabelled = small.copy()
    mapping = {1: 50, 2: 40, 3: 30, 4: 20, 5: 10}
    relabelled["imd_quintile"] = relabelled["imd_quintile"].map(mapping)
    spec_a = _spec(attributes=["imd_quintile"], reference={"imd_quintile": "5"})
    spec_b = _spec(attributes=["imd_quintile"], reference={"imd_quintile": "10"})
    a = audit(small, {"m": scores}, spec_a).get(analysis="fairness").set_index(["operating_point", "metric", "group"])
    b = audit(relabelled, {"m": scores}, spec_b).get(analysis="fairness")
    b["group"] = b["group"].map({str(v): str(k) for k, v in mapping.items()})
    b = b.set_index(["operating_point", "metric", "group"])
    pd.testing.assert_series_equal(a["value"].sort_index(), b["value"].sort_index())


def test_result_is_immutable(small):
    result = audit(small, {"m": _scores(small)}, _spec())
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.notes = ()  # type: ignore[misc]
    table = result.table()
    table.loc[:, "value"] = -1
    assert (result.table()["value"] != -1).any()
    d = result.to_dict()
    assert d["schema_version"] and d["metrics"] and d["curves"]


def test_bad_input(small):
    scores = _scores(small)
    with pytest.raises(PhmInputError, match=r"'imd_quintle'.*did you mean 'imd_quintile'"):
        audit(small, {"m": scores}, _spec(attributes=["imd_quintle"]))
    one = small.assign(region="North")
    with pytest.raises(PhmInputError, match="single value"):
        audit(one, {"m": scores}, _spec(attributes=["region"]))
    bad = scores.copy()
    bad[[5, 9]] = np.nan
    with pytest.raises(PhmInputError, match="2 missing or infinite scores"):
        audit(small, {"m": bad}, _spec())
    with pytest.raises(PhmInputError, match="has 29,999 scores for 30,000 people"):
        audit(small, {"m": scores[:-1]}, _spec())
    with pytest.raises(PhmInputError, match="reference group '9' does not exist"):
        audit(small, {"m": scores}, _spec(reference={"imd_quintile": "9"}))
    with pytest.raises(PhmInputError, match=r"'cost_nxt'.*did you mean 'cost_next'"):
        audit(small, {"m": scores}, _spec(cost_target="cost_nxt"))
    with pytest.raises(PhmInputError, match="top_pct"):
        _spec(operating_points=["top_pct:0"])


def test_target_with_no_events_is_undefined_with_a_reason(small):
    never = small.assign(emergency_admission_next=False)
    model = ScoredModel("p", np.linspace(0.01, 0.2, len(small)), target="emergency_admission_next")
    result = audit(never, [model], _spec(attributes=["sex"]))
    slope = result.get(metric="calibration_slope", attribute="sex")
    assert slope["value"].isna().all()
    assert slope["reason"].str.contains("no events").all()


def test_small_groups_are_undefined_not_zero(small):
    tiny = small.copy()
    tiny["site"] = np.where(np.arange(len(tiny)) < 20, "tiny", "big")
    result = audit(tiny, {"m": _scores(tiny)}, _spec(attributes=["site"], min_group_size=50))
    rows = result.get(metric="selection_rate", attribute="site", group="tiny")
    assert rows["value"].isna().all()
    assert rows["reason"].str.contains("fewer than 50").all()


def test_ties_at_the_threshold_give_exactly_the_capacity(small):
    scores = np.round(_scores(small), -3)  # heavy ties
    result = audit(small, {"m": scores}, _spec(attributes=["sex"]))
    flagged = result.get(metric="flagged_share", attribute="sex", operating_point="top_3pct")["n"].iloc[0]
    assert flagged == int(np.ceil(0.03 * len(small)))
