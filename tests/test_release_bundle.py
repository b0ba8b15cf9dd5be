"""Release bundles for secure data environments: presets, the bundle's files and its numbers.

A bundle holds only what an output checker releases: CSV tables of at most ``max_rows`` rows, each figure
as SVG with the numbers it draws, a context file for each output and a README. Its numbers are the
report's under the same disclosure control.
"""

from __future__ import annotations

import contextlib
import re
import xml.etree.ElementTree as ET
from html import unescape
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _golden import golden_cohort, small_audit

from phm_audit.audit import AuditSpec, audit
from phm_audit.audit._metrics import UndeclaredMetricError, lookup
from phm_audit.audit._result import AuditResult
from phm_audit.cli import main
from phm_audit.exceptions import PhmAuditError, PhmInputError
from phm_audit.report import DisclosureControl, file_sha256, write_release_bundle, write_report
from phm_audit.report._bundle import MAX_ROWS, Output, _check_aggregate
from phm_audit.report._bundle_text import COLUMN_WORDS
from phm_audit.report._figure_data import headline_data, label_gap_data
from phm_audit.report._outputs import read_metrics

CAP = 200  # a small cap, to force the tables into parts


@pytest.fixture(scope="module")
def small_result() -> AuditResult:
    """The small audit of tests/test_report_render.py: two models, two attributes, a short sweep."""
    return small_audit()


@pytest.fixture(scope="module")
def written(small_result, tmp_path_factory) -> tuple[Path, Path]:
    """The report and the bundle of the small audit, both under OpenSAFELY's preset; the bundle split at CAP rows."""
    root = tmp_path_factory.mktemp("bundle")
    control = DisclosureControl.preset("opensafely")
    report = write_report(small_result, root / "report", disclosure=control, deterministic=True)
    bundle = write_release_bundle(small_result, root / "bundle", disclosure=control, max_rows=CAP, deterministic=True)
    return report, bundle


@pytest.fixture(scope="module")
def nine_result() -> AuditResult:
    """An audit of 3,000 people with a site of exactly 9 of them."""
    cohort = golden_cohort().iloc[:3000].copy()
    cohort["site"] = np.where(np.arange(3000) < 9, "A", np.where(np.arange(3000) < 1500, "B", "C"))
    spec = AuditSpec(
        attributes=("site",),
        intersections=(),
        operating_points=("top_pct:3",),
        analyses=("fairness",),
        n_boot=5,
        min_group_size=1,
        reference={"site": "B"},
    )
    return audit(cohort, {"prior_cost": cohort["cost_prior"].to_numpy(np.float64)}, spec)


def _parts(bundle: Path, stem: str) -> list[Path]:
    """The CSV parts of one output, in order."""
    one = bundle / f"{stem}.csv"
    if one.exists():
        return [one]
    parts = sorted(bundle.glob(f"{stem}_*.csv"), key=lambda p: int(p.stem.rsplit("_", 1)[1]))
    assert parts, f"no CSV for {stem}"
    return parts


