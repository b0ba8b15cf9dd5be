"""The operating-point grammar, its canonical names, and the one tie rule of ``flag``."""

from __future__ import annotations

import dataclasses
import doctest
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phm_audit.audit import _operating_points
from phm_audit.audit._operating_points import (
    OperatingPoint,
    capacity_for_share,
    flag,
    parse_operating_point,
    resolve_k,
)
from phm_audit.exceptions import PhmInputError, PhmTypeError


def _stable_top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """The tie rule as documented: the first k of the stable descending order."""
    mask = np.zeros(scores.size, dtype=bool)
    mask[np.argsort(-scores, kind="stable")[:k]] = True
    return mask


# --- grammar and names -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,kind,value,name",
    [
        ("top_pct:3", "top_pct", 3.0, "top_3pct"),
        ("top_pct:1", "top_pct", 1.0, "top_1pct"),
        ("top_pct:3.0", "top_pct", 3.0, "top_3pct"),
        ("top_pct:0.5", "top_pct", 0.5, "top_0.5pct"),
        ("top_pct:.5", "top_pct", 0.5, "top_0.5pct"),
        ("top_pct:100", "top_pct", 100.0, "top_100pct"),
        ("top_k:2000", "top_k", 2000.0, "top_k_2000"),
        ("top_k:2e3", "top_k", 2000.0, "top_k_2000"),
        ("score_ge:0.3", "score_ge", 0.3, "score_ge_0.3"),
        ("score_ge:-1.25", "score_ge", -1.25, "score_ge_-1.25"),
        ("score_ge:0", "score_ge", 0.0, "score_ge_0"),
        ("score_ge:1e-05", "score_ge", 1e-05, "score_ge_1e-05"),
        ("per_100k:45", "per_100k", 45.0, "per_100k_45"),
        ("per_100k:4.5", "per_100k", 4.5, "per_100k_4.5"),
        ("  TOP_PCT : 3 ", "top_pct", 3.0, "top_3pct"),
        # canonical names are accepted as input
        ("top_3pct", "top_pct", 3.0, "top_3pct"),
        ("top_0.5pct", "top_pct", 0.5, "top_0.5pct"),
        ("top_k_2000", "top_k", 2000.0, "top_k_2000"),
        ("score_ge_0.3", "score_ge", 0.3, "score_ge_0.3"),
        ("score_ge_-0.3", "score_ge", -0.3, "score_ge_-0.3"),
        ("per_100k_45", "per_100k", 45.0, "per_100k_45"),
    ],
)
def test_parse_grammar_and_canonical_names(text, kind, value, name):
    op = parse_operating_point(text)
    assert op == OperatingPoint(kind, value)
    assert isinstance(op.value, float)
    assert op.name == name
    assert str(op) == name
    assert parse_operating_point(op.name) == op
    assert parse_operating_point(op) is op
    assert op.to_dict() == {"kind": kind, "value": value, "name": name}


def test_capacity_kinds():
    assert parse_operating_point("top_pct:3").is_capacity
    assert parse_operating_point("top_k:3").is_capacity
    assert parse_operating_point("per_100k:3").is_capacity
    assert not parse_operating_point("score_ge:3").is_capacity


def test_operating_point_is_frozen_and_hashable():
    op = OperatingPoint("top_k", 10)
    with pytest.raises(dataclasses.FrozenInstanceError):
        op.value = 5  # type: ignore[misc]
    assert {op, OperatingPoint("top_k", 10.0)} == {op}


@pytest.mark.parametrize(
    "text",
    ["top 3 percent", "top_pct:three", "top_pct:", "top_pct", "", "3", "top_pct:3:4", "top_pct:nan", "top_pct=3"],
)
def test_malformed_strings_name_the_string_and_the_accepted_forms(text):
    with pytest.raises(PhmInputError) as info:
        parse_operating_point(text)
    message = str(info.value)
    assert f"'{text}'" in message
    for form in ("top_pct:3", "top_k:2000", "score_ge:0.3", "per_100k:45", "top_3pct"):
        assert form in message


def test_unknown_kind_suggests_the_closest():
    with pytest.raises(PhmInputError, match=r"unknown kind 'top_pc'.*did you mean 'top_pct'"):
        parse_operating_point("top_pc:3")
    with pytest.raises(PhmInputError, match=r"did you mean 'score_ge'"):
        parse_operating_point("score_gt:0.3")


