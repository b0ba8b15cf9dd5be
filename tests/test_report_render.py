"""The report folder: files, schema, sections, figures, no network, determinism, golden files, atomic writes.

Golden files live in ``tests/golden/report_small/`` beside their committed input (``cohort.parquet``:
20,000 people of ``england``, seed 17, so a change in numpy's sampling cannot move them). They are
compared as ``tests/_golden.py`` says: keyed rows, numbers within 1e-9 relative, words exactly. After an
intended change to the audit or the report, regenerate them with
``PHM_AUDIT_UPDATE_GOLDEN=1 pytest tests/test_report_render.py`` and review the diff.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _golden import golden_differences, read_golden_csv, small_audit

from phm_audit.audit import AuditSpec, ScoredModel, audit
from phm_audit.audit._result import AuditResult, RowBuilder
from phm_audit.exceptions import PhmInputError
from phm_audit.report import (
    REPORT_FILES,
    REPORT_SCHEMA_VERSION,
    SECTIONS,
    DisclosureControl,
    _outputs,
    file_sha256,
    metrics_frame,
    validate_report_json,
    write_report,
)
from phm_audit.report._outputs import read_metrics

GOLDEN = Path(__file__).parent / "golden" / "report_small"
UPDATE = os.environ.get("PHM_AUDIT_UPDATE_GOLDEN") == "1"
SECTION_IDS = [s for s, _ in SECTIONS]


@pytest.fixture(scope="module")
def small_result() -> AuditResult:
    """A small fixed cohort and audit: two models, two attributes, a short threshold sweep."""
    return small_audit()


@pytest.fixture(scope="module")
def tiny_result(cohort_factory) -> AuditResult:
    """One model, one attribute, one analysis: quick to render, for the tests of writing itself."""
    cohort = cohort_factory("england", 20_000, 17)
    spec = AuditSpec(
        attributes=("sex",), intersections=(), operating_points=("top_pct:3",), analyses=("fairness",), n_boot=10
    )
    return audit(cohort, {"prior_cost": cohort["cost_prior"].to_numpy(np.float64)}, spec)


@pytest.fixture(scope="module")
def small_report(small_result, tmp_path_factory) -> Path:
    return write_report(
        small_result,
        tmp_path_factory.mktemp("reports") / "small",
        provenance={"command": "pytest", "supplied_files": {"scores.csv": "0" * 64}},
        deterministic=True,
    )


@pytest.fixture(scope="module")
def full_result(cohort_factory) -> AuditResult:
    """Every analysis the audit has, plus made-up explanation and label-choice rows (those stages are optional)."""
    cohort = cohort_factory("england", 20_000, 23)
    n_ltc = cohort["n_ltc_recorded"].to_numpy(np.float64)
    admissions = cohort["emergency_admissions"].to_numpy(np.float64)
    probability = 1 / (1 + np.exp(-(-3.2 + 0.35 * n_ltc + 0.6 * admissions)))
    models = [
        ScoredModel("prior_cost", cohort["cost_prior"].to_numpy(np.float64), kind="actuarial"),
        ScoredModel("admission_risk", probability, kind="clinical", target="emergency_admission_next"),
    ]
    spec = AuditSpec(
        attributes=("sex",),
        intersections=(("sex", "imd_quintile"),),
        sweep_fractions=(0.01, 0.03, 0.1),
        n_boot=20,
        seed=2,
    )
    result = audit(cohort, models, spec)
    rows = RowBuilder()
    features = ["age", "n_ltc_recorded", "cost_prior", "emergency_admissions"]
    for i, f in enumerate(features):
        rows.add(
            model="prior_cost",
            analysis="explain",
            attribute="all",
            groups=["all"],
            metric="mean_abs_shap",
            value=0.4 - 0.1 * i,
            ci_low=0.35 - 0.1 * i,
            ci_high=0.45 - 0.1 * i,
            feature=f,
            n=5000,
        )
        rows.add(
            model="prior_cost",
            analysis="explain",
            attribute="sex",
            groups=["Male"],
            metric="gap_contribution",
            value=[0.05 * (i + 1) - 0.08],
            feature=f,
            n=[9000],
        )
    for label, share in (("cost_next", 0.45), ("n_conditions_next", 0.52)):
        rows.add(
            model=f"actuarial_cost[{label}]",
            analysis="label_choice",
            attribute="sex",
            groups=["Female", "Male"],
            metric="flagged_share",
            value=[share, 1 - share],
            ci_low=[share - 0.02, 0.98 - share],
            ci_high=[share + 0.02, 1.02 - share],
            n=600,
            target=label,
            operating_point="top_3pct",
        )
    extra = AuditResult(
        spec=spec,
        models=({"name": "actuarial_cost[cost_next]", "kind": "actuarial", "target": "cost_next"},),
        groups={},
        cohort=dict(result.cohort),
        notes=(),
        _metrics=rows.frame(),
        _curves=result.curves().iloc[:0],
    )
    return result.merge(extra)


def _svg_free(html: str) -> str:
    return re.sub(r"<svg\b.*?</svg>", "<svg/>", html, flags=re.S)


def _head(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k != "metrics"}


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    keys = ["model", "analysis", "attribute", "group", "operating_point", "metric", "target", "feature"]
    return frame.sort_values(keys, kind="stable").reset_index(drop=True)


@pytest.mark.slow
def test_report_has_every_file_and_nothing_else(small_report):
    assert sorted(p.name for p in small_report.iterdir()) == sorted([*REPORT_FILES, ".phm-audit-manifest.json"])
    assert not [p for p in small_report.parent.iterdir() if p.name.startswith(".")]


def test_audit_json_validates_against_the_shipped_schema(small_report):
    doc = json.loads((small_report / "audit.json").read_text())
    validate_report_json(doc)
    assert doc["schema_version"] == REPORT_SCHEMA_VERSION == "2.1"
    # what the report reads is structured: the primary decision and what every operating point means
    assert doc["primary_operating_point"] == "top_3pct"
    points = doc["operating_points"]
    assert {r["operating_point"] for r in doc["metrics"]} <= set(points)
    assert points["top_3pct"]["fraction"] == pytest.approx(0.03) and points["top_3pct"]["words"] == "the top 3%"
    # every missing value carries a code as well as words, and a suppressed one says it is suppressed
    codes = [
        (c, v, r) for m in doc["metrics"] for c, v, r in zip(m["reason_code"], m["value"], m["reason"], strict=True)
    ]
    assert all((c == "") == (r == "") for c, _, r in codes)
    assert all(v is None for c, v, _ in codes if c.startswith("suppressed"))
    assert any(c == "suppressed" for c, _, _ in codes)
    prov = doc["provenance"]
    assert prov["tool"] == "phm-audit" and prov["scenario"] == "england" and prov["seed"] == 17
    assert prov["n"] == 20_000 and prov["synthetic"] is True and "created" not in prov
    assert {m["name"] for m in prov["models"]} == {"prior_cost", "ltc_count"}
    assert prov["supplied_files"] == [{"name": "scores.csv", "sha256": "0" * 64}]
    assert doc["disclosure"]["enabled"] is True and doc["disclosure"]["threshold"] == 7
    assert sum(doc["summary"].values()) == len(doc["findings"]) > 0


def test_audit_json_names_the_tables_and_holds_every_metric_of_a_short_sweep(small_report):
    doc = json.loads((small_report / "audit.json").read_text())
    assert "curves" not in doc  # curves.csv holds them; the figures draw them
    files = {f["name"]: f for f in doc["files"]}
    assert set(files) == {"metrics.csv", "curves.csv"}
    for name, entry in files.items():
        table = pd.read_csv(small_report / name, keep_default_na=False, na_values=[""])
        assert entry["sha256"] == file_sha256(small_report / name)
        assert entry["rows"] == len(table) and entry["columns"] == list(table.columns)
    # a sweep of three capacities is kept whole: the document holds exactly the rows of metrics.csv
    (sweep,) = doc["sweeps"]
    assert sweep["analysis"] == "thresholds" and sweep["operating_points"] == 3
    assert sweep["rows_kept"] == sweep["rows_in_file"] > 0
    from_json, from_csv = _sorted(metrics_frame(doc)), _sorted(read_metrics(small_report / "metrics.csv"))
    pd.testing.assert_frame_equal(from_json, from_csv, check_dtype=False)


def test_a_long_sweep_is_kept_at_readable_points_and_whole_in_metrics_csv(tiny_result, tmp_path):
    rows = RowBuilder()
    capacities = [f"top_{p / 2:g}pct" for p in range(1, 101)]  # 0.5% to 50%, as the default sweep
    for op in capacities:
        rows.add(
            model="prior_cost",
            analysis="thresholds",
            attribute="sex",
            groups=["Female", "Male"],
            metric="selection_rate",
            value=[0.2, 0.3],
            n=[10_000, 10_000],
            operating_point=op,
        )
    sweep = AuditResult(
        spec=tiny_result.spec,
        models=(),
        groups={},
        cohort=dict(tiny_result.cohort),
        notes=(),
        _metrics=rows.frame(),
        _curves=tiny_result.curves().iloc[:0],
    )
    folder = write_report(tiny_result.merge(sweep), tmp_path / "sweep", deterministic=True)
    doc = json.loads((folder / "audit.json").read_text())
    validate_report_json(doc)
    (info,) = doc["sweeps"]
    assert info["operating_points"] == 100 and info["rows_in_file"] == 200
    assert info["kept"] == ["top_1pct", "top_3pct", "top_5pct", "top_10pct", "top_20pct", "top_50pct"]
    kept = metrics_frame(doc)
    assert sorted(set(kept.loc[kept["analysis"] == "thresholds", "operating_point"])) == sorted(info["kept"])
    assert info["rows_kept"] == int((kept["analysis"] == "thresholds").sum()) == 12
    full = read_metrics(folder / "metrics.csv")
    assert set(full.loc[full["analysis"] == "thresholds", "operating_point"]) == set(capacities)
    # everything else is in the document, row for row
    others = _sorted(full[full["analysis"] != "thresholds"])
    pd.testing.assert_frame_equal(_sorted(kept[kept["analysis"] != "thresholds"]), others, check_dtype=False)


def test_metrics_are_read_back_from_layout_1_0_too(tiny_result):
    table = tiny_result.table()
    records = json.loads(table.to_json(orient="records"))  # layout 1.0: one record per row
    old = metrics_frame({"schema_version": "1.0", "metrics": records})
    pd.testing.assert_frame_equal(old, table, check_dtype=False)
    with pytest.raises(PhmInputError, match=r"schema_version '3\.1'"):
        metrics_frame({"schema_version": "3.1", "metrics": []})


def test_schema_rejects_a_broken_document(small_report):
    doc = json.loads((small_report / "audit.json").read_text())
    bad = dict(doc, schema_version="0.9")
    first = doc["metrics"][0]
    bad["metrics"] = [dict(first, n=[-5] * len(first["group"]))]
    with pytest.raises(PhmInputError, match="schema_version") as err:
        validate_report_json(bad)
    assert "metrics/0/n/0" in str(err.value)
    # what the schema cannot say: one entry per group, and a reason for every missing value
    short = dict(first, value=first["value"][:-1])
    unexplained = dict(first, value=[None] * len(first["group"]), reason=[""] * len(first["group"]))
    with pytest.raises(PhmInputError, match=r"metrics/0/value: \d+ entries for \d+ groups") as err:
        validate_report_json(dict(doc, metrics=[short, unexplained]))
    assert "metrics/1/reason/0: a missing value must give its reason" in str(err.value)


def test_html_has_every_section_in_order_a_toc_and_accessible_figures(small_report):
    html = (small_report / "index.html").read_text()
    positions = [html.index(f'<section id="{s}"') for s in SECTION_IDS]
    assert positions == sorted(positions)
    for s in SECTION_IDS:
        assert f'href="#{s}"' in html  # table of contents
    figures = re.findall(r"<figure id=\"[^\"]+\">\s*<svg\b([^>]*)>", html)
    assert len(figures) >= 4
    assert all('role="img"' in f and 'aria-label="' in f for f in figures)
    assert html.count("<figcaption>") == len(figures)
    _assert_lean_svg(html)
    # sections without their analysis say so, and how to run it
    for s in ("net-benefit", "judgement", "explanations"):
        body = html[html.index(f'<section id="{s}"') :]
        body = body[: body.index("</section>")]
        assert 'class="absent"' in body
    assert "The data are synthetic" in html
    assert "Disclosure control is OFF" not in html


def _assert_lean_svg(html: str) -> None:
    """Figures are lean SVG whose ids are unique on the page and whose references stay inside the figure."""
    svgs = re.findall(r"<svg\b.*?</svg>", html, flags=re.S)
    ids = [i for svg in svgs for i in re.findall(r'\bid="([^"]+)"', svg)]
    assert len(ids) == len(set(ids))
    for svg in svgs:
        own = set(re.findall(r'\bid="([^"]+)"', svg))
        assert set(re.findall(r'(?:href="#|url\(#)([^")]+)', svg)) <= own
        assert "xlink:" not in svg and "font-family" not in svg and "<style" not in svg
        for d in re.findall(r'\bd="([^"]*)"', svg):
            assert not re.search(r"\d\.\d\d", d), d[:80]  # coordinates to 0.1 pt
    assert "figure svg text { font-family:" in html  # set once for the page


def test_html_loads_nothing_from_the_network(small_report):
    html = (small_report / "index.html").read_text()
    assert "http://" not in html and "https://" not in html
    assert not re.search(r"""(?:src|href)\s*=\s*["']?//""", html)
    assert not re.search(r"<(?:script|link|img|iframe)\b[^>]*(?:src|href)=", html)
    assert "@media print" in html


