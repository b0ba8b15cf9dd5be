"""Disclosure control: no published count of 1 to 7, every count a multiple of 5, rates from rounded counts,
and no suppressed count recoverable by subtraction from a published total."""

from __future__ import annotations

import math
from itertools import product

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phm_audit.audit import AuditSpec, audit
from phm_audit.audit._result import CURVE_COLUMNS, RowBuilder
from phm_audit.exceptions import PhmInputError, PhmTypeError
from phm_audit.report import DisclosureControl, apply_disclosure, disclose_result
from phm_audit.report._disclosure import SECONDARY_REASON, complementary_suppression, scrub_text

CONTROL = DisclosureControl()
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _round5(x: float) -> float:
    return math.floor(x / 5 + 0.5) * 5


def _empty_curves() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in CURVE_COLUMNS})


@st.composite
def two_way_tables(draw):
    """An intersection a x b with its two marginal attributes: group sizes, flagged counts, tidy rows."""
    k_a, k_b = draw(st.integers(2, 3)), draw(st.integers(2, 4))
    sizes = np.array(draw(st.lists(st.integers(0, 45), min_size=k_a * k_b, max_size=k_a * k_b)), dtype=float)
    flagged = np.array([draw(st.integers(0, int(s))) for s in sizes], dtype=float)
    a_labels, b_labels = [f"a{i}" for i in range(k_a)], [f"b{j}" for j in range(k_b)]
    cells = [f"{a} | {b}" for a, b in product(a_labels, b_labels)]
    grid_n, grid_f = sizes.reshape(k_a, k_b), flagged.reshape(k_a, k_b)
    rows = RowBuilder()
    for attribute, labels, n, f in (
        ("a x b", cells, sizes, flagged),
        ("a", a_labels, grid_n.sum(axis=1), grid_f.sum(axis=1)),
        ("b", b_labels, grid_n.sum(axis=0), grid_f.sum(axis=0)),
    ):
        base = {"model": "m", "analysis": "fairness", "attribute": attribute, "operating_point": "top_3pct"}
        with np.errstate(invalid="ignore", divide="ignore"):
            rate = np.where(n > 0, f / n, np.nan)
            share = f / f.sum() if f.sum() else np.full(f.size, np.nan)
        rows.add(groups=labels, metric="n", value=n, n=n, **base)
        rows.add(groups=labels, metric="selection_rate", value=rate, n=n, **base)
        rows.add(groups=labels, metric="flagged_share", value=share, n=f.sum(), **base)
    return rows.frame()


def _hidden(before: pd.DataFrame, after: pd.DataFrame, column: str) -> np.ndarray:
    was = before[column].to_numpy(dtype=np.float64, na_value=np.nan)
    now = after[column].to_numpy(dtype=np.float64, na_value=np.nan)
    return np.isfinite(was) & ~np.isfinite(now)


def _partitions(labels: list[str]) -> list[list[str]]:
    """All groups, and for an intersection the cells sharing each component."""
    parts = [labels]
    split = [lab.split(" | ") for lab in labels]
    if all(len(p) == 2 for p in split):
        for i in (0, 1):
            for value in dict.fromkeys(p[i] for p in split):
                parts.append([lab for lab, p in zip(labels, split, strict=True) if p[i] == value])
    return parts


@pytest.mark.slow
@SETTINGS
@given(two_way_tables())
def test_no_published_count_is_small_and_every_count_is_a_multiple_of_five(table):
    out, _ = apply_disclosure(table, _empty_curves(), CONTROL)
    counts = np.concatenate(
        [
            out["n"].to_numpy(dtype=np.float64, na_value=np.nan),
            out.loc[out["metric"] == "n", "value"].to_numpy(dtype=np.float64),
        ]
    )
    counts = counts[np.isfinite(counts)]
    assert not ((counts >= 1) & (counts <= 7)).any()
    assert (counts % 5 == 0).all()
    # numerators of rates are rounded too, and never small
    rates = out[(out["metric"] == "selection_rate") & out["value"].notna()]
    numerators = (rates["value"] * rates["n"].astype(float)).to_numpy(dtype=np.float64)
    assert np.allclose(numerators, np.round(numerators / 5) * 5)
    assert not ((numerators > 0.5) & (numerators < 7.5)).any()
    assert (out.loc[out["value"].isna(), "reason"] != "").all()  # every missing value says why


