"""The threshold sweep against a naive per-threshold computation, fairlearn, and its invariants.

One kernel computes the sweep (:mod:`phm_audit.audit._sweep_rows`, the audit's ``thresholds``
analysis); :func:`threshold_sweep` lays its counts out as a table. The properties at the end call
that kernel, and ``audit()`` itself, directly.
"""

from __future__ import annotations

import doctest
from functools import partial

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from phm_audit.audit import AuditSpec, _sweep, audit
from phm_audit.audit._operating_points import OperatingPoint, flag, resolve_k
from phm_audit.audit._stats import descending_order, safe_div
from phm_audit.audit._sweep import DEFAULT_SWEEP_FRACTIONS, SWEEP_COLUMNS, SWEEP_METRICS, threshold_sweep
from phm_audit.audit._sweep_rows import DEFAULT_FRACTIONS, buckets_from_order, capacities, fraction_name, sweep_counts
from phm_audit.exceptions import PhmInputError

KEY = ["group", "fraction", "metric"]
RATES = ("selection_rate", "flagged_share", "high_need_share", "unmet_need_rate", "tpr", "fpr", "ppv")


def _ratio(num: float, den: float) -> float:
    return num / den if den != 0 else np.nan


def naive_sweep(scores, groups, need, fractions, high_need=None):
    """One pass per threshold: flag with ``flag()``, then count with boolean masks per group."""
    n = scores.size
    labels = [str(g) for g in sorted(set(groups.tolist()))]
    as_text = np.array([str(g) for g in groups.tolist()], dtype=object)
    rows = []
    for f in fractions:
        op = OperatingPoint("top_pct", 100 * f)
        everyone = f == 1  # flag() refuses an operating point that flags everybody; a sweep may reach it
        k = n if everyone else resolve_k(op, scores)
        flagged = np.ones(n, dtype=bool) if everyone else flag(scores, op)
        if high_need is None:
            high = np.ones(n, dtype=bool) if everyone else flag(need, OperatingPoint("top_k", k))
        else:
            high = high_need
        for label in [*labels, "all"]:
            member = np.ones(n, dtype=bool) if label == "all" else as_text == label
            size = member.sum()
            f_g = (flagged & member).sum()
            h_g = (high & member).sum()
            tp = (flagged & high & member).sum()
            parts = {
                "selection_rate": (f_g, size),
                "flagged_share": (f_g, flagged.sum()),
                "high_need_share": (h_g, high.sum()),
                "need_captured": (need[flagged & member].sum(), need[member].sum()),
                "unmet_need_rate": ((high & ~flagged & member).sum(), h_g),
                "tpr": (tp, h_g),
                "fpr": ((flagged & ~high & member).sum(), (~high & member).sum()),
                "ppv": (tp, f_g),
            }
            for metric, (num, den) in parts.items():
                rows.append(
                    {
                        "group": label,
                        "fraction": f,
                        "k": k,
                        "metric": metric,
                        "value": _ratio(float(num), float(den)),
                        "numerator": float(num),
                        "denominator": float(den),
                        "n": int(size),
                    }
                )
    return pd.DataFrame(rows)


