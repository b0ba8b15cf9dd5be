"""``phm-audit teach``: the page holds the audit's own numbers, shows the planted gap, and is deterministic.

The shared page (``teach_built`` in conftest) has two grid points, access gaps of 0% and 30%, of
60,000 generated people each, 30,000 audited, with the same seed (the same people at both gaps).

Why 60,000 is enough for the claims at 30% (false-failure probability below 1/1000 each):

- *The label gap's interval of the most deprived fifth excludes 1.* At 30% the generator's planted gap
  gives a label gap of about 1.20 (1.20, interval 1.155 to 1.262, at 50,000 audited people with the
  default seed). The interval's half-width there is 0.054, a standard error of about 0.027; at 30,000
  audited it scales by sqrt(50/30) to 0.036. The interval excludes 1 when the estimate exceeds
  1 + 1.96 x 0.036 = 1.07, which a true 1.20 misses only by falling 3.6 standard errors short:
  probability about 1.6e-4.
- *Quintile 1's share of the flagged falls below its share of the highest need* (top 3%): 21.0% against
  28.3% at 50,000 audited; each share's interval is about +-2 points there, so the difference's standard
  error at 30,000 is at most about 0.018 (treating the shares as independent, which overstates it as
  they count overlapping people); 7.3 points is 4 standard errors: probability about 3e-5.

At 0% no gap is planted. That the 95% interval includes 1 is then right 95% of the time whatever the
n: the interval's own error rate is 5%, so no n brings a test of it below 1/1000. The test checks it
at the fixed seed (deterministic, so it guards against a change that breaks the null), and checks the
statistical content with a bound that has a false-failure probability below 1/1000: the estimate lies
within 0.85 to 1/0.85 (more than 4 standard errors of 0.036 from 1: probability below 1e-4).
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from phm_audit.audit._sweep_rows import DEFAULT_FRACTIONS, fraction_name
from phm_audit.cli import main
from phm_audit.exceptions import PhmInputError
from phm_audit.teach import build_teach_data, render_page, scenario_overrides, teach
from phm_audit.teach._text import Grid, fixed

pytestmark = pytest.mark.slow
ABS = 5.01e-5  # the page writes shares and ratios with 4 decimals: a rounding error of at most 5e-5 (and float noise)


def _q1(data, attribute="imd_quintile", group="1"):
    return data["groups"][attribute].index(group)


def _as_array(rows):
    return np.array([[np.nan if v is None else v for v in row] for row in rows], dtype=np.float64)


def test_page_holds_the_audits_own_numbers(teach_built):
    """Every embedded value equals the disclosed audit's value (from the same build), within the 4-decimal rounding."""
    data, results = teach_built["data"], teach_built["results"]
    assert data["gaps"] == list(teach_built["gaps"]) and len(data["capacities"]) == 100
    ops = [fraction_name(f) for f in DEFAULT_FRACTIONS]
    checked = 0
    for gi, gap in enumerate(data["gaps"]):
        result, _ = results[gap]
        table = result.table()
        assert data["points"][gi]["n_audited"] == result.cohort["n"]  # rounded by disclosure control
        th = table[table["analysis"] == "thresholds"]
        cal = table[(table["metric"] == "label_gap_at_equal_score") & (table["target"] == "need_true_next")]
        gaps = cal[cal["analysis"] == "calibration"].set_index(["model", "attribute", "group"])
        captured = table[(table["analysis"] == "judgement") & (table["metric"] == "share_of_need_captured")]
        captured = captured.set_index("model")
        wide = th.pivot(
            index=["model", "attribute", "metric", "group"],
            columns="operating_point",
            values=["value", "ci_low", "ci_high", "n"],
        )
        for model in data["models"]:
            for attribute in data["attributes"]:
                sweep = data["points"][gi]["sweep"][model][attribute]
                groups = data["groups"][attribute]
                for key, metric in (("fs", "flagged_share"), ("hn", "high_need_share"), ("un", "unmet_need_rate")):
                    for suffix, col in (("", "value"), ("_lo", "ci_low"), ("_hi", "ci_high"), ("n", "n")):
                        if suffix == "n" and key != "un":
                            continue
                        want = (
                            wide[col]
                            .loc[(model, attribute, metric)]
                            .reindex(index=groups, columns=ops)
                            .astype("Float64")
                            .to_numpy(dtype=np.float64, na_value=np.nan)
                        )
                        got = _as_array(sweep["high_need_n"] if suffix == "n" else sweep[key + suffix])
                        if suffix == "n":
                            # the number of high-need people is published only beside a published rate
                            want = np.where(np.isfinite(_as_array(sweep["un"])), want, np.nan)
                            got = np.where(np.isfinite(_as_array(sweep["un"])), got, np.nan)
                        np.testing.assert_allclose(got, want, rtol=0, atol=ABS, equal_nan=True)
                        checked += int(np.isfinite(want).sum())
                # high-need people left out: the rounded unmet-need count (rate x rounded high-need count)
                un, need_n = _as_array(sweep["un"]), _as_array(sweep["high_need_n"])
                left = _as_array(sweep["left_out"])
                ok = np.isfinite(un)
                assert np.all(np.abs(left[ok] - un[ok] * need_n[ok]) <= 0.5 + need_n[ok] * ABS)
            if model in data["labels"]:
                for attribute in data["attributes"]:
                    for gj, group in enumerate(data["groups"][attribute]):
                        entry = data["points"][gi]["label_gap"][model][attribute][gj]
                        want = gaps.loc[(model, attribute, group)]
                        assert entry["value"] == pytest.approx(float(want["value"]), abs=ABS)
                        assert entry["lo"] == pytest.approx(float(want["ci_low"]), abs=ABS)
                        assert entry["hi"] == pytest.approx(float(want["ci_high"]), abs=ABS)
                        assert entry["n"] == int(want["n"])
                        checked += 1
            judged = data["points"][gi]["judgement"][model]["share_of_need_captured"]
            assert judged["value"] == pytest.approx(float(captured.loc[model, "value"]), abs=ABS)
    assert checked > 20_000