@pytest.mark.slow
@SETTINGS
@given(two_way_tables())
def test_rates_are_recomputed_from_rounded_counts(table):
    out, _ = apply_disclosure(table, _empty_curves(), CONTROL)
    before = table[table["metric"] == "selection_rate"].reset_index(drop=True)
    after = out[out["metric"] == "selection_rate"].reset_index(drop=True)
    for b, a in zip(before.itertuples(), after.itertuples(), strict=True):
        if not np.isfinite(a.value):
            continue
        numerator = round(b.value * float(b.n))
        assert a.value == pytest.approx(_round5(numerator) / _round5(float(b.n)))


@pytest.mark.slow
@SETTINGS
@given(two_way_tables())
def test_no_suppressed_count_is_recoverable_by_subtraction(table):
    out, _ = apply_disclosure(table, _empty_curves(), CONTROL)
    n_hidden = _hidden(table, out, "n")
    value_hidden = _hidden(table, out, "value")
    n_unknown = out["n"].isna().to_numpy()
    value_unknown = out["value"].isna().to_numpy()
    for (attribute, metric), idx in table.groupby(["attribute", "metric"]).groups.items():
        labels = list(table.loc[idx, "group"])
        by_label = dict(zip(labels, idx, strict=True))
        for part in _partitions(labels):
            rows = [by_label[g] for g in part]
            for hidden, unknown in ((n_hidden, n_unknown), (value_hidden, value_unknown)):
                # one suppressed cell, and every other cell of the partition known: total minus the rest reveals it
                assert not (hidden[rows].sum() == 1 and unknown[rows].sum() == 1), (attribute, metric, part)
    # a suppressed count of the intersection is not the difference between its marginal and the rest
    n_rows = out[out["metric"] == "n"].set_index(["attribute", "group"])["n"]
    for a_label in {g.split(" | ")[0] for g in table.loc[table["attribute"] == "a x b", "group"]}:
        members = [g for g in n_rows.loc["a x b"].index if g.startswith(f"{a_label} | ")]
        assert int(n_rows.loc["a x b"].loc[members].isna().sum()) != 1


@SETTINGS
@given(
    st.integers(2, 5).flatmap(
        lambda g: st.tuples(st.just(g), st.lists(st.integers(0, 30), min_size=g * 6, max_size=g * 6))
    )
)
def test_curves_are_protected_along_groups_and_bins(spec):
    n_groups, counts = spec
    n_bins = 6
    labels = [f"g{i}" for i in range(n_groups)]
    curves = pd.DataFrame(
        {
            "model": "m",
            "attribute": "x",
            "group": np.repeat(labels, n_bins),
            "target": "need",
            "bins": "decile",
            "bin": np.tile(np.arange(n_bins), n_groups),
            "score_low": 0.0,
            "score_high": 1.0,
            "mean": 2.5,
            "ci_low": 2.0,
            "ci_high": 3.0,
            "n": np.asarray(counts, dtype=float),
        }
    )[list(CURVE_COLUMNS)]
    _, out = apply_disclosure(RowBuilder().frame(), curves, CONTROL, references={"x": "g0"})
    n = out["n"].to_numpy(dtype=np.float64)
    published = n[np.isfinite(n)]
    assert not ((published >= 1) & (published <= 7)).any() and (published % 5 == 0).all()
    grid = np.isnan(n).reshape(n_groups, n_bins)
    assert (grid.sum(axis=1) != 1).all() and (grid.sum(axis=0) != 1).all()
    small = (np.asarray(counts) >= 1) & (np.asarray(counts) <= 7)
    assert out["mean"].isna().to_numpy()[small].all()  # means of 1 to 7 people are not published
    assert (out["mean"].to_numpy()[~small] == 2.5).all()


def test_secondary_suppression_spares_the_reference_group():
    counts = np.array([[3.0, 10.0, 50.0, 500.0]])
    picked = complementary_suppression(counts, counts < 8, np.ones((1, 4), dtype=bool), avoid=np.array([0, 1, 0, 0]))
    assert picked.tolist() == [[True, False, True, False]]