def assert_same(ours: pd.DataFrame, naive: pd.DataFrame) -> None:
    a = ours.set_index(KEY).sort_index()
    b = naive.set_index(KEY).sort_index()
    assert a.index.equals(b.index)
    np.testing.assert_array_equal(a["k"].to_numpy(), b["k"].to_numpy())
    np.testing.assert_array_equal(a["n"].to_numpy(), b["n"].to_numpy())
    # NaN exactly where the naive computation has a zero denominator, equal to 1e-12 elsewhere
    np.testing.assert_allclose(a["value"].to_numpy(), b["value"].to_numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(a["numerator"].to_numpy(), b["numerator"].to_numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(a["denominator"].to_numpy(), b["denominator"].to_numpy(), rtol=1e-12, atol=1e-12)


def _awkward_population(seed: int = 0, n: int = 600):
    """Ties in scores and need, tiny groups, a group with no high need, a group never flagged early."""
    rng = np.random.default_rng(seed)
    scores = np.round(rng.gamma(1.0, 1.0, n), 1)  # heavy ties
    need = rng.integers(0, 8, n).astype(np.float64) * 100.0  # ties, an eighth at zero
    groups = rng.choice(np.array(["A", "B", "C"]), size=n, p=[0.6, 0.3, 0.1]).astype(object)
    # "lowrisk": every score below everyone else's, so nobody is flagged at small k
    groups[:25] = "lowrisk"
    scores[:25] = -1.0 - rng.random(25)
    # "noneed": need below everyone else's; sitting at the end of the input, ties at need 0 go elsewhere
    groups[-30:] = "noneed"
    need[-30:] = 0.0
    # tiny groups of one and two people
    groups[100] = "one"
    groups[[200, 201]] = "two"
    return scores, groups.astype(str), need


FRACTIONS = np.array([0.005, 0.01, 0.03, 0.05, 0.1, 0.25, 0.5, 0.8, 0.9])


def test_equals_naive_on_awkward_data():
    scores, groups, need = _awkward_population()
    ours = threshold_sweep(scores, groups, need=need, fractions=FRACTIONS)
    naive = naive_sweep(scores, groups, need, FRACTIONS)
    assert_same(ours, naive)
    # the awkward cases really occur, and are NaN with a zero denominator, never 0
    ppv = ours.query("metric == 'ppv' and group == 'lowrisk' and fraction == 0.005").iloc[0]
    assert np.isnan(ppv["value"]) and ppv["denominator"] == 0 and ppv["n"] == 25
    tpr = ours.query("metric == 'tpr' and group == 'noneed' and fraction == 0.5").iloc[0]
    assert np.isnan(tpr["value"]) and tpr["denominator"] == 0
    assert ours.query("group == 'one'")["n"].eq(1).all()
    # k = ceil(f x N)
    assert sorted(set(ours["k"])) == sorted({int(np.ceil(f * scores.size - 1e-9)) for f in FRACTIONS})


def test_equals_naive_with_a_fixed_high_need():
    scores, groups, need = _awkward_population(seed=1)
    high = need >= 600  # a fixed definition: the same people at every capacity
    ours = threshold_sweep(scores, groups, need=need, high_need=high, fractions=FRACTIONS)
    assert_same(ours, naive_sweep(scores, groups, need, FRACTIONS, high_need=high))
    share = ours.query("metric == 'high_need_share' and group == 'A'")["value"]
    assert share.nunique() == 1


def test_equals_naive_on_a_synthetic_cohort(cohort_factory):
    cohort = cohort_factory("england", 20_000, 5)
    scores = cohort["cost_prior"].to_numpy(np.float64)  # many people at exactly 0: ties
    need = cohort["need_true_next"].to_numpy(np.float64)
    groups = cohort["ethnicity"].to_numpy()
    fractions = np.array([0.01, 0.03, 0.2, 0.6])
    ours = threshold_sweep(scores, groups, need=need, fractions=fractions)
    assert_same(ours, naive_sweep(scores, groups.astype(str), need, fractions))


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_equals_naive_on_random_small_populations(data):
    n = data.draw(st.integers(min_value=2, max_value=40), label="n")
    scores = np.asarray(data.draw(st.lists(st.integers(0, 4), min_size=n, max_size=n)), dtype=np.float64)
    need = np.asarray(data.draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)), dtype=np.float64)
    groups = np.asarray(data.draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)))
    ks = data.draw(st.lists(st.integers(1, n - 1), min_size=1, max_size=6, unique=True), label="ks")
    fractions = np.array(ks) / n
    ours = threshold_sweep(scores, groups, need=need, fractions=fractions)
    assert_same(ours, naive_sweep(scores, groups, need, fractions))
    np.testing.assert_array_equal(ours.drop_duplicates("fraction")["k"], ks)