def test_published_counts_obey_disclosure_control(teach_built):
    """No count of 1-7 people, every count a multiple of 5, in what the page embeds."""
    data = teach_built["data"]
    counts = []
    for point in data["points"]:
        counts += [c for sizes in point["group_sizes"].values() for c in sizes]
        for attributes in point["sweep"].values():
            for block in attributes.values():
                counts += [c for row in block["high_need_n"] for c in row]
                counts += [c for row in block["left_out"] for c in row]
                counts += block["flagged_n"]
    published = [c for c in counts if c is not None]
    assert published and all(c == 0 or (c > 7 and c % 5 == 0) for c in published)


def test_null_world_shows_no_label_gap(teach_built):
    """At 0% the label gap's interval (most deprived fifth, cost label) includes 1; the docstring above has the odds."""
    data = teach_built["data"]
    entry = data["points"][0]["label_gap"]["cost_next"]["imd_quintile"][_q1(data)]
    assert data["gaps"][0] == 0.0
    assert 0.85 < entry["value"] < 1 / 0.85  # false-failure probability < 1e-4
    assert entry["lo"] <= 1.0 <= entry["hi"]  # a 95% interval: checked at the fixed seed


def test_planted_gap_is_found_and_the_most_deprived_are_under_flagged(teach_built):
    """At 30%: the interval excludes 1, and quintile 1's share of the flagged falls below its share of need."""
    data = teach_built["data"]
    grid = Grid(data)
    g, c3, q1 = len(data["gaps"]) - 1, grid.cap_index(0.03), _q1(data)
    assert data["gaps"][g] == pytest.approx(0.3)
    entry = data["points"][g]["label_gap"]["cost_next"]["imd_quintile"][q1]
    assert entry["lo"] > 1.0, entry
    sweep = data["points"][g]["sweep"]["cost_next"]["imd_quintile"]
    assert sweep["fs"][q1][c3] < sweep["hn"][q1][c3]
    # and the step on the label gap says so in words
    assert "The interval excludes 1: at the same score, cost under-measures this group's need" in teach_built["html"]