@pytest.mark.parametrize(
    "text,match",
    [
        ("top_pct:0", r"top_pct:0'.*\(0, 100\]"),
        ("top_pct:-3", r"\(0, 100\]"),
        ("top_pct:100.5", r"\(0, 100\]"),
        ("top_0pct", r"\(0, 100\]"),
        ("top_k:0", r"top_k:0'.*whole number >= 1"),
        ("top_k:-5", r"whole number >= 1"),
        ("top_k:2.5", r"top_k:2.5'.*whole number"),
        ("per_100k:0", r"per_100k:0'.*must be > 0"),
        ("per_100k:-1", r"must be > 0"),
        ("score_ge:1e400", r"finite"),
    ],
)
def test_values_out_of_range(text, match):
    with pytest.raises(PhmInputError, match=match):
        parse_operating_point(text)


def test_constructor_validates_too():
    with pytest.raises(PhmInputError, match=r"unknown operating point kind 'top_x'"):
        OperatingPoint("top_x", 3)  # type: ignore[arg-type]
    with pytest.raises(PhmInputError, match="must be a finite number"):
        OperatingPoint("score_ge", math.inf)
    with pytest.raises(PhmTypeError, match="must be a number"):
        OperatingPoint("top_pct", "3")  # type: ignore[arg-type]
    with pytest.raises(PhmTypeError, match="must be a number"):
        OperatingPoint("top_k", True)
    with pytest.raises(PhmTypeError, match="must be a string such as 'top_pct:3'"):
        parse_operating_point(3)  # type: ignore[arg-type]
    assert OperatingPoint("top_k", np.int64(7)).value == 7.0


@settings(max_examples=200, deadline=None)
@given(
    kind=st.sampled_from(["top_pct", "top_k", "score_ge", "per_100k"]),
    value=st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False),
)
def test_canonical_name_round_trips(kind, value):
    if kind == "top_pct":
        value = min(max(abs(value) % 100, 1e-9), 100.0)
    elif kind == "top_k":
        value = float(max(1, round(abs(value))))
    elif kind == "per_100k":
        value = max(abs(value), 1e-9)
    op = OperatingPoint(kind, value)
    assert parse_operating_point(op.name) == op
    assert parse_operating_point(f"{kind}:{op.name.split('_')[-1].removesuffix('pct')}") == op
    assert ".0pct" not in op.name and not op.name.endswith(".0")


# --- capacities --------------------------------------------------------------------------------


def test_capacity_for_share_forgives_floating_point():
    assert 0.07 * 100 > 7  # 7.000000000000001: a naive ceil would give 8
    assert capacity_for_share(0.07, 100) == 7
    assert capacity_for_share(0.03, 1001) == 31  # 30.03 people -> 31
    assert capacity_for_share(0.5, 5) == 3
    assert capacity_for_share(1.0, 9) == 9
    shares = np.linspace(0.005, 0.5, 100)
    for n in (100, 1000, 12345, 1_000_000):
        for f in shares:
            exact = f * n
            assert capacity_for_share(f, n) in (math.floor(exact + 1e-6), math.ceil(exact - 1e-6))


@pytest.mark.parametrize(
    "op,n,k",
    [
        ("top_pct:3", 1000, 30),
        ("top_pct:3", 1001, 31),  # ceil(30.03)
        ("top_pct:7", 100, 7),
        ("top_pct:0.5", 1000, 5),
        ("top_pct:0.01", 1000, 1),  # ceil(0.1)
        ("top_k:20", 1000, 20),
        ("per_100k:45", 200_000, 90),
        ("per_100k:50", 1000, 1),  # 0.5 -> 1: halves rounded up
        ("per_100k:150", 1000, 2),  # 1.5 -> 2
        ("per_100k:149", 1000, 1),  # 1.49 -> 1
        ("per_100k:250", 1000, 3),  # 2.5 -> 3 (not banker's 2)
    ],
)
def test_resolve_k_for_capacities(op, n, k):
    scores = np.arange(float(n))
    assert resolve_k(op, scores) == k
    assert flag(scores, op).sum() == k


def test_resolve_k_for_cutoffs_counts_ties_in():
    scores = np.array([0.1, 0.3, 0.3, 0.5, 0.2])
    assert resolve_k("score_ge:0.3", scores) == 3
    np.testing.assert_array_equal(flag(scores, "score_ge:0.3"), [False, True, True, True, False])


# --- the tie rule ------------------------------------------------------------------------------