@pytest.mark.parametrize("fraction", [0.01, 0.03, 0.1, 0.4])
def test_matches_fairlearn_metricframe(cohort_factory, fraction):
    from fairlearn.metrics import MetricFrame, false_positive_rate, selection_rate, true_positive_rate
    from sklearn.metrics import precision_score

    cohort = cohort_factory("england", 20_000, 5)
    scores = cohort["cost_prior"].to_numpy(np.float64)
    need = cohort["need_true_next"].to_numpy(np.float64)
    groups = cohort["imd_quintile"].to_numpy()
    ours = threshold_sweep(scores, groups, need=need, fractions=[fraction])
    k = int(ours["k"].iloc[0])
    flagged = flag(scores, f"top_k:{k}")
    high = flag(need, f"top_k:{k}")
    frame = MetricFrame(
        metrics={
            "selection_rate": selection_rate,
            "tpr": true_positive_rate,
            "fpr": false_positive_rate,
            "ppv": partial(precision_score, zero_division=np.nan),
        },
        y_true=high,
        y_pred=flagged,
        sensitive_features=pd.Series(groups, name="imd_quintile").astype(str),
    )
    by_group = frame.by_group
    for metric in ("selection_rate", "tpr", "fpr", "ppv"):
        rows = ours[ours["metric"] == metric]
        got = rows[rows["group"] != "all"].set_index("group")["value"]
        np.testing.assert_allclose(got.loc[by_group.index].to_numpy(), by_group[metric].to_numpy(), atol=1e-12)
        overall = rows[rows["group"] == "all"]["value"].iloc[0]
        assert overall == pytest.approx(frame.overall[metric], abs=1e-12)


def test_undefined_is_nan_where_fairlearn_says_zero():
    from fairlearn.metrics import MetricFrame, true_positive_rate

    scores = np.array([5.0, 4.0, 3.0, 2.0, 1.0, 0.0])
    need = np.array([9.0, 0.0, 8.0, 0.0, 0.0, 0.0])
    groups = np.array(["x", "y", "x", "y", "x", "y"])
    ours = threshold_sweep(scores, groups, need=need, fractions=[2 / 6])
    tpr = ours.query("metric == 'tpr' and group == 'y'").iloc[0]
    assert np.isnan(tpr["value"]) and tpr["denominator"] == 0  # y has nobody with high need
    high = flag(need, "top_k:2")
    frame = MetricFrame(
        metrics=true_positive_rate, y_true=high, y_pred=flag(scores, "top_k:2"), sensitive_features=groups
    )
    assert frame.by_group["y"] == 0  # fairlearn reports an undefined rate as 0


# --- properties --------------------------------------------------------------------------------


@st.composite
def populations(draw):
    n = draw(st.integers(min_value=3, max_value=60))
    scores = np.asarray(draw(st.lists(st.integers(0, 6), min_size=n, max_size=n)), dtype=np.float64)
    need = np.asarray(draw(st.lists(st.integers(0, 5), min_size=n, max_size=n)), dtype=np.float64) * 10
    groups = np.asarray(draw(st.lists(st.sampled_from(["p", "q", "r", "s"]), min_size=n, max_size=n)))
    fractions = np.sort(np.asarray(draw(st.lists(st.floats(0.02, 1.0), min_size=2, max_size=8, unique=True))))
    return scores, groups, need, fractions


@settings(max_examples=100, deadline=None)
@given(populations())
def test_invariants(population):
    scores, groups, need, fractions = population
    out = threshold_sweep(scores, groups, need=need, fractions=fractions)
    assert list(out.columns) == list(SWEEP_COLUMNS)
    rates = out[out["metric"].isin(RATES)]["value"].dropna()
    assert ((rates >= 0) & (rates <= 1)).all()
    captured = out.query("metric == 'need_captured'")["value"].dropna()
    assert ((captured >= 0) & (captured <= 1 + 1e-12)).all()
    by_group = out[out["group"] != "all"]
    for metric in ("flagged_share", "high_need_share"):
        totals = by_group[by_group["metric"] == metric].groupby("fraction")["value"].sum()
        np.testing.assert_allclose(totals.to_numpy(), 1.0, atol=1e-12)
    for _, curve in out.query("metric == 'need_captured'").groupby("group"):
        values = curve.sort_values("k")["value"].to_numpy()
        if not np.isnan(values).any():
            assert np.all(np.diff(values) >= -1e-12)
    flagged = out.query("metric == 'selection_rate' and group == 'all'")
    np.testing.assert_array_equal(flagged["numerator"].to_numpy(), flagged["k"].to_numpy())
    # undefined exactly when the denominator is zero
    np.testing.assert_array_equal(out["value"].isna().to_numpy(), (out["denominator"] == 0).to_numpy())