def _in_analysis_order(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    order = {v: i for i, v in enumerate(dict.fromkeys(frame[column]))}
    return frame.iloc[np.argsort(frame[column].map(order).to_numpy(), kind="stable")].reset_index(drop=True)


def _count_columns(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """Cells that count people, decided here from the registry (not by the bundle's own code)."""
    out = {"n": np.ones(len(frame), dtype=bool)} if "n" in frame.columns else {}
    counts = np.zeros(len(frame), dtype=bool)
    if "metric" in frame.columns:
        analyses = frame["analysis"] if "analysis" in frame.columns else pd.Series("*", index=frame.index)
        for i, (a, m) in enumerate(zip(analyses.astype(str), frame["metric"].astype(str), strict=True)):
            with contextlib.suppress(UndeclaredMetricError):  # the figures' net benefit gain: not a count
                counts[i] = lookup(m, a).kind == "count"
    if "fmt" in frame.columns:
        counts |= (frame["fmt"] == "count").to_numpy()
    out.update({c: counts for c in ("value", "ci_low", "ci_high") if c in frame.columns})
    return out


# --- presets -------------------------------------------------------------------------------------------


def test_presets_set_the_threshold_and_name_their_rules():
    os_, sde = DisclosureControl.preset("opensafely"), DisclosureControl.preset("nhs-sde")
    assert (os_.threshold, os_.rounding, os_.enabled) == (7, 5, True)
    assert (sde.threshold, sde.rounding, sde.enabled) == (9, 5, True)
    assert os_.describe().startswith("OpenSAFELY's output-checking rules: counts of 1 to 7 suppressed")
    assert sde.describe().startswith("NHS England Secure Data Environment's output rules: counts of 1 to 9 suppressed")
    for control in (os_, sde):
        assert "rounded to the nearest 5" in control.describe() and "rates recomputed from rounded counts" in (
            control.describe()
        )
        assert "http" not in control.describe()
    assert sde.to_dict()["preset"] == "nhs-sde" and sde.to_dict()["threshold"] == 9
    # the default's words and JSON are as they were: no preset named
    assert "preset" not in DisclosureControl().to_dict()
    assert DisclosureControl().describe().startswith("counts of 1 to 7 suppressed")


def test_an_unknown_preset_names_the_closest_and_the_list():
    with pytest.raises(PhmInputError, match=r"'nhs_sde'.*did you mean 'nhs-sde'.*opensafely, nhs-sde"):
        DisclosureControl.preset("nhs_sde")
    with pytest.raises(PhmInputError, match="the presets are opensafely, nhs-sde"):
        DisclosureControl.preset("five-safes")
    with pytest.raises(PhmInputError, match="opensafely preset suppresses counts of 1 to 7"):
        DisclosureControl(threshold=10, preset_name="opensafely")  # a preset's name cannot carry other rules


def test_nhs_sde_suppresses_a_count_of_9_that_opensafely_publishes_as_10(nine_result, tmp_path):
    seen = {}
    for name in ("opensafely", "nhs-sde"):
        folder = write_release_bundle(nine_result, tmp_path / name, disclosure=DisclosureControl.preset(name))
        groups = pd.read_csv(folder / "groups.csv", dtype={"group": str}).set_index("group")
        metrics = pd.read_csv(folder / "metrics_fairness.csv", dtype={"group": str})
        n = metrics[(metrics["metric"] == "n") & (metrics["group"] == "A")]
        seen[name] = (groups.loc["A", "n"], n["value"].iloc[0], n["reason_code"].iloc[0])
    assert seen["opensafely"][:2] == (10, 10)
    assert np.isnan(seen["nhs-sde"][0]) and np.isnan(seen["nhs-sde"][1]) and seen["nhs-sde"][2] == "suppressed"


# --- the bundle's files ----------------------------------------------------------------------------------


def test_every_csv_fits_the_cap_and_its_parts_make_the_report_table(written, small_result):
    report, bundle = written
    assert MAX_ROWS == 5000
    csvs = sorted(bundle.glob("*.csv"))
    assert all(len(pd.read_csv(p)) <= CAP for p in csvs)
    assert (bundle / "metrics_thresholds_1.csv").exists() and not (bundle / "metrics_thresholds.csv").exists()
    # the metrics parts, analysis by analysis, are the report's metrics.csv row for row
    stems = list(dict.fromkeys(small_result.table()["analysis"]))
    parts = [read_metrics(p) for a in stems for p in _parts(bundle, f"metrics_{a}")]
    mine = pd.concat(parts, ignore_index=True)
    pd.testing.assert_frame_equal(mine, _in_analysis_order(read_metrics(report / "metrics.csv"), "analysis"))
    # the curves too, less the bins' score edges (people's scores)
    published = pd.read_csv(report / "curves.csv", dtype={"group": str}).drop(columns=["score_low", "score_high"])
    kinds = list(dict.fromkeys(published["bins"]))
    curves = pd.concat(
        [pd.read_csv(p, dtype={"group": str}) for k in kinds for p in _parts(bundle, f"curves_{k}")], ignore_index=True
    )
    pd.testing.assert_frame_equal(curves, _in_analysis_order(published, "bins"))


def test_every_figure_is_the_reports_with_the_numbers_it_draws(written):
    report, bundle = written
    html = (report / "index.html").read_text(encoding="utf-8")
    svgs = sorted(bundle.glob("*.svg"))
    assert len(svgs) == len(re.findall(r"<figure\b", html)) >= 8
    for svg in svgs:
        assert _parts(bundle, svg.stem) and (bundle / f"{svg.stem}.context.md").exists()
        text = svg.read_text(encoding="utf-8")
        ET.fromstring(text.encode("utf-8"))  # a file of its own: well-formed, with its namespaces
        inline = re.sub(r' xmlns(:\w+)?="[^"]*"', "", text.split("\n", 1)[1].strip())
        inline = re.sub(r"<style>.*?</style>", "", inline, count=1, flags=re.S)
        assert inline in html, f"{svg.name} is not the report's figure"
    # the numbers behind two figures, recomputed from the report's own metrics.csv
    table = read_metrics(report / "metrics.csv")
    attributes = {"imd_quintile": (["1", "2", "3", "4", "5"], "5")}
    ethnicity = table[(table["attribute"] == "ethnicity") & (table["metric"] == "n")]["group"].unique().tolist()
    attributes["ethnicity"] = (ethnicity, "White")
    for stem, frame in (
        (
            "fig-headline-top-3pct",
            headline_data(table, models=["prior_cost", "ltc_count"], operating_point="top_3pct", attributes=attributes),
        ),
        (
            "fig-label-gap-prior-cost",
            label_gap_data(
                table[table["model"] == "prior_cost"],
                model="prior_cost",
                need_targets=["need_true_next", "n_conditions_next"],
                attributes=attributes,
            ),
        ),
    ):
        mine = pd.read_csv(bundle / f"{stem}.csv", dtype={"group": str})
        numbers = ["value", "ci_low", "ci_high", "n"]
        np.testing.assert_allclose(
            mine[numbers].to_numpy(np.float64),
            frame[numbers].astype("Float64").to_numpy(np.float64, na_value=np.nan),
            rtol=1e-12,
        )
        assert mine["group"].tolist() == frame["group"].astype(str).tolist()


def test_context_files_give_each_files_sha256_rows_and_controls(written):
    _, bundle = written
    written_files = {p.name for p in bundle.iterdir() if p.suffix in (".csv", ".svg")}
    listed = set()
    for context in bundle.glob("*.context.md"):
        text = context.read_text(encoding="utf-8")
        for name, rows, sha in re.findall(r"^\| (\S+\.(?:csv|svg)) \| ([\d,]*) \| ([0-9a-f]{64}) \|$", text, re.M):
            assert file_sha256(bundle / name) == sha
            if name.endswith(".csv"):
                assert int(rows.replace(",", "")) == len(pd.read_csv(bundle / name))
            listed.add(name)
        assert "count of 1 to 7 people is suppressed" in text and "rounded to the nearest 5" in text
        assert "complementary (secondary) suppression" in text and "recomputed from the rounded counts" in text
        assert "## Columns" in text
    assert listed == written_files
    readme = (bundle / "README.md").read_text(encoding="utf-8")
    assert all(name in readme for name in written_files)
    assert "OpenSAFELY's output-checking rules" in readme and "http" not in readme
    # the metric registry's labels describe the metrics
    assert "| selection_rate | fairness | rate | share of the group flagged |" in (
        bundle / "metrics_fairness.context.md"
    ).read_text(encoding="utf-8")
    # nothing but the bundle: no HTML, no audit.json, no Markdown summary
    hidden = {p.name for p in bundle.iterdir() if p.name.startswith(".")}
    assert {p.suffix for p in bundle.iterdir() if p.name not in hidden} == {".csv", ".svg", ".md"}
    assert hidden == {".phm-audit-manifest.json"}


@pytest.mark.parametrize("preset", ["opensafely", "nhs-sde"])
def test_no_count_of_1_to_the_threshold_in_any_count_column(written, nine_result, tmp_path, preset):
    folders = [write_release_bundle(nine_result, tmp_path / "nine", disclosure=DisclosureControl.preset(preset))]
    if preset == "opensafely":
        folders.append(written[1])
    threshold = DisclosureControl.preset(preset).threshold
    for folder in folders:
        for path in folder.glob("*.csv"):
            frame = pd.read_csv(path)
            assert set(frame.columns) <= set(COLUMN_WORDS), path.name  # aggregates only
            for col, rows in _count_columns(frame).items():
                values = np.abs(np.round(pd.to_numeric(frame[col], errors="coerce").to_numpy(np.float64)))[rows]
                small = (values >= 1) & (values <= threshold)
                assert not small.any(), f"{path.name}: {col} holds a count of 1 to {threshold}"


def test_a_row_level_column_or_a_small_count_is_refused_before_writing():
    control = DisclosureControl.preset("opensafely")
    rows = Output("t", "t", "t", [pd.DataFrame({"group": ["a"], "patient_id": ["p1"]})], ["t.csv"])
    with pytest.raises(PhmAuditError, match="patient_id, which are not known aggregates"):
        _check_aggregate(rows, control)
    small = Output("t", "t", "t", [pd.DataFrame({"group": ["a", "b"], "n": [120, 3]})], ["t.csv"])
    with pytest.raises(PhmAuditError, match="count of 1 to 7 people in column n"):
        _check_aggregate(small, control)


def test_a_folder_holding_a_users_file_is_refused(nine_result, tmp_path):
    folder = tmp_path / "bundle"
    folder.mkdir()
    mine = folder / "notes.txt"
    mine.write_text("an analyst's own notes\n", encoding="utf-8")
    with pytest.raises(PhmInputError, match=r"holds files phm-audit did not write \('notes.txt'\)"):
        write_release_bundle(nine_result, folder)
    assert mine.read_text(encoding="utf-8") == "an analyst's own notes\n"
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]
    with pytest.raises(PhmInputError, match="disclosure control must be on"):
        write_release_bundle(nine_result, tmp_path / "off", disclosure=DisclosureControl(enabled=False))
    # an earlier bundle is replaced whole
    other = write_release_bundle(nine_result, tmp_path / "again", deterministic=True)
    before = {p.name: p.read_bytes() for p in other.iterdir()}
    write_release_bundle(nine_result, other, deterministic=True)
    assert {p.name: p.read_bytes() for p in other.iterdir()} == before


# --- the command line ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def extract(tmp_path_factory) -> Path:
    cohort = golden_cohort().iloc[:4000]
    table = pd.DataFrame(
        {
            "risk": cohort["cost_prior"].to_numpy(float),
            "deprivation": cohort["imd_quintile"],
            "conditions_next": cohort["n_conditions_next"],
            "spend_next": cohort["cost_next"],
        }
    )
    path = tmp_path_factory.mktemp("extract") / "scored.csv"
    table.to_csv(path, index=False)
    return path


def _args(path: Path, out: Path, *extra: str) -> list[str]:
    return [
        "audit",
        "--table",
        str(path),
        "--score",
        "risk",
        "--group",
        "deprivation",
        "--need",
        "conditions_next",
        "--cost",
        "spend_next",
        "--bootstrap",
        "5",
        "--operating-point",
        "top_pct:3",
        "--deterministic",
        "--quiet",
        "--out",
        str(out),
        *extra,
    ]


def test_cli_refuses_a_bad_preset_and_a_users_folder_before_any_work(extract, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(_args(extract, out, "--disclosure", "opensafe")) == 2
    err = capsys.readouterr().err
    assert "did you mean 'opensafely'" in err and "the presets are opensafely, nhs-sde" in err
    folder = tmp_path / "bundle"
    folder.mkdir()
    (folder / "keep.csv").write_text("mine\n", encoding="utf-8")
    assert main(_args(extract, out, "--release-bundle", str(folder))) == 2
    assert "holds files phm-audit did not write ('keep.csv')" in capsys.readouterr().err
    assert (folder / "keep.csv").read_text(encoding="utf-8") == "mine\n" and len(list(folder.iterdir())) == 1
    assert main(_args(extract, out, "--release-bundle", str(out / "inside"))) == 2
    assert "overlap" in capsys.readouterr().err
    assert not out.exists()  # refused before the audit, so no report either


def test_cli_writes_the_report_and_bundle_under_one_preset(extract, tmp_path):
    import json

    out, bundle = tmp_path / "report", tmp_path / "bundle"
    assert main(_args(extract, out, "--disclosure", "nhs-sde", "--release-bundle", str(bundle))) == 0
    doc = json.loads((out / "audit.json").read_text(encoding="utf-8"))
    assert doc["disclosure"]["preset"] == "nhs-sde" and doc["disclosure"]["threshold"] == 9
    html = unescape((out / "index.html").read_text(encoding="utf-8"))
    assert "NHS England Secure Data Environment's output rules" in html  # not lower-cased by the page
    assert "NHS England Secure Data Environment's output rules" in (bundle / "README.md").read_text(encoding="utf-8")
    report = read_metrics(out / "metrics.csv")
    stems = [f"metrics_{a}" for a in dict.fromkeys(report["analysis"])]
    mine = pd.concat([read_metrics(p) for stem in stems for p in _parts(bundle, stem)])
    pd.testing.assert_frame_equal(mine.reset_index(drop=True), _in_analysis_order(report, "analysis"))