def test_ties_at_the_boundary_go_to_earlier_rows():
    scores = np.array([0.1, 0.5, 0.9, 0.5, 0.5, 0.2, 0.5])
    np.testing.assert_array_equal(flag(scores, "top_k:3"), [False, True, True, True, False, False, False])
    np.testing.assert_array_equal(flag(scores, "top_k:4"), [False, True, True, True, True, False, False])
    # exactly the capacity even when every score is equal
    constant = np.full(10, 2.0)
    np.testing.assert_array_equal(flag(constant, "top_k:3"), np.arange(10) < 3)
    # -0.0 and 0.0 are the same score
    signed = np.array([0.0, -0.0, 0.0, 1.0])
    np.testing.assert_array_equal(flag(signed, "top_k:2"), [True, False, False, True])


@settings(max_examples=300, deadline=None)
@given(
    values=st.lists(st.integers(min_value=-3, max_value=3), min_size=2, max_size=80),
    data=st.data(),
)
def test_flag_equals_the_stable_argsort_definition(values, data):
    scores = np.asarray(values, dtype=np.float64) / 2
    n = scores.size
    k = data.draw(st.integers(min_value=1, max_value=n - 1))
    np.testing.assert_array_equal(flag(scores, f"top_k:{k}"), _stable_top_k(scores, k))
    pct = 100 * k / n
    np.testing.assert_array_equal(flag(scores, OperatingPoint("top_pct", pct)), _stable_top_k(scores, k))
    cut = data.draw(st.sampled_from(sorted(set(scores.tolist()))))
    if scores.min() < cut:
        np.testing.assert_array_equal(flag(scores, OperatingPoint("score_ge", cut)), scores >= cut)


def test_flag_on_a_large_array_matches_argsort():
    rng = np.random.default_rng(3)
    scores = np.round(rng.gamma(0.5, 2.0, 50_000), 1)  # many ties, a third of them at 0
    for op in ("top_pct:3", "top_pct:33.3", "top_k:777", "per_100k:4500"):
        k = resolve_k(op, scores)
        np.testing.assert_array_equal(flag(scores, op), _stable_top_k(scores, k))


# --- degenerate operating points ---------------------------------------------------------------


@pytest.mark.parametrize(
    "op,match",
    [
        ("score_ge:10", r"'score_ge_10' flags nobody \(k = 0 of N = 5\).*highest score is 4"),
        ("score_ge:0", r"'score_ge_0' flags everybody \(k = N = 5\).*lowest score is 0"),
        ("score_ge:-1", r"flags everybody"),
        ("top_k:5", r"'top_k_5' flags everybody \(k = N = 5\)"),
        ("top_k:6", r"'top_k_6' asks for a capacity of k = 6 people but the population has only N = 5"),
        ("top_pct:100", r"'top_100pct' flags everybody \(k = N = 5\)"),
        ("per_100k:9", r"'per_100k_9' flags nobody: its capacity rounds to k = 0 .* N = 5"),
        ("per_100k:200000", r"capacity of k = 10 .* N = 5"),
    ],
)
def test_operating_points_that_flag_nobody_or_everybody(op, match):
    scores = np.arange(5.0)
    with pytest.raises(PhmInputError, match=match):
        flag(scores, op)
    with pytest.raises(PhmInputError, match=match):
        resolve_k(op, scores)


def test_bad_scores():
    with pytest.raises(PhmInputError, match=r"scores has 2 missing or infinite values \(the first at row 2: nan\)"):
        flag(np.array([1.0, np.nan, 2.0, np.inf]), "top_k:1")
    with pytest.raises(PhmInputError, match="one-dimensional"):
        flag(np.ones((3, 2)), "top_k:1")
    with pytest.raises(PhmInputError, match="empty"):
        flag(np.array([]), "top_k:1")
    with pytest.raises(PhmInputError, match="numeric"):
        flag(np.array(["a", "b"]), "top_k:1")