@settings(max_examples=100, deadline=None)
@given(populations(), st.permutations(["p", "q", "r", "s"]))
def test_relabelling_groups_permutes_results(population, relabelled):
    scores, groups, need, fractions = population
    mapping = dict(zip(["p", "q", "r", "s"], relabelled, strict=True))
    before = threshold_sweep(scores, groups, need=need, fractions=fractions)
    after = threshold_sweep(scores, np.array([mapping[g] for g in groups]), need=need, fractions=fractions)
    before = before.assign(group=before["group"].map(lambda g: mapping.get(g, g)))
    pd.testing.assert_frame_equal(
        before.set_index(KEY).sort_index(), after.set_index(KEY).sort_index(), check_exact=False, atol=1e-12, rtol=0
    )


@settings(max_examples=50, deadline=None)
@given(populations())
def test_overall_rows_equal_a_sweep_with_one_group(population):
    scores, groups, need, fractions = population
    out = threshold_sweep(scores, groups, need=need, fractions=fractions)
    single = threshold_sweep(scores, np.zeros(scores.size, dtype=int), need=need, fractions=fractions, overall=False)
    a = out.query("group == 'all'").drop(columns="group").reset_index(drop=True)
    b = single.drop(columns="group").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b, check_exact=False, atol=1e-12, rtol=0)


def test_fraction_order_is_kept_and_does_not_change_values():
    scores, groups, need = _awkward_population(seed=2)
    shuffled = FRACTIONS[[3, 0, 8, 5, 1, 7, 2, 6, 4]]
    a = threshold_sweep(scores, groups, need=need, fractions=FRACTIONS)
    b = threshold_sweep(scores, groups, need=need, fractions=shuffled)
    assert list(b.drop_duplicates("fraction")["fraction"]) == list(shuffled)
    pd.testing.assert_frame_equal(a.set_index(KEY).sort_index(), b.set_index(KEY).sort_index())


# --- inputs ------------------------------------------------------------------------------------


def test_default_fractions_and_shape():
    rng = np.random.default_rng(0)
    n = 2000
    out = threshold_sweep(rng.random(n), rng.integers(1, 6, n), need=rng.random(n))
    assert len(DEFAULT_SWEEP_FRACTIONS) >= 100
    assert DEFAULT_SWEEP_FRACTIONS == DEFAULT_FRACTIONS  # the audit's grid (AuditSpec.sweep_fractions=None)
    assert DEFAULT_SWEEP_FRACTIONS[0] == pytest.approx(0.005) and DEFAULT_SWEEP_FRACTIONS[-1] == pytest.approx(0.5)
    assert len(out) == len(SWEEP_METRICS) * 6 * len(DEFAULT_SWEEP_FRACTIONS)
    assert list(out["group"].unique()) == ["1", "2", "3", "4", "5", "all"]
    assert list(out["metric"].unique()) == list(SWEEP_METRICS)
    assert out["k"].min() == 10 and out["k"].max() == 1000


def test_group_inputs_agree():
    scores, groups, need = _awkward_population(seed=3)
    labels, codes = np.unique(groups, return_inverse=True)
    reference = threshold_sweep(scores, groups, need=need, fractions=FRACTIONS)
    from_codes = threshold_sweep(scores, codes, need=need, fractions=FRACTIONS, group_names=list(labels))
    from_series = threshold_sweep(pd.Series(scores), pd.Series(groups), need=pd.Series(need), fractions=FRACTIONS)
    from_list = threshold_sweep(list(scores), list(groups), need=list(need), fractions=FRACTIONS)
    for other in (from_codes, from_series, from_list):
        pd.testing.assert_frame_equal(reference, other)


def test_categorical_groups_keep_their_order_and_empty_categories():
    scores, groups, need = _awkward_population(seed=4)
    categories = ["two", "C", "B", "A", "one", "lowrisk", "noneed", "empty"]
    out = threshold_sweep(scores, pd.Categorical(groups, categories=categories), need=need, fractions=[0.1])
    assert list(out["group"].unique()) == [*categories, "all"]
    empty = out.query("group == 'empty'")
    assert (empty["n"] == 0).all()
    for metric in ("selection_rate", "need_captured", "tpr", "fpr", "ppv", "unmet_need_rate"):
        row = empty[empty["metric"] == metric].iloc[0]
        assert np.isnan(row["value"]) and row["denominator"] == 0
    assert (empty.query("metric == 'flagged_share'")["value"] == 0).all()