def test_differences_against_a_suppressed_reference_are_suppressed():
    rows = RowBuilder()
    base = {"model": "m", "analysis": "fairness", "attribute": "x", "operating_point": "top_3pct"}
    rows.add(groups=["r", "g", "h"], metric="tpr", value=[3 / 40, 20 / 50, 30 / 60], n=[40, 50, 60], **base)
    rows.add(
        groups=["r", "g", "h"],
        metric="tpr_difference",
        value=[0.0, 20 / 50 - 3 / 40, 0.5 - 3 / 40],
        n=[40, 50, 60],
        **base,
    )
    out, _ = apply_disclosure(rows.frame(), _empty_curves(), CONTROL, references={"x": "r"})
    assert out["value"].isna().tolist() == [True, True, False, True, True, True]  # h's own rate stays
    reasons = out["reason"].tolist()
    assert reasons[0] == "suppressed (disclosure control): fewer than 8 people"  # r's own count is 3
    assert reasons[1] == SECONDARY_REASON  # g is hidden only so that r cannot be derived from the total
    assert set(out["reason"][out["value"].isna()]) <= {reasons[0], SECONDARY_REASON}


def test_differences_are_recomputed_from_published_rates():
    rows = RowBuilder()
    base = {"model": "m", "analysis": "fairness", "attribute": "x", "operating_point": "top_3pct"}
    rows.add(groups=["r", "g"], metric="tpr", value=[52 / 101, 33 / 77], n=[101, 77], **base)
    rows.add(groups=["r", "g"], metric="tpr_difference", value=[0.0, 33 / 77 - 52 / 101], n=[101, 77], **base)
    out, _ = apply_disclosure(rows.frame(), _empty_curves(), CONTROL, references={"x": "r"})
    tpr = out.loc[out["metric"] == "tpr", "value"].to_numpy()
    assert tpr == pytest.approx([50 / 100, 35 / 75])
    assert out.loc[out["metric"] == "tpr_difference", "value"].to_numpy() == pytest.approx([0, 35 / 75 - 0.5])


def test_switched_off_it_changes_nothing(cohort_factory):
    cohort = cohort_factory("england", 20_000, 8)
    spec = AuditSpec(
        attributes=("ethnicity",),
        intersections=(("ethnicity", "imd_quintile"),),
        operating_points=("top_pct:3",),
        analyses=("fairness", "calibration"),
        n_boot=10,
    )
    result = audit(cohort, {"prior_cost": cohort["cost_prior"].to_numpy(np.float64)}, spec)
    assert disclose_result(result, DisclosureControl(enabled=False)) is result
    table, _ = apply_disclosure(result.table(), result.curves(), DisclosureControl(enabled=False))
    pd.testing.assert_frame_equal(table, result.table())
    # on a real audit with small intersection cells, every published count is controlled
    published = disclose_result(result, CONTROL)
    n = published.table()["n"].to_numpy(dtype=np.float64, na_value=np.nan)
    c = published.curves()["n"].to_numpy(dtype=np.float64)
    for counts in (n[np.isfinite(n)], c[np.isfinite(c)]):
        assert not ((counts >= 1) & (counts <= 7)).any() and (counts % 5 == 0).all()
    sizes = published.groups["ethnicity x imd_quintile"]["sizes"]
    assert sum(s is None for s in sizes) != 1
    assert published.cohort["n"] == 20_000


def test_settings_are_checked_and_text_is_scrubbed():
    with pytest.raises(PhmInputError, match="rounding"):
        DisclosureControl(rounding=0)
    with pytest.raises(PhmTypeError, match="threshold"):
        DisclosureControl(threshold=7.5)  # type: ignore[arg-type]
    assert scrub_text("the group has 3 events and 197 non-events; 95% CI", CONTROL) == (
        "the group has * events and 195 non-events; 95% CI"
    )
    assert scrub_text("top_0.5pct with 1,234 people", CONTROL) == "top_0.5pct with 1,235 people"
    # a coarse rounding never publishes a count above the threshold as 0 or as a small number
    coarse = DisclosureControl(threshold=7, rounding=20)
    rows = RowBuilder()
    rows.add(
        model="m",
        analysis="fairness",
        attribute="x",
        groups=["p", "q", "r"],
        metric="n",
        value=[8.0, 9.0, 400.0],
        n=[8.0, 9.0, 400.0],
    )
    out, _ = apply_disclosure(rows.frame(), _empty_curves(), coarse)
    assert out["n"].tolist() == [20, 20, 400]