def test_every_published_count_is_disclosure_controlled(small_report):
    metrics = pd.read_csv(small_report / "metrics.csv", keep_default_na=False, na_values=[""])
    curves = pd.read_csv(small_report / "curves.csv")
    for counts in (
        metrics["n"].dropna(),
        metrics.loc[metrics["metric"] == "n", "value"].dropna(),
        curves["n"].dropna(),
    ):
        values = counts.to_numpy(np.float64)
        assert not ((values >= 1) & (values <= 7)).any()
        assert (values % 5 == 0).all()
    doc = json.loads((small_report / "audit.json").read_text())
    for info in doc["groups"].values():
        assert all(s is None or (s % 5 == 0 and not 1 <= s <= 7) for s in info["sizes"])
    assert "patient_id" not in metrics.columns and "patient_id" not in (small_report / "index.html").read_text()


def test_deterministic_reports_are_byte_identical(tiny_result, tmp_path):
    first = write_report(tiny_result, tmp_path / "a", name="same", deterministic=True)
    second = write_report(tiny_result, tmp_path / "b", name="same", deterministic=True)
    for name in REPORT_FILES:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    assert "<svg" in (first / "index.html").read_text()


@pytest.mark.slow
def test_figures_drawn_in_several_processes_are_the_same(small_result, small_report, tmp_path):
    folder = write_report(
        small_result,
        tmp_path / "small",
        provenance={"command": "pytest", "supplied_files": {"scores.csv": "0" * 64}},
        deterministic=True,
        n_jobs=2,
    )
    for name in REPORT_FILES:
        assert (folder / name).read_bytes() == (small_report / name).read_bytes(), name
    assert "phm-audit figure" not in (folder / "index.html").read_text()  # every placeholder filled