def test_integer_and_boolean_labels():
    scores = np.array([3.0, 2.0, 1.0, 0.0])
    out = threshold_sweep(scores, np.array([True, False, True, False]), need=scores, fractions=[0.5], overall=False)
    assert list(out["group"].unique()) == ["False", "True"]
    out = threshold_sweep(scores, np.array([2.0, 10.0, 2.0, 10.0]), need=scores, fractions=[0.5], overall=False)
    assert list(out["group"].unique()) == ["2", "10"]
    out = threshold_sweep(scores, np.array([10**12, 5, 5, 10**12]), need=scores, fractions=[0.5], overall=False)
    assert list(out["group"].unique()) == ["5", "1000000000000"]


def test_full_population_capacity_is_allowed():
    scores = np.array([3.0, 2.0, 1.0, 0.0])
    out = threshold_sweep(scores, np.array(["a", "a", "b", "b"]), need=scores, fractions=[1.0])
    assert out.query("metric == 'selection_rate'")["value"].eq(1).all()
    assert out.query("metric == 'tpr'")["value"].eq(1).all()
    fpr = out.query("metric == 'fpr'")
    assert fpr["value"].isna().all() and fpr["denominator"].eq(0).all()  # nobody lacks high need


@pytest.mark.parametrize(
    "change,match",
    [
        ({"groups": np.array(["a"] * 5)}, r"groups must hold one label per person \(6\)"),
        ({"need": np.ones(5)}, r"need has 5 values for 6 people"),
        ({"need": np.array([1.0, np.nan, 1, 1, 1, 1])}, r"need has 1 missing or infinite"),
        ({"scores": np.array([1.0, np.inf, 1, 1, 1, 1])}, r"scores has 1 missing or infinite"),
        ({"groups": np.array(["a", None, "b", "a", "b", "a"], dtype=object)}, r"groups has 1 missing labels"),
        ({"groups": pd.Categorical(["a", None, "b", "a", "b", "a"])}, r"groups has 1 missing labels"),
        ({"groups": np.array(["a", "b", "all", "a", "b", "a"])}, r"a group is called 'all'.*overall=False"),
        ({"fractions": [0.0, 0.5]}, r"in \(0, 1\].*got 0.0"),
        ({"fractions": [0.5, 1.5]}, r"in \(0, 1\].*got 1.5"),
        ({"fractions": [np.nan]}, r"in \(0, 1\]"),
        ({"fractions": [1e-15]}, r"fraction 1e-15 of a population of 6 is a capacity of 0 people"),
        ({"fractions": []}, r"non-empty"),
        ({"high_need": np.array([1, 0, 2, 0, 1, 0])}, r"high_need must be boolean"),
        ({"high_need": np.ones(5, dtype=bool)}, r"high_need must hold one value per person \(6\)"),
        ({"groups": np.array([0, 1, 2, 0, 1, 0]), "group_names": ["a", "b"]}, r"codes from 0 to 2 .* names 2"),
        ({"groups": np.array(["a"] * 6), "group_names": ["a"]}, r"must be integer codes"),
        ({"groups": np.array([1, "1", 1, 1, 1, 1], dtype=object)}, r"distinct as text"),
    ],
)
def test_bad_inputs(change, match):
    arguments = {
        "scores": np.arange(6.0),
        "groups": np.array(["a", "b"] * 3),
        "need": np.arange(6.0),
        "fractions": [0.5],
    }
    arguments.update(change)
    scores = arguments.pop("scores")
    groups = arguments.pop("groups")
    with pytest.raises(PhmInputError, match=match):
        threshold_sweep(scores, groups, **arguments)