def test_steps_and_exercises_state_the_precomputed_numbers(teach_built):
    """The guided steps and the exercise answers quote values looked up in the embedded data."""
    data, html = teach_built["data"], teach_built["html"]
    grid = Grid(data)
    g, c3, q1 = len(data["gaps"]) - 1, grid.cap_index(0.03), _q1(data)
    for key in ("cost-label", "label-gap", "raise-bar", "judgement", "null-world"):
        assert f'id="step-{key}"' in html
    assert html.count("<details>") >= 4 and "Obermeyer" in html
    # exercise 1: the first gap whose interval excludes 1 (here 30%: the grid has two points)
    first = next(
        gi
        for gi in range(len(data["gaps"]))
        if data["points"][gi]["label_gap"]["cost_next"]["imd_quintile"][q1]["lo"] > 1
    )
    assert f"At an access gap of <strong>{fixed(data['gaps'][first] * 100, 0)}%</strong>" in html
    # exercise 2: the need label brings in (cost left out - conditions left out) people
    left = data["points"][g]["sweep"]
    more = (
        left["cost_next"]["imd_quintile"]["left_out"][q1][c3]
        - left["n_conditions_next"]["imd_quintile"]["left_out"][q1][c3]
    )
    if more > 0:
        assert f"the need label brings in <strong>{more:,}</strong> more" in html
    elif more < 0:
        assert f"the need label brings in <strong>none</strong>: it leaves out {-more:,} more" in html
    else:
        assert "the need label brings in <strong>none</strong> (the same number left out)" in html
    lg = data["points"][g]["label_gap"]["cost_next"]["imd_quintile"][q1]
    assert f"{fixed(lg['value'], 2)} (95% interval {fixed(lg['lo'], 2)} to {fixed(lg['hi'], 2)}" in html


def test_page_is_self_contained_and_accessible(teach_built):
    html = teach_built["html"]
    assert not re.search(r'(src|href|action)\s*=\s*["\']?(https?:)?//', html, re.I)
    assert "@import" not in html and "fetch(" not in html and "XMLHttpRequest" not in html
    assert "default-src 'none'" in html  # the page's own policy forbids loading anything
    for slider in ("gap", "capacity", "label"):
        assert re.search(rf'<label for="{slider}">', html)
        assert re.search(rf'<input type="range" id="{slider}"', html)
    assert html.count('role="img"') == 2 and "<desc" in html and "@media print" in html
    for colour in ("#0072B2", "#E69F00", "#D55E00"):  # Okabe-Ito
        assert colour in html
    assert teach_built["keep"].read_text(encoding="utf-8") == "a teacher's own file\n"
    assert sorted(p.name for p in teach_built["page"].parent.iterdir()) == ["index.html", "notes.txt"]
    assert teach_built["page"].stat().st_size < 5e6


def test_same_seed_same_bytes_whatever_the_workers(tmp_path):
    """Two builds, one process and two worker processes: the same page, byte for byte."""
    one = teach(tmp_path / "one.html", n=2000, seed=3, gaps=(0.0, 0.3), n_boot=3, n_jobs=1)
    two = teach(tmp_path / "two.html", n=2000, seed=3, gaps=(0.0, 0.3), n_boot=3, n_jobs=2)
    assert one.read_bytes() == two.read_bytes()
    assert b"data-ready" in one.read_bytes()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--out", "page.txt"], "must be an .html file"),
        (["--gaps", "0,abc"], "must be percentages"),
        (["--gaps", "30,0"], "access gaps must rise"),
        (["--gaps", "0,95"], "outside 0 to 0.9"),
        (["--n", "10"], "at least 2000"),
        (["--bootstrap", "-1"], "0 or more"),
        (["--jobs", "0"], "n_jobs must be"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = main(["teach", "--quiet", *args] if "--out" in args else ["teach", "--quiet", "--out", "t/i.html", *args])
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_out_below_a_file_is_refused(tmp_path):
    (tmp_path / "file").write_text("x", encoding="utf-8")
    with pytest.raises(PhmInputError, match="is a file, not a folder"):
        teach(tmp_path / "file" / "index.html", n=2000)
    (tmp_path / "site.html").mkdir()
    with pytest.raises(PhmInputError, match="is a folder"):
        teach(tmp_path / "site.html", n=2000)


def test_gap_sets_the_knobs_of_both_groups():
    knobs = scenario_overrides(0.2)
    assert knobs == {
        "planned_access.imd_q1": 0.8,
        "planned_access.asian": 0.8,
        "planned_access.black": 0.8,
        "planned_access.mixed": 0.8,
        "planned_access.other": 0.8,
    }
    with pytest.raises(PhmInputError):
        build_teach_data(gaps=(0.0,))


def test_render_is_a_pure_function_of_the_data(teach_built):
    assert render_page(teach_built["data"]) == teach_built["html"]