def test_docstring_examples_run():
    result = doctest.testmod(_operating_points, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0


# --------------------------------------------------------------------------------------------------
# capacity shared out per place (``@practice_id``)


@pytest.mark.parametrize(
    ("text", "name", "by"),
    [
        ("top_pct:3@practice_id", "top_3pct@practice_id", "practice_id"),
        ("per_100k:45 @ Practice", "per_100k_45@Practice", "Practice"),
        ("top_k_20@practice_id", "top_k_20@practice_id", "practice_id"),
    ],
)
def test_per_place_grammar_keeps_the_column_name(text, name, by):
    op = parse_operating_point(text)
    assert (op.name, op.by) == (name, by)
    assert parse_operating_point(op.name) == op
    assert op.to_dict()["by"] == by
    assert "by" not in parse_operating_point("top_pct:3").to_dict()


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 6), min_size=20, max_size=300),
    st.sampled_from(["top_pct:10", "top_pct:33", "per_100k:20000", "top_k:1"]),
    st.data(),
)
def test_per_place_flags_equal_flagging_each_place_on_its_own(values, rule, data):
    scores = np.array(values, dtype=np.float64)  # many ties
    places = np.array(data.draw(st.lists(st.sampled_from([3, 7, 11]), min_size=scores.size, max_size=scores.size)))
    expected = np.zeros(scores.size, dtype=bool)
    op = parse_operating_point(rule)
    for place in np.unique(places):
        members = np.flatnonzero(places == place)
        k = _operating_points._capacity(op, members.size)
        expected[members[_stable_top_k(scores[members], k)]] = True
    if (
        expected.all()
        or not expected.any()
        or any(
            _operating_points._capacity(op, int((places == p).sum())) > int((places == p).sum())
            for p in np.unique(places)
        )
    ):
        with pytest.raises(PhmInputError):
            flag(scores, f"{rule}@practice", places=places)
        return
    got = flag(scores, f"{rule}@practice", places=places)
    np.testing.assert_array_equal(got, expected)
    # text places give the same flags as their integer codes
    np.testing.assert_array_equal(flag(scores, f"{rule}@practice", places=places.astype(str)), expected)


def test_per_place_capacity_gives_each_practice_its_share():
    rng = np.random.default_rng(5)
    places = np.repeat([1, 2, 3], [1000, 3000, 6000])
    scores = rng.random(places.size) + (places == 3)  # practice 3's people all score higher
    everywhere = flag(scores, "top_pct:3")
    per_place = flag(scores, "top_pct:3@practice_id", places=places)
    assert np.bincount(places[everywhere], minlength=4)[1:].tolist() == [0, 0, 300]
    assert np.bincount(places[per_place], minlength=4)[1:].tolist() == [30, 90, 180]
    per_100k = flag(scores, "per_100k:450@practice_id", places=places)
    assert np.bincount(places[per_100k], minlength=4)[1:].tolist() == [5, 14, 27]  # 4.5 rounds up, 13.5 too


@pytest.mark.parametrize(
    ("text", "kwargs", "match"),
    [
        ("score_ge:0.5@practice_id", {}, "a cut-off is the same in every place"),
        ("top_pct:3@", {}, "name the column of places after '@'"),
        ("top_k:2@practice_id", {}, "pass that column"),
        ("top_k:600@practice_id", {"places": np.repeat([1, 2], [500, 500])}, "asks for 600 places in practice_id 1"),
        ("per_100k:1@practice_id", {"places": np.repeat([1, 2], [500, 500])}, "flags nobody"),
        ("top_k:2@practice_id", {"places": np.array([1.0, np.nan] * 500, dtype=object)}, "missing values"),
        ("top_k:2@practice_id", {"places": np.ones(7)}, "has 7 values for 1,000 scores"),
    ],
)
def test_per_place_bad_input(text, kwargs, match):
    with pytest.raises(PhmInputError, match=match):
        flag(np.linspace(0, 1, 1000), text, **kwargs)


def test_audit_flags_per_practice_and_names_a_misspelt_column(cohort_factory):
    from phm_audit.audit import AuditSpec, audit

    cohort = cohort_factory("england", 20_000, 3)
    scores = cohort["cost_prior"].to_numpy(np.float64)
    spec = AuditSpec(
        attributes=["imd_quintile"],
        intersections=[],
        operating_points=["top_pct:3@practice_id"],
        analyses=["fairness"],
        n_boot=0,
    )
    result = audit(cohort, {"prior_cost": scores}, spec)
    flagged = flag(scores, "top_pct:3@practice_id", places=cohort["practice_id"].to_numpy())
    q = cohort["imd_quintile"].to_numpy()
    got = result.get(metric="selection_rate", attribute="imd_quintile", operating_point="top_3pct@practice_id")
    by_group = got.set_index("group")["value"]
    for g in range(1, 6):
        assert by_group[str(g)] == pytest.approx(flagged[q == g].mean(), abs=1e-12)
    # practices are nested in quintiles here, so each quintile gets its practices' 3%, not the population's
    assert np.allclose(by_group.to_numpy(), 0.03, atol=0.003)
    with pytest.raises(PhmInputError, match="did you mean 'practice_id'"):
        audit(cohort, {"prior_cost": scores}, dataclasses.replace(spec, operating_points=("top_pct:3@practise_id",)))