def test_docstring_examples_run():
    result = doctest.testmod(_sweep, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0


# --- the audit's kernel (analysis = thresholds) ------------------------------------------------


@st.composite
def kernel_inputs(draw):
    """Scores and need with ties, 1 to 4 groups (some possibly empty), capacities as whole people."""
    n = draw(st.integers(min_value=2, max_value=50), label="n")
    scores = np.asarray(draw(st.lists(st.integers(0, 5), min_size=n, max_size=n)), dtype=np.float64)
    need = np.asarray(draw(st.lists(st.integers(0, 4), min_size=n, max_size=n)), dtype=np.float64) * 10
    n_groups = draw(st.integers(1, 4), label="n_groups")
    codes = np.asarray(draw(st.lists(st.integers(0, n_groups - 1), min_size=n, max_size=n)), dtype=np.intp)
    ks = draw(st.lists(st.integers(1, n), min_size=1, max_size=7, unique=True), label="ks")
    return scores, need, codes, n_groups, np.sort(np.asarray(ks)) / n


def _kernel(scores, need, codes, n_groups, fractions, *, n_boot=0, need_buckets=None):
    """The audit's path: capacities, one sort each by score and need, buckets, cumulative counts."""
    _, ks = capacities(scores.size, fractions)
    if need_buckets is None:
        need_buckets = buckets_from_order(descending_order(need), ks)
    score_buckets = buckets_from_order(descending_order(scores), ks)
    rng = np.random.default_rng(0)
    counts = sweep_counts(codes, n_groups, score_buckets, need_buckets, need, ks.size, n_boot=n_boot, rng=rng)
    return ks, counts


def _top(values: np.ndarray, k: int) -> np.ndarray:
    """The k highest values, ties to the earlier position (the documented rule; k may be everyone)."""
    mask = np.zeros(values.size, dtype=bool)
    mask[np.lexsort((np.arange(values.size), -values))[:k]] = True
    return mask


@settings(max_examples=150, deadline=None)
@given(kernel_inputs())
def test_audit_kernel_counts_equal_a_brute_force_count_per_threshold(inputs):
    scores, need, codes, n_groups, fractions = inputs
    ks, counts = _kernel(scores, need, codes, n_groups, fractions)
    np.testing.assert_array_equal(ks, np.round(fractions * scores.size).astype(int))
    member = codes[None, :] == np.arange(n_groups)[:, None]  # (G, N): a brute force may loop and mask
    np.testing.assert_array_equal(counts.size[0, :, 0], member.sum(axis=1))
    np.testing.assert_allclose(counts.need[0, :, 0], (member * need).sum(axis=1), rtol=1e-12)
    for j, k in enumerate(ks):
        flagged, high = _top(scores, k), _top(need, k)
        np.testing.assert_array_equal(counts.flagged[0, :, j], (member & flagged).sum(axis=1))
        np.testing.assert_array_equal(counts.high_need[0, :, j], (member & high).sum(axis=1))
        np.testing.assert_array_equal(counts.both[0, :, j], (member & flagged & high).sum(axis=1))
        np.testing.assert_allclose(counts.need_flagged[0, :, j], (member & flagged) @ need, rtol=1e-12, atol=1e-12)


@settings(max_examples=150, deadline=None)
@given(kernel_inputs())
def test_audit_kernel_invariants_hold_in_the_data_and_every_bootstrap_replicate(inputs):
    scores, need, codes, n_groups, fractions = inputs
    ks, counts = _kernel(scores, need, codes, n_groups, fractions, n_boot=5)
    for counted in (counts.flagged, counts.high_need, counts.both, counts.need_flagged):
        assert np.all(np.diff(counted, axis=2) >= -1e-9)  # more places never flag fewer
    assert np.all(counts.both <= np.minimum(counts.flagged, counts.high_need))
    assert np.all(counts.flagged <= counts.size)
    # exactly k flagged, and k with high need, at each capacity: the groups add up to everyone
    np.testing.assert_array_equal(counts.flagged[0].sum(axis=0), ks)
    np.testing.assert_array_equal(counts.high_need[0].sum(axis=0), ks)
    assert counts.size[0].sum() == scores.size
    _, everyone = _kernel(scores, need, np.zeros_like(codes), 1, fractions)
    for name in ("flagged", "high_need", "both", "size"):
        np.testing.assert_array_equal(getattr(counts, name)[:1].sum(axis=1), getattr(everyone, name)[:, 0])
    for metric, (num, den) in counts.parts().items():
        values = safe_div(num, den)
        defined = values[np.isfinite(values)]
        assert np.all((defined >= 0) & (defined <= 1 + 1e-12)), metric


@settings(max_examples=150, deadline=None)
@given(kernel_inputs(), st.data())
def test_audit_kernel_unmet_need_falls_as_capacity_grows_for_a_fixed_high_need(inputs, data):
    scores, need, codes, n_groups, fractions = inputs
    high = np.asarray(data.draw(st.lists(st.booleans(), min_size=scores.size, max_size=scores.size)))
    t = fractions.size
    _, counts = _kernel(scores, need, codes, n_groups, fractions, need_buckets=np.where(high, 0, t), n_boot=3)
    np.testing.assert_array_equal(counts.high_need[0, :, 0], [(high & (codes == g)).sum() for g in range(n_groups)])
    unmet = safe_div(*counts.parts()["unmet_need_rate"])
    for rate in unmet.reshape(-1, t):  # each replicate and group, along the capacities
        defined = rate[np.isfinite(rate)]
        assert np.all((defined >= 0) & (defined <= 1))
        assert defined.size in (0, t) and np.all(np.diff(defined) <= 1e-12)


def test_unmet_need_can_rise_when_high_need_moves_with_capacity():
    # not an invariant of the audit's definition (high need = the k highest need): the k newly flagged
    # and the k newly in need need not overlap. Scores rank a, b, c, d; need ranks b, a, d, c.
    scores = np.array([4.0, 3.0, 2.0, 1.0])
    need = np.array([3.0, 4.0, 1.0, 2.0])
    _, counts = _kernel(scores, need, np.zeros(4, dtype=np.intp), 1, np.array([0.25, 0.5, 0.75]))
    unmet = safe_div(*counts.parts()["unmet_need_rate"])[0, 0]
    np.testing.assert_allclose(unmet, [1.0, 0.0, 1 / 3])


def _tiny_audit(scores, need, codes, fractions):
    cohort = pd.DataFrame({"patient_id": np.arange(scores.size), "g": codes, "cost_next": need, "need_true_next": need})
    spec = AuditSpec(
        attributes=["g"],
        intersections=[],
        operating_points=["top_k:1"],
        need_targets=["need_true_next"],
        analyses=["thresholds"],
        sweep_fractions=tuple(fractions),
        n_boot=0,
        min_group_size=1,
    )
    return audit(cohort, {"m": scores}, spec).table()


@settings(max_examples=40, deadline=None)
@given(kernel_inputs())
def test_audit_threshold_rows_equal_a_brute_force_sweep(inputs):
    scores, need, codes, _, fractions = inputs
    assume(np.unique(codes).size >= 2)  # the audit refuses a group column with one value
    table = _tiny_audit(scores, need, codes, fractions)
    ours = table.set_index(["group", "operating_point", "metric"]).sort_index()
    naive = naive_sweep(scores, codes, need, fractions).query("group != 'all'")
    naive = naive.assign(operating_point=naive["fraction"].map(fraction_name))
    naive = naive.set_index(["group", "operating_point", "metric"]).sort_index()
    assert ours.index.equals(naive.index)
    np.testing.assert_allclose(ours["value"].to_numpy(float), naive["value"].to_numpy(float), rtol=0, atol=1e-12)
    # n is the denominator, except for need_captured (the group's size)
    n = np.where(naive.index.get_level_values("metric") == "need_captured", naive["n"], naive["denominator"])
    np.testing.assert_array_equal(ours["n"].to_numpy(float), n)


def test_threshold_sweep_equals_the_audits_threshold_rows():
    # one kernel: the public table and the audit's rows are the same numbers, to the last bit
    scores, groups, need = _awkward_population(seed=5)
    fractions = FRACTIONS[FRACTIONS <= 0.5]
    key = ["group", "operating_point", "metric"]
    rows = _tiny_audit(scores, need, groups, fractions).set_index(key).sort_index()
    table = threshold_sweep(scores, groups, need=need, fractions=fractions).query("group != 'all'")
    table = table.assign(operating_point=table["fraction"].map(fraction_name)).set_index(key).sort_index()
    assert rows.index.equals(table.index)
    np.testing.assert_array_equal(rows["value"].to_numpy(float), table["value"].to_numpy(float))


def test_the_audit_sweeps_fractions_given_in_any_order():
    # buckets need ascending capacities: the audit sorts a spec's shares (it once mixed them up)
    scores, groups, need = _awkward_population(seed=6)
    key = ["group", "operating_point", "metric"]
    ascending = _tiny_audit(scores, need, groups, [0.01, 0.1, 0.25]).set_index(key).sort_index()
    shuffled = _tiny_audit(scores, need, groups, [0.25, 0.01, 0.1, 0.01]).set_index(key).sort_index()
    pd.testing.assert_frame_equal(ascending, shuffled)