def report_contents(folder: Path) -> dict:
    """What the golden files pin, read from a report folder: tables as frames, JSON as a tree, text as text."""
    return {
        "metrics.csv": read_golden_csv(folder / "metrics.csv"),
        "curves.csv": read_golden_csv(folder / "curves.csv"),
        "summary.md": (folder / "summary.md").read_text(encoding="utf-8"),
        "audit_head.json": _head(json.loads((folder / "audit.json").read_text(encoding="utf-8"))),
        "index_text.html": _svg_free((folder / "index.html").read_text(encoding="utf-8")),
    }


def _write_golden(folder: Path, contents: dict) -> None:
    GOLDEN.mkdir(parents=True, exist_ok=True)
    for name, content in contents.items():
        if isinstance(content, pd.DataFrame):
            shutil.copyfile(folder / name, GOLDEN / name)
        elif isinstance(content, dict):
            (GOLDEN / name).write_text(json.dumps(content, indent=1) + "\n", encoding="utf-8")
        else:
            (GOLDEN / name).write_text(content, encoding="utf-8")


def test_golden_files(small_report):
    produced = report_contents(small_report)
    if UPDATE:
        _write_golden(small_report, produced)
    differences = golden_differences(produced, GOLDEN)
    assert not differences, (
        f"the report differs from {GOLDEN}: {differences}; if the change is intended, regenerate with "
        "PHM_AUDIT_UPDATE_GOLDEN=1"
    )


