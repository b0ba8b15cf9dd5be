"""Sections of the HTML report about groups: the headline, the summary of findings, data and provenance,
bias across groups, calibration against cost and need, and label choice."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from phm_audit.audit._result import AuditResult
from phm_audit.report import _figures as figs
from phm_audit.report._control import DisclosureControl
from phm_audit.report._html_tables import (
    SECTIONS,
    Block,
    Cell,
    Index,
    Section,
    Table,
    finite,
    group_sizes,
    n_cell,
    single_attributes,
    value_cell,
    worst,
)
from phm_audit.report._rules import GRADES, Finding, FindingRules
from phm_audit.report._sentences import describe_operating_point
from phm_audit.report._statements import Statement

__all__ = [
    "bias_section",
    "calibration_section",
    "data_section",
    "headline_section",
    "label_choice_section",
    "summary_section",
]

_MAX_LISTED = 40


def headline_section(result: AuditResult, statements: Sequence[Statement], idx: Index, primary: str) -> Section:
    sec = Section("headline", SECTIONS[0][1])
    if statements:
        sec.blocks.append(Block("statements", items=list(statements)))
    else:
        sec.blocks.append(
            Block(
                "p",
                "No group of the equity attributes is graded as under-served, and no score is graded as under-stating "
                "a group's need, after the control of false discoveries. The detail below lists every finding.",
            )
        )
    equity = set(result.spec.equity)
    attributes = {a: v for a, v in single_attributes(result).items() if a in equity}
    models = idx.models_with("fairness")
    fig = figs.headline_figure(idx.table, models=models, operating_point=primary, attributes=attributes)
    if fig is not None:
        sec.blocks.append(Block("figure", figure=fig))
    sec.blocks.append(
        Block(
            "p",
            "Statements are ordered by the people they concern: the high-need members of a group missing from the "
            "flagged (or moved, or still missing at twice the capacity), per 100,000 of the audited population. "
            f"Equity attributes ({', '.join(result.spec.equity) or 'none audited'}) come first. Each statement's "
            "grade is that of the finding it rests on, after the control of false discoveries; the evidence is in "
            "the section it links to. Methods explains the mechanisms (label, base rate).",
        )
    )
    return sec


def summary_section(result: AuditResult, found: Sequence[Finding]) -> Section:
    sec = Section("summary", SECTIONS[1][1])
    counts = {g: sum(f.grade == g for f in found) for g in GRADES}
    models = [m["name"] for m in result.models]
    sec.blocks.append(
        Block(
            "p",
            f"{counts['flag']} findings are graded flag, {counts['review']} review and {counts['ok']} ok, across "
            f"{len(models)} model(s) ({', '.join(models)}). A flag is a disparity at least as large as the rule's "
            "threshold whose whole interval lies on the harmful side of parity; review is a smaller disparity that "
            "the interval still shows, a large one the interval cannot confirm, or a value that could not be "
            "reported. The rules are listed under Methods.",
        )
    )
    for grade, title in (("flag", "Flagged"), ("review", "For review")):
        items = [f for f in found if f.grade == grade]
        if not items:
            sec.blocks.append(Block("p", f"No finding is graded {grade}."))
            continue
        sec.blocks.append(Block("h3", f"{title} ({len(items)})"))
        sec.blocks.append(Block("findings", items=list(items[:_MAX_LISTED])))
        if len(items) > _MAX_LISTED:
            sec.blocks.append(Block("p", f"{len(items) - _MAX_LISTED} more {grade} findings are listed in audit.json."))
    return sec


def data_section(
    result: AuditResult,
    provenance: Mapping[str, Any],
    disclosure: DisclosureControl,
) -> Section:
    sec = Section("data", SECTIONS[2][1])
    prov_rows = []
    for key in ("tool", "tool_version", "created", "scenario", "seed", "n", "source", "command"):
        if provenance.get(key) not in (None, ""):
            value = provenance[key]
            prov_rows.append(
                [Cell(key.replace("_", " ")), Cell(f"{value:,}" if isinstance(value, int) else str(value))]
            )
    for key, value in provenance.items():
        if key in (
            "tool",
            "tool_version",
            "created",
            "scenario",
            "seed",
            "n",
            "source",
            "command",
            "models",
            "supplied_files",
            "deterministic",
            "synthetic",
        ):
            continue
        prov_rows.append([Cell(key.replace("_", " ")), Cell(str(value))])
    sec.blocks.append(Block("table", table=Table("Provenance", ["item", "value"], prov_rows)))
    if provenance.get("synthetic"):
        sec.blocks.append(
            Block(
                "p",
                "The data are synthetic: a population generated by phm-audit's structural causal model"
                + (f" (scenario {provenance.get('scenario')})" if provenance.get("scenario") else "")
                + ", with known ground truth. No real person is described.",
            )
        )
    else:
        sec.blocks.append(
            Block(
                "p",
                "The data were supplied to phm-audit (an extract); phm-audit does not know whether they are "
                "synthetic. No row-level data appear in this report.",
            )
        )
    files = provenance.get("supplied_files") or []
    if files:
        sec.blocks.append(
            Block(
                "table",
                table=Table(
                    "Supplied files",
                    ["file", "SHA-256"],
                    [[Cell(str(f["name"])), Cell(str(f["sha256"]), cls="mono")] for f in files],
                ),
            )
        )
    sec.blocks.append(
        Block(
            "table",
            table=Table(
                "Models audited",
                ["model", "kind", "predicts"],
                [
                    [Cell(str(m["name"])), Cell(str(m.get("kind") or "")), Cell(str(m.get("target") or "-"))]
                    for m in result.models
                ],
            ),
        )
    )
    rows = []
    for attribute, info in result.groups.items():
        sizes = list(info.get("sizes", []))
        parts = [
            f"{g} ({'*' if s is None else f'{int(s):,}'})" for g, s in zip(info.get("labels", []), sizes, strict=False)
        ]
        rows.append([Cell(attribute), Cell(str(info.get("reference", ""))), Cell(", ".join(parts))])
    sec.blocks.append(
        Block(
            "table", table=Table("Groups audited (n per group)", ["attribute", "reference group", "groups (n)"], rows)
        )
    )
    spec = result.spec
    spec_rows = [
        ["operating points", ", ".join(spec.operating_points)],
        ["primary operating point", str(spec.primary)],
        ["cost target", spec.cost_target],
        ["need targets", ", ".join(spec.need_targets)],
        ["high need measured by", str(result.cohort.get("high_need_target") or "")],
        ["analyses requested", ", ".join(spec.analyses)],
        ["bootstrap replicates", str(spec.n_boot)],
        ["interval level", f"{100 * spec.confidence:g}%"],
        ["smallest group reported", f"{spec.min_group_size} people"],
        ["score bins at equal score", str(spec.n_score_bins)],
    ]
    sec.blocks.append(
        Block("table", table=Table("Audit settings", ["setting", "value"], [[Cell(a), Cell(b)] for a, b in spec_rows]))
    )
    sec.blocks.append(Block("p", f"Disclosure control: {disclosure.describe()}."))
    if result.notes:
        sec.blocks.append(Block("h3", "Notes from the audit"))
        sec.blocks.append(Block("list", items=list(result.notes)))
    return sec


def bias_section(result: AuditResult, idx: Index, found: Sequence[Finding], primary: str) -> Section:
    sec = Section("bias", SECTIONS[3][1])
    models = idx.models_with("fairness")
    if not models:
        sec.absent = (
            "The fairness analysis is not in this result. Run the audit with the analysis 'fairness' "
            "(it is on by default: phm-audit audit ... or AuditSpec(analyses=[..., 'fairness']))."
        )
        return sec
    op_words = describe_operating_point(primary, result.operating_points)
    sec.blocks.append(
        Block(
            "p",
            f"Who each model flags at {op_words} (the primary operating point), against who has the highest need: "
            "the same number of people as are flagged, those with the highest "
            f"{result.cohort.get('high_need_target') or 'need'}. The selection ratio at equal need compares groups "
            "within bands of need, so a group flagged less at the same need shows a ratio below 1. Other operating "
            "points are in metrics.csv and graded in the findings.",
        )
    )
    by_key: dict[tuple[str, str, str], list[str]] = {}
    for f in found:
        if f.analysis != "fairness":
            continue
        for c in f.all_cells():
            if c["operating_point"] == primary:
                by_key.setdefault((str(c["model"]), f.attribute, f.group), []).append(str(c["grade"]))
    cols = [
        ("flagged_share", "share of those flagged"),
        ("high_need_share", "share of highest need"),
        ("flagged_to_high_need_ratio", "flagged / high-need share"),
        ("selection_ratio_at_equal_need", "selection ratio at equal need"),
        ("tpr", "high-need people flagged (tpr)"),
    ]
    for model in models:
        sec.blocks.append(Block("h3", model))
        fig = figs.shares_figure(
            idx.rows(model, "fairness"), model=model, operating_point=primary, attributes=single_attributes(result)
        )
        if fig is not None:
            sec.blocks.append(Block("figure", figure=fig))
        for attribute, info in result.groups.items():
            if idx.get(model, "fairness", attribute, str(info.get("reference")), primary, "n") is None:
                continue
            sizes = group_sizes(result, attribute)
            rows = []
            for g in map(str, info.get("labels", [])):
                label = g + (" (reference)" if g == info.get("reference") else "")
                cells = [Cell(label), n_cell(sizes.get(g))]
                cells += [value_cell(idx.get(model, "fairness", attribute, g, primary, m), m) for m, _ in cols]
                grade = worst(by_key.get((model, attribute, g), []))
                cells.append(Cell("", badge=grade))
                rows.append(cells)
            flagged = idx.get(model, "fairness", attribute, str(info.get("reference")), primary, "flagged_share")
            total = flagged.get("n") if flagged else None
            note = f"{int(float(total)):,} people flagged in all." if total is not None and finite(total) else ""
            sec.blocks.append(
                Block(
                    "table",
                    table=Table(
                        f"{model} at {op_words}, by {attribute}",
                        ["group", "n", *[c for _, c in cols], "grade"],
                        rows,
                        note=note + " Intervals under each value.",
                    ),
                )
            )
    return sec


def _need_target(result: AuditResult, table: pd.DataFrame) -> str:
    present = set(table.loc[table["metric"] == "need_ratio_at_equal_score", "target"])
    for t in ("need_true_next", str(result.cohort.get("high_need_target") or ""), *result.spec.need_targets):
        if t in present:
            return t
    return next(iter(sorted(present)), "")


def calibration_section(result: AuditResult, idx: Index, curves: pd.DataFrame, primary: str) -> Section:
    sec = Section("calibration", SECTIONS[4][1])
    table = idx.table
    models = idx.models_with("calibration")
    if not models:
        sec.absent = (
            "The calibration analysis is not in this result. Run the audit with the analysis 'calibration' "
            "(on by default)."
        )
        return sec
    need = _need_target(result, table)
    cost = result.spec.cost_target
    sec.blocks.append(
        Block(
            "p",
            "An actuarial score is calibrated to cost, what the system spent; a clinical one to need, how ill "
            f"people are. Here each score is held against both, per group: mean need ({need}) and mean cost "
            f"({cost}) by percentile of the score (after Obermeyer et al. 2019, Figure 1), and the ratios at equal "
            "score against the reference group, combined over score bins by direct standardisation.",
        )
    )
    for model in models:
        sec.blocks.append(Block("h3", model))
        for attribute, (groups, reference) in single_attributes(result).items():
            fig = figs.need_cost_by_percentile(
                idx.curves(model, curves),
                model=model,
                attribute=attribute,
                groups=groups,
                reference=reference,
                need_target=need,
                cost_target=cost,
                operating_point=primary,
            )
            if fig is not None:
                sec.blocks.append(Block("figure", figure=fig))
        rows = []
        for attribute, info in result.groups.items():
            sizes = group_sizes(result, attribute)
            for g in map(str, info.get("labels", [])):
                if g == info.get("reference"):
                    continue
                nr = idx.get(model, "calibration", attribute, g, "*", "need_ratio_at_equal_score", need)
                cr = idx.get(model, "calibration", attribute, g, "*", "cost_ratio_at_equal_score")
                if nr is None and cr is None:
                    continue
                rows.append(
                    [
                        Cell(attribute),
                        Cell(g),
                        Cell(str(info.get("reference"))),
                        n_cell(sizes.get(g)),
                        value_cell(nr, "need_ratio_at_equal_score"),
                        value_cell(cr, "cost_ratio_at_equal_score"),
                    ]
                )
        if rows:
            sec.blocks.append(
                Block(
                    "table",
                    table=Table(
                        f"{model}: need and cost at equal score, against the reference group",
                        ["attribute", "group", "reference", "n", f"need ratio ({need})", f"cost ratio ({cost})"],
                        rows,
                        note="1 = the same as the reference group at the same score. Intervals under each value.",
                    ),
                )
            )
        weak = idx.rows(model, "calibration")
        weak = weak[weak["metric"].isin(["calibration_in_the_large", "calibration_slope", "ici"])]
        if len(weak):
            fig = figs.reliability_figure(idx.curves(model, curves), model=model, attributes=single_attributes(result))
            if fig is not None:
                sec.blocks.append(Block("figure", figure=fig))
            rows = []
            for attribute, (labels, _) in single_attributes(result).items():
                sizes = group_sizes(result, attribute)
                for g in labels:
                    cells = [Cell(attribute), Cell(g), n_cell(sizes.get(g))]
                    for m in ("calibration_in_the_large", "observed_expected_ratio", "calibration_slope", "ici"):
                        cells.append(value_cell(idx.get(model, "calibration", attribute, g, "all", m), m))
                    rows.append(cells)
            target = str(weak["target"].iloc[0])
            sec.blocks.append(
                Block(
                    "table",
                    table=Table(
                        f"{model}: calibration on its own scale ({target})",
                        ["attribute", "group", "n", "observed - expected", "observed / expected", "slope", "ICI"],
                        rows,
                        note="Slope 1 and observed - expected 0 = calibrated (Van Calster et al. 2016). ICI: mean "
                        "absolute gap between prediction and a smoothed observed rate (Austin & Steyerberg 2019).",
                    ),
                )
            )
    return sec


def label_choice_section(result: AuditResult, idx: Index, rules: FindingRules) -> Section:
    sec = Section("label-choice", SECTIONS[5][1])
    table = idx.table
    need = _need_target(result, table)
    gap_models = [
        m
        for m in idx.models_with("calibration")
        if (idx.rows(m, "calibration")["metric"] == "label_gap_at_equal_score").any()
    ]
    lc = table[table["analysis"] == "label_choice"]
    sec.blocks.append(
        Block(
            "p",
            "The label is the outcome a model is trained to predict. The label gap at equal score is the need ratio "
            "over the cost ratio: where access to care is equal, both move together and the gap stays at 1; where "
            "a group receives less care at the same need, a cost label under-states its need and the gap rises above "
            "1 (Obermeyer et al. 2019).",
        )
    )
    for model in gap_models:
        fig = figs.label_gap_figure(
            idx.rows(model, "calibration"),
            model=model,
            need_targets=[need, *[t for t in result.spec.need_targets if t != need]],
            attributes=single_attributes(result),
            flag_at=rules.label_gap,
        )
        if fig is not None:
            sec.blocks.append(Block("h3", model))
            sec.blocks.append(Block("figure", figure=fig))
    if lc.empty:
        sec.blocks.append(
            Block(
                "p",
                "Retraining the same learner on each candidate label was not run for this report. To add it, run "
                "phm-audit audit --cohort COHORT --model NAME --label-choice, or phm-audit demo.",
            )
        )
        if not gap_models:
            sec.absent = (
                "Neither label gaps nor label retraining are in this result: run the calibration analysis, and "
                "phm-audit audit --cohort COHORT --model NAME --label-choice to retrain on each label."
            )
        return sec
    sec.blocks.append(Block("h3", "The same learner trained on each label"))
    fig = figs.label_choice_figure(table, attributes=single_attributes(result))
    if fig is not None:
        sec.blocks.append(Block("figure", figure=fig))
    rows = []
    for model in dict.fromkeys(lc["model"]):
        sub = lc[(lc["model"] == model) & (lc["attribute"] == "all")]
        nr = sub[sub["metric"] == "share_of_need_captured"]
        cr = sub[sub["metric"] == "share_of_cost_captured"]
        rows.append(
            [
                Cell(str(model)),
                *[
                    value_cell(dict(r.iloc[0]) if len(r) else None, m)
                    for r, m in ((nr, "share_of_need_captured"), (cr, "share_of_cost_captured"))
                ],
            ]
        )
    sec.blocks.append(
        Block(
            "table",
            table=Table(
                "Share of all need and all cost held by those flagged at "
                + describe_operating_point(str(lc["operating_point"].iloc[0]), result.operating_points),
                ["model [label]", "share of need captured", "share of cost captured"],
                rows,
            ),
        )
    )
    return sec