def test_a_rate_and_its_complements_are_hidden_together_with_the_right_reason(cohort_factory):
    """tpr, fnr and the unmet-need rate share one count: publishing one reveals the others.

    The threshold sweep and the allocation analyses call 1 - tpr ``unmet_need_rate``; before it was
    paired with tpr, the sweep published a tpr of 15 of 20 whose complement, 5, was suppressed. A row
    hidden only to protect another group, or derived from such a row, says so rather than "fewer than 8".
    """
    cohort = cohort_factory("england", 20_000, 8)
    spec = AuditSpec(
        attributes=("ethnicity",),
        intersections=(),
        operating_points=("top_pct:3",),
        analyses=("fairness", "thresholds"),
        sweep_fractions=(0.03, 0.1),
        n_boot=10,
    )
    result = audit(cohort, {"prior_cost": cohort["cost_prior"].to_numpy(np.float64)}, spec)
    table = disclose_result(result, CONTROL).table()
    rates = table[table["metric"].isin(["tpr", "fnr", "unmet_need_rate"])]
    hidden = rates.assign(hidden=rates["value"].isna()).groupby(
        ["model", "analysis", "attribute", "operating_point", "group"]
    )["hidden"]
    assert (hidden.nunique() == 1).all(), "a rate is published while its complement is hidden"
    assert hidden.any().any(), "the cohort must have a suppressed rate for this test to mean anything"
    # no group is said to have fewer than 8 high-need people flagged when its raw count says otherwise
    raw = result.table()
    raw = raw[(raw["metric"] == "tpr") & (raw["analysis"] == "fairness")].set_index(["operating_point", "group"])
    for row in table[(table["metric"] == "tpr") & (table["analysis"] == "fairness")].itertuples():
        r = raw.loc[(row.operating_point, row.group)]
        flagged_high, unflagged_high = r["value"] * r["n"], (1 - r["value"]) * r["n"]
        if row.reason == "suppressed (disclosure control): fewer than 8 people":
            assert flagged_high < 8 or r["n"] < 8, row  # the findings read this as "fewer than 8 flagged"
        elif row.reason.startswith("suppressed (disclosure control): its complement"):
            assert unflagged_high < 8 <= flagged_high, row
        elif row.reason == SECONDARY_REASON:
            assert min(flagged_high, unflagged_high) >= 8 and r["n"] >= 8, row


def test_a_published_interval_holds_its_published_value(cohort_factory):
    """A rate recomputed from rounded counts can leave its bootstrap interval; the interval is widened to hold it.

    With 5 replicates on 20,000 people, before the widening, quintile 1's flagged share was published as
    0.25 with the interval 0.198 to 0.237 (the interval of the exact counts).
    """
    cohort = cohort_factory("england", 20_000, 17)
    spec = AuditSpec(attributes=["imd_quintile", "ethnicity"], intersections=[], n_boot=5, seed=3)
    result = audit(cohort, {"prior_cost": cohort["cost_prior"].to_numpy()}, spec)
    published = disclose_result(result, CONTROL).table()
    value, low, high = (published[c].to_numpy(dtype=np.float64) for c in ("value", "ci_low", "ci_high"))
    bounded = np.isfinite(value) & np.isfinite(low) & np.isfinite(high)
    assert bounded.sum() > 1000
    outside = bounded & ((value < low - 1e-12) | (value > high + 1e-12))
    assert not outside.any(), published[outside].head()
    # and the widening is needed: some recomputed rates leave the exact counts' intervals
    raw = result.table().set_index(published.index)
    r_low, r_high = raw["ci_low"].to_numpy(dtype=np.float64), raw["ci_high"].to_numpy(dtype=np.float64)
    left = bounded & np.isfinite(r_low) & ((value < r_low - 1e-12) | (value > r_high + 1e-12))
    assert left.any()