def _perturbed(result: AuditResult, relative: float) -> AuditResult:
    """``result`` with one computed ratio moved by ``relative`` (the need ratio of IMD quintile 1 for prior_cost)."""
    metrics = result.table().copy()
    at = (
        (metrics["model"] == "prior_cost")
        & (metrics["metric"] == "need_ratio_at_equal_score")
        & (metrics["attribute"] == "imd_quintile")
        & (metrics["group"] == "1")
        & (metrics["target"] == "need_true_next")
    )
    assert at.sum() == 1
    metrics.loc[at, "value"] *= 1 + relative
    return dataclasses.replace(result, _metrics=metrics)


@pytest.mark.slow
@pytest.mark.parametrize(("relative", "fails"), [(1e-13, False), (-1e-13, False), (1e-6, True), (-1e-6, True)])
def test_goldens_ignore_the_last_digit_and_catch_a_change_of_one_in_a_million(small_result, tmp_path, relative, fails):
    folder = write_report(
        _perturbed(small_result, relative),
        tmp_path / "small",
        provenance={"command": "pytest", "supplied_files": {"scores.csv": "0" * 64}},
        deterministic=True,
    )
    differences = golden_differences(report_contents(folder), GOLDEN)
    if fails:  # the table holds the value to full precision; the findings quote it too
        (message,) = differences["metrics.csv"]
        assert "need_ratio_at_equal_score" in message and "'imd_quintile', '1'" in message
    else:
        assert not differences, differences


