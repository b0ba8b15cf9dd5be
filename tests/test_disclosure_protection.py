"""The protection check of disclosure control (``phm_audit.report._protection``): the attacker's bounds are
sound (they always hold the true counts) and tight enough to find the leak they were written for."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from phm_audit.report._protection import equations, exposed, propagate, published_bounds

BANDS = ("selection_rate_need_p0_80", "selection_rate_need_p80_90", "selection_rate_need_p90_95")


def _cells() -> list[tuple[str, str, str]]:
    cells = []
    for attribute, groups in (("imd_quintile", ("1", "5")), ("ethnicity x imd_quintile", ("White | 5", "Other | 5"))):
        for g in groups:
            cells += [(attribute, g, m) for m in ("selection_rate", *BANDS)]
    return cells


STRUCTURE = {
    "ethnicity x imd_quintile": (
        ("ethnicity", "imd_quintile"),
        {"White | 5": ("White", "5"), "Other | 5": ("Other", "5")},
    )
}


def test_equations_bind_bands_to_their_group_and_intersections_to_their_parent():
    cells = _cells()
    eqs = equations(cells, STRUCTURE, bands=True)
    rows = {tuple(sorted(cells[c] for c in eqs.members(e))) for e in range(len(eqs))}
    # the bands of IMD 5 add up to its selection rate's count
    assert tuple(sorted([("imd_quintile", "5", "selection_rate")] + [("imd_quintile", "5", b) for b in BANDS])) in rows
    # White | 5 and Other | 5 add up to IMD 5, band by band
    band = BANDS[1]
    assert (
        tuple(
            sorted(
                [("ethnicity x imd_quintile", g, band) for g in ("Other | 5", "White | 5")]
                + [("imd_quintile", "5", band)]
            )
        )
        in rows
    )


def test_the_leak_a_complement_bounded_by_another_total_is_found():
    # IMD 5 flags 1 person in band p80_90 (hidden) and 8 in p90_95 (hidden to protect it); White | 5 publishes
    # its p90_95 (10: 8 to 12), so IMD 5's p90_95 is at least 8, and with IMD 5's total the hidden 1 is 0 to 3
    cells = _cells()
    eqs = equations(cells, STRUCTURE, bands=True)
    true = {
        ("imd_quintile", "1", "selection_rate"): 100,
        ("imd_quintile", "1", BANDS[0]): 40,
        ("imd_quintile", "1", BANDS[1]): 30,
        ("imd_quintile", "1", BANDS[2]): 30,
        ("imd_quintile", "5", "selection_rate"): 9,
        ("imd_quintile", "5", BANDS[0]): 0,
        ("imd_quintile", "5", BANDS[1]): 1,
        ("imd_quintile", "5", BANDS[2]): 8,
        ("ethnicity x imd_quintile", "White | 5", "selection_rate"): 9,
        ("ethnicity x imd_quintile", "White | 5", BANDS[0]): 0,
        ("ethnicity x imd_quintile", "White | 5", BANDS[1]): 1,
        ("ethnicity x imd_quintile", "White | 5", BANDS[2]): 8,
        ("ethnicity x imd_quintile", "Other | 5", "selection_rate"): 0,
        ("ethnicity x imd_quintile", "Other | 5", BANDS[0]): 0,
        ("ethnicity x imd_quintile", "Other | 5", BANDS[1]): 0,
        ("ethnicity x imd_quintile", "Other | 5", BANDS[2]): 0,
    }
    grid = np.array([[true[c] for c in cells]], dtype=float)
    hidden = np.zeros_like(grid, dtype=bool)
    for c in (("imd_quintile", "5", BANDS[1]), ("imd_quintile", "5", BANDS[2])):
        hidden[0, cells.index(c)] = True
    found = exposed(grid, hidden, eqs, threshold=7, rounding=5, signed=False)
    assert found[0, cells.index(("imd_quintile", "5", BANDS[1]))]
    # hiding White | 5's bands too leaves the attacker nothing to narrow them with
    for c in cells:
        if c[1] in ("White | 5", "5") and c[2] != "selection_rate":
            hidden[0, cells.index(c)] = True
    hidden[0, cells.index(("imd_quintile", "5", "selection_rate"))] = True
    hidden[0, cells.index(("ethnicity x imd_quintile", "White | 5", "selection_rate"))] = True
    assert not exposed(grid, hidden, eqs, threshold=7, rounding=5, signed=False)[
        0, cells.index(("imd_quintile", "5", BANDS[1]))
    ]


@settings(max_examples=200, deadline=None)
@given(
    parts=st.lists(st.integers(0, 40), min_size=2, max_size=6),
    hide=st.lists(st.booleans(), min_size=7, max_size=7),
    rounding=st.sampled_from([1, 5, 10]),
)
def test_propagated_bounds_always_hold_the_true_counts(parts, hide, rounding):
    # a soundness invariant: whatever is hidden, the attacker's interval holds the true count
    cells = [("a", str(i), "m") for i in range(len(parts))] + [("a", "all", "m")]
    true = np.array([[*parts, sum(parts)]], dtype=float)
    hidden = np.array([hide[: len(cells)]])
    shown = np.where(hidden, np.nan, _rounded(true, 7, rounding))
    low, high = published_bounds(shown, hidden, threshold=7, rounding=rounding, signed=False)
    assert np.all((low <= true) & (true <= high))
    propagate(low, high, equations(cells, {}, bands=False))
    assert np.all((low - 1e-9 <= true) & (true <= high + 1e-9))


def _rounded(x: np.ndarray, threshold: int, rounding: int) -> np.ndarray:
    from phm_audit.report._protection import round_counts as rounded

    # counts of 1 to threshold are never published: shown as hidden by the caller's mask or rounded here
    out = rounded(x, threshold, rounding)
    return np.where((x >= 1) & (x <= threshold), np.nan, out)