def test_non_deterministic_report_records_its_creation_time(tiny_result, tmp_path):
    folder = write_report(tiny_result, tmp_path / "timed", disclosure=DisclosureControl(enabled=False))
    doc = json.loads((folder / "audit.json").read_text())
    validate_report_json(doc)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", doc["provenance"]["created"])
    html = (folder / "index.html").read_text()
    assert "Disclosure control is OFF" in html[: html.index("<nav")]
    assert (folder / "summary.md").read_text().splitlines()[2].startswith("**Disclosure control is OFF")
    assert doc["disclosure"]["enabled"] is False
    assert doc["provenance"]["n"] == 20_000
    assert doc["groups"]["sex"]["sizes"] == [int(x) for x in tiny_result.groups["sex"]["sizes"]]  # exact counts


def test_a_failed_write_leaves_no_report_and_no_temporary_folder(tiny_result, tmp_path, monkeypatch):
    real = _outputs.write_text

    def failing(path, text):
        if path.name == "index.html":  # after metrics.csv, curves.csv, audit.json and summary.md
            raise OSError("disk full")
        real(path, text)

    monkeypatch.setattr(_outputs, "write_text", failing)
    with pytest.raises(OSError, match="disk full"):
        write_report(tiny_result, tmp_path / "broken", deterministic=True)
    assert list(tmp_path.iterdir()) == []


def test_a_failed_rewrite_keeps_the_previous_report(tiny_result, tmp_path, monkeypatch):
    folder = tmp_path / "kept"
    folder.mkdir()
    (folder / "index.html").write_text("previous")

    def failing(path, frame):
        raise OSError("interrupted")

    monkeypatch.setattr(_outputs, "write_csv", failing)
    with pytest.raises(OSError, match="interrupted"):
        write_report(tiny_result, folder, deterministic=True, overwrite=True)  # no manifest: not a report
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept"]
    assert (folder / "index.html").read_text() == "previous"


def test_supplied_files_are_hashed(tiny_result, tmp_path):
    supplied = tmp_path / "model.skops"
    supplied.write_bytes(b"model bytes")
    folder = write_report(
        tiny_result,
        tmp_path / "hashed",
        provenance={"supplied_files": [supplied], "scenario": None, "synthetic": False},
        deterministic=True,
    )
    doc = json.loads((folder / "audit.json").read_text())
    assert doc["provenance"]["supplied_files"] == [{"name": "model.skops", "sha256": file_sha256(supplied)}]
    assert doc["provenance"]["synthetic"] is False
    assert "The data were supplied" in (folder / "index.html").read_text()
    with pytest.raises(PhmInputError, match="cannot read supplied file"):
        write_report(tiny_result, tmp_path / "nope", provenance={"supplied_files": [tmp_path / "missing.csv"]})
    assert not (tmp_path / "nope").exists()


@pytest.mark.slow
def test_every_analysis_renders_and_validates(full_result, tmp_path):
    folder = write_report(full_result, tmp_path / "full", name="full audit", deterministic=True)
    doc = json.loads((folder / "audit.json").read_text())
    validate_report_json(doc)
    html = (folder / "index.html").read_text()
    assert "<title>phm-audit report: full audit</title>" in html
    _assert_lean_svg(html)
    for fid in (
        "fig-net-benefit-admission-risk",
        "fig-judgement",
        "fig-explain-prior-cost",
        "fig-label-choice",
        "fig-thresholds-prior-cost",
        "fig-reliability-admission-risk",
        "fig-label-gap-prior-cost",
    ):
        assert f'<figure id="{fid}">' in html, fid
    for s in SECTION_IDS:
        body = html[html.index(f'<section id="{s}"') :]
        body = body[: body.index("</section>")]
        assert 'class="absent"' not in body, s
    assert "http://" not in html and "https://" not in html
    # the intersection's cells are disclosure controlled like every other group
    metrics = pd.read_csv(folder / "metrics.csv", keep_default_na=False, na_values=[""])
    n = metrics["n"].dropna().to_numpy(np.float64)
    assert not ((n >= 1) & (n <= 7)).any() and (n % 5 == 0).all()


def test_a_figure_that_fails_in_a_worker_process_stops_the_batch_and_frees_the_workers():
    from matplotlib.figure import Figure as MplFigure

    from phm_audit.report import FigureBatch
    from phm_audit.report._figures import _render

    def broken() -> MplFigure:
        raise RuntimeError("cannot draw")

    def empty() -> MplFigure:
        return MplFigure(figsize=(1, 1))

    batch = FigureBatch()
    with batch.collecting():
        figures = [_render(f"fig-{i}", "t", "alt", "caption", broken if i == 2 else empty) for i in range(4)]
    assert all(f.svg.startswith("<!--phm-audit figure") for f in figures)
    batch.start(2)
    with pytest.raises(RuntimeError, match="cannot draw"):
        batch.fill("".join(f.svg for f in figures))
    batch.close()
    again = FigureBatch()  # the workers are gone and the next batch can fork its own
    with again.collecting():
        figures = [_render(f"fig-{i}", "t", "alt", "caption", empty) for i in range(3)]
    again.start(2)
    page = again.fill("".join(f.svg for f in figures))
    again.close()
    assert page.count("<svg") == 3 and "phm-audit figure" not in page


def test_write_report_checks_its_arguments(tiny_result, tmp_path):
    with pytest.raises(TypeError, match="AuditResult"):
        write_report({"not": "a result"}, tmp_path / "x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="DisclosureControl"):
        write_report(tiny_result, tmp_path / "x", disclosure={"threshold": 7})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="n_jobs must be a whole number"):
        write_report(tiny_result, tmp_path / "x", n_jobs=1.5)  # type: ignore[arg-type]
    with pytest.raises(PhmInputError, match="n_jobs must be 1 or more"):
        write_report(tiny_result, tmp_path / "x", n_jobs=0)
    target = tmp_path / "file"
    target.write_text("")
    with pytest.raises(PhmInputError, match="it is a file"):
        write_report(tiny_result, target)
