"""The self-contained HTML report: sections of blocks (paragraphs, figures, tables, findings) in one template.

The page carries everything inline (styles, figures as SVG), loads nothing from the network, and
prints to PDF. Every disparity in a table sits beside its interval and its group's n.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jinja2
import pandas as pd

from phm_audit._version import __version__
from phm_audit.audit._result import AuditResult
from phm_audit.report import _figures as figs
from phm_audit.report._disclosure import COUNT_METRICS, DisclosureControl
from phm_audit.report._document import SWEEP_POINTS
from phm_audit.report._findings import (
    GRADES,
    Finding,
    FindingRules,
    describe_operating_point,
    primary_operating_point,
)
from phm_audit.report._headline import Statement

__all__ = ["SECTIONS", "PendingPage", "render_html", "start_page"]

#: Sections of the report, in order: (id, title).
SECTIONS = (
    ("headline", "What this audit found"),
    ("summary", "Summary of findings"),
    ("data", "Data and provenance"),
    ("bias", "Bias across groups"),
    ("calibration", "Actuarial versus clinical calibration"),
    ("label-choice", "Label choice"),
    ("thresholds", "Referral thresholds, capacity and unmet need"),
    ("net-benefit", "Net benefit"),
    ("judgement", "Actuarial versus clinical judgement"),
    ("explanations", "Explanations"),
    ("methods", "Methods and limitations"),
)

_MAX_LISTED = 40
_RATE_WORDS = ("rate", "share", "tpr", "fnr", "fpr", "ppv", "captured")


@dataclass
class Cell:
    """One table cell: the text, an optional small note under it (a reason), a CSS class, a grade badge."""

    text: str
    note: str = ""
    cls: str = ""
    badge: str = ""


@dataclass
class Table:
    """A table block."""

    caption: str
    columns: list[str]
    rows: list[list[Cell]]
    note: str = ""


@dataclass
class Block:
    """One block of a section: ``h3``, ``p``, ``list``, ``figure``, ``table`` or ``findings``."""

    kind: str
    text: str = ""
    items: list[Any] = field(default_factory=list)
    figure: figs.Figure | None = None
    table: Table | None = None


@dataclass
class Section:
    """A section of the report."""

    id: str
    title: str
    blocks: list[Block] = field(default_factory=list)
    absent: str = ""


# --- formatting ----------------------------------------------------------------------------------


def _finite(x: Any) -> bool:
    try:
        return x is not None and x is not pd.NA and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def _is_rate(metric: str) -> bool:
    return any(w in metric for w in _RATE_WORDS) and not metric.endswith("_ratio")


def fmt(metric: str, x: Any) -> str:
    """A value in words: rates and shares as per cent, differences in points, ratios to 2 decimals."""
    if not _finite(x):
        return "not reported"
    v = float(x)
    if metric in COUNT_METRICS:
        return f"{v:+,.0f}" if metric == "equal_tpr_change_in_flagged" else f"{v:,.0f}"
    if metric.endswith("_difference") or metric.endswith("_gap") or "_gap_" in metric:
        return f"{100 * v:+.1f} pts"
    if _is_rate(metric):
        return f"{100 * v:.1f}%"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.2f}" if abs(v) >= 0.01 or v == 0 else f"{v:.2g}"


def _n(x: Any) -> Cell:
    return Cell(f"{int(x):,}") if _finite(x) else Cell("*", "suppressed", "na")


def _value_cell(row: Mapping[str, Any] | None, metric: str | None = None) -> Cell:
    """Value with its interval, or 'not reported' with the reason."""
    if row is None:
        return Cell("", "", "na")
    metric = metric or str(row["metric"])
    if not _finite(row["value"]):
        reason = str(row.get("reason") or "undefined")
        if reason.startswith("suppressed"):
            return Cell("*", "suppressed: " + reason.rsplit(": ", 1)[-1], "na")
        return Cell("not reported", reason, "na")
    text = fmt(metric, row["value"])
    if _finite(row["ci_low"]) and _finite(row["ci_high"]):
        lo, hi = fmt(metric, row["ci_low"]), fmt(metric, row["ci_high"])
        return Cell(text, f"{lo} to {hi}")
    return Cell(text)


class _Index:
    """Fast lookups of single rows of the tidy table."""

    def __init__(self, table: pd.DataFrame, curves: pd.DataFrame) -> None:
        self.table = table
        # sections and figures filter by model and analysis: split once, not once per table or figure
        self._by_model = {str(m): t for m, t in table.groupby("model", sort=False)}
        self._by_model_analysis = {
            (str(m), str(a)): t for (m, a), t in table.groupby(["model", "analysis"], sort=False)
        }
        self._models: dict[str, list[str]] = {}
        for m, a in self._by_model_analysis:
            self._models.setdefault(a, []).append(m)
        self._curves_by_model = {str(m): c for m, c in curves.groupby("model", sort=False)} if len(curves) else {}
        # the tables look up single rows; the sweeps and decision curves are drawn, not looked up
        table = table[
            (table["analysis"] != "thresholds")
            & ((table["analysis"] != "net_benefit") | (table["group"] == "all"))
            & ((table["analysis"] != "raise_bar") | (table["metric"] != "dropped"))
        ]
        keys = ["model", "analysis", "attribute", "group", "operating_point", "metric", "target"]
        self._rows: dict[tuple[str, ...], dict[str, Any]] = {}
        records: list[dict[str, Any]] = [{str(k): v for k, v in r.items()} for r in table.to_dict(orient="records")]
        for key, rec in zip(map(tuple, table[keys].astype(str).to_numpy()), records, strict=True):
            model, analysis, attribute, group, op, metric, target = key
            for o in (op, "*"):
                for t in (target, "*"):
                    self._rows.setdefault((model, analysis, attribute, group, o, metric, t), rec)

    def model(self, model: str) -> pd.DataFrame:
        """The rows of one model."""
        return self._by_model.get(model, self.table.iloc[:0])

    def rows(self, model: str, analysis: str) -> pd.DataFrame:
        """The rows of one model and analysis."""
        return self._by_model_analysis.get((model, analysis), self.table.iloc[:0])

    def models_with(self, analysis: str) -> list[str]:
        """Models with rows of ``analysis``, in order of appearance."""
        return list(self._models.get(analysis, []))

    def curves(self, model: str, like: pd.DataFrame) -> pd.DataFrame:
        """The curves of one model."""
        return self._curves_by_model.get(model, like.iloc[:0])

    def get(
        self, model: str, analysis: str, attribute: str, group: str, op: str, metric: str, target: str = "*"
    ) -> dict[str, Any] | None:
        return self._rows.get((model, analysis, attribute, group, op, metric, target))


# --- sections ------------------------------------------------------------------------------------


def _attributes(result: AuditResult, single: bool = True) -> dict[str, tuple[list[str], str | None]]:
    out = {}
    for attribute, info in result.groups.items():
        if single and " x " in attribute:
            continue
        out[attribute] = ([str(g) for g in info.get("labels", [])], str(info.get("reference", "")) or None)
    return out


def _sizes(result: AuditResult, attribute: str) -> dict[str, Any]:
    info = result.groups.get(attribute, {})
    return dict(zip(map(str, info.get("labels", [])), info.get("sizes", []), strict=False))


def _headline(result: AuditResult, statements: Sequence[Statement], idx: _Index, primary: str) -> Section:
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
    equity = [a for a in result.spec.equity if " x " not in a]
    attributes = {a: v for a, v in _attributes(result).items() if a in equity}
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


def _summary(result: AuditResult, found: Sequence[Finding]) -> Section:
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


def _data(
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


def _worst(grades: Iterable[str]) -> str:
    grades = list(grades)
    for g in GRADES:
        if g in grades:
            return g
    return ""


def _bias(result: AuditResult, idx: _Index, found: Sequence[Finding], primary: str) -> Section:
    sec = Section("bias", SECTIONS[3][1])
    models = idx.models_with("fairness")
    if not models:
        sec.absent = (
            "The fairness analysis is not in this result. Run the audit with the analysis 'fairness' "
            "(it is on by default: phm-audit audit ... or AuditSpec(analyses=[..., 'fairness']))."
        )
        return sec
    op_words = describe_operating_point(primary)
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
            idx.rows(model, "fairness"), model=model, operating_point=primary, attributes=_attributes(result)
        )
        if fig is not None:
            sec.blocks.append(Block("figure", figure=fig))
        for attribute, info in result.groups.items():
            if idx.get(model, "fairness", attribute, str(info.get("reference")), primary, "n") is None:
                continue
            sizes = _sizes(result, attribute)
            rows = []
            for g in map(str, info.get("labels", [])):
                label = g + (" (reference)" if g == info.get("reference") else "")
                cells = [Cell(label), _n(sizes.get(g))]
                cells += [_value_cell(idx.get(model, "fairness", attribute, g, primary, m), m) for m, _ in cols]
                grade = _worst(by_key.get((model, attribute, g), []))
                cells.append(Cell("", badge=grade))
                rows.append(cells)
            flagged = idx.get(model, "fairness", attribute, str(info.get("reference")), primary, "flagged_share")
            total = flagged.get("n") if flagged else None
            note = f"{int(float(total)):,} people flagged in all." if total is not None and _finite(total) else ""
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


def _calibration(result: AuditResult, idx: _Index, curves: pd.DataFrame, primary: str) -> Section:
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
        for attribute, (groups, reference) in _attributes(result).items():
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
            sizes = _sizes(result, attribute)
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
                        _n(sizes.get(g)),
                        _value_cell(nr, "need_ratio_at_equal_score"),
                        _value_cell(cr, "cost_ratio_at_equal_score"),
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
            fig = figs.reliability_figure(idx.curves(model, curves), model=model, attributes=_attributes(result))
            if fig is not None:
                sec.blocks.append(Block("figure", figure=fig))
            rows = []
            for attribute, (labels, _) in _attributes(result).items():
                sizes = _sizes(result, attribute)
                for g in labels:
                    cells = [Cell(attribute), Cell(g), _n(sizes.get(g))]
                    for m in ("calibration_in_the_large", "observed_expected_ratio", "calibration_slope", "ici"):
                        cells.append(_value_cell(idx.get(model, "calibration", attribute, g, "all", m), m))
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


def _label_choice(result: AuditResult, idx: _Index, rules: FindingRules) -> Section:
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
            attributes=_attributes(result),
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
    fig = figs.label_choice_figure(table, attributes=_attributes(result))
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
                    _value_cell(dict(r.iloc[0]) if len(r) else None, m)
                    for r, m in ((nr, "share_of_need_captured"), (cr, "share_of_cost_captured"))
                ],
            ]
        )
    sec.blocks.append(
        Block(
            "table",
            table=Table(
                "Share of all need and all cost held by those flagged at "
                + describe_operating_point(str(lc["operating_point"].iloc[0])),
                ["model [label]", "share of need captured", "share of cost captured"],
                rows,
            ),
        )
    )
    return sec


def _group_rows(result: AuditResult) -> list[tuple[str, str]]:
    """(attribute, group) of every single attribute, in order."""
    return [(a, g) for a, (groups, _) in _attributes(result).items() for g in groups]


def _thresholds(result: AuditResult, idx: _Index) -> Section:
    sec = Section("thresholds", SECTIONS[6][1])
    present = {a for a in ("thresholds", "allocation", "raise_bar", "referral") if idx.models_with(a)}
    if not present:
        sec.absent = (
            "No threshold, allocation, raising-the-bar or referral analysis is in this result. Add them with "
            "AuditSpec(analyses=[..., 'thresholds', 'allocation', 'raise_bar', 'referral']) (on by default in "
            "phm-audit audit and phm-audit demo)."
        )
        return sec
    sec.blocks.append(
        Block(
            "p",
            "What the cut-off and the capacity do to who gets care: selection and unmet need as capacity grows, "
            "who would be flagged if people were ranked by need, what shrinking capacity ('raising the bar') does, "
            "and who a referral gate turns away among those who need specialist care."
            + (
                " The figures draw the threshold sweep; its values at every capacity are in metrics.csv "
                "(analysis 'thresholds')."
                if "thresholds" in present
                else ""
            ),
        )
    )
    missing = sorted({"thresholds", "allocation", "raise_bar", "referral"} - present)
    if missing:
        sec.blocks.append(Block("p", f"Not in this result: {', '.join(missing)} (add them to AuditSpec.analyses)."))
    sizes = {a: _sizes(result, a) for a in result.groups}
    rows_ag = _group_rows(result)
    models = list(
        dict.fromkeys(m for a in ("thresholds", "allocation", "raise_bar", "referral") for m in idx.models_with(a))
    )
    heads = {
        "flagged_share": "share of those flagged",
        "flagged_share_if_by_need": "share if flagged by need",
        "replacement_share": "share after replacement",
        "equal_tpr_change_in_flagged": "change in flagged with equal tpr",
    }
    for model in models:
        sec.blocks.append(Block("h3", model))
        fig = figs.thresholds_figure(idx.rows(model, "thresholds"), model=model, attributes=_attributes(result))
        if fig is not None:
            sec.blocks.append(Block("figure", figure=fig))
        sub = idx.rows(model, "allocation")
        if len(sub):
            op = str(sub["operating_point"].iloc[0])
            metrics = [m for m in heads if (sub["metric"] == m).any()]
            metrics += [
                m for m in dict.fromkeys(sub["metric"]) if m.startswith("flagged_share_if_by_") and m not in metrics
            ][:2]
            rows = [
                [
                    Cell(a),
                    Cell(g),
                    _n(sizes[a].get(g)),
                    *[_value_cell(idx.get(model, "allocation", a, g, op, m), m) for m in metrics],
                ]
                for a, g in rows_ag
            ]
            sec.blocks.append(
                Block(
                    "table",
                    table=Table(
                        f"{model} at {describe_operating_point(op)}: counterfactual allocation",
                        ["attribute", "group", "n", *[heads.get(m, m.replace("_", " ")) for m in metrics]],
                        rows,
                        note="Replacement: the healthiest flagged member of the reference group swapped for the "
                        "sickest unflagged member of the group while that raises need (Obermeyer et al. 2019).",
                    ),
                )
            )
        sub = idx.rows(model, "raise_bar")
        if len(sub):
            steps = list(dict.fromkeys(sub["operating_point"]))
            first, last = steps[0], steps[-1]
            rows = [
                [
                    Cell(a),
                    Cell(g),
                    _value_cell(idx.get(model, "raise_bar", a, g, first, "unmet_need_rate"), "unmet_need_rate"),
                    _value_cell(idx.get(model, "raise_bar", a, g, last, "unmet_need_rate"), "unmet_need_rate"),
                    _value_cell(idx.get(model, "raise_bar", a, g, last, "dropped_share"), "dropped_share"),
                ]
                for a, g in rows_ag
            ]
            sec.blocks.append(
                Block(
                    "table",
                    table=Table(
                        f"{model}: raising the bar",
                        [
                            "attribute",
                            "group",
                            f"unmet need at {describe_operating_point(first)}",
                            f"unmet need at {describe_operating_point(last)}",
                            "share of those dropped at the last step",
                        ],
                        rows,
                        note="Unmet need: the share of the group's high-need members (fixed at the first step) "
                        "no longer flagged.",
                    ),
                )
            )
        sub = idx.rows(model, "referral")
        if len(sub):
            op = str(sub["operating_point"].iloc[0])
            rows = []
            for a, g in rows_ag:
                rate = idx.get(model, "referral", a, g, op, "refused_rate_among_needing")
                rows.append(
                    [
                        Cell(a),
                        Cell(g),
                        _n(rate.get("n") if rate else None),
                        _value_cell(rate, "refused_rate_among_needing"),
                        _value_cell(idx.get(model, "referral", a, g, op, "refused_rate_ratio"), "refused_rate_ratio"),
                    ]
                )
            sec.blocks.append(
                Block(
                    "table",
                    table=Table(
                        f"{model}: referral gate at {describe_operating_point(op)}",
                        [
                            "attribute",
                            "group",
                            "n who need specialist care",
                            "refused among them",
                            "ratio to reference",
                        ],
                        rows,
                    ),
                )
            )
    return sec


def _net_benefit(result: AuditResult, idx: _Index) -> Section:
    sec = Section("net-benefit", SECTIONS[7][1])
    models = idx.models_with("net_benefit")
    if not models:
        sec.absent = (
            f"Net benefit needs a model whose scores are probabilities of {result.spec.net_benefit_target} "
            "(a ScoredModel with that target); none was audited, so decision curves are not drawn."
        )
        return sec
    sec.blocks.append(
        Block(
            "p",
            "Net benefit weighs true positives against false positives at the odds a decision-maker accepts "
            "(Vickers & Elkin 2006), against treating everyone and treating no one, overall and per group.",
        )
    )
    for model in models:
        sec.blocks.append(Block("h3", model))
        fig = figs.net_benefit_figure(idx.rows(model, "net_benefit"), model=model, attributes=_attributes(result))
        if fig is not None:
            sec.blocks.append(Block("figure", figure=fig))
        sub = idx.rows(model, "net_benefit")
        sub = sub[sub["group"] == "all"]
        attribute = str(sub["attribute"].iloc[0]) if len(sub) else ""
        rows = []
        for pt in SWEEP_POINTS["net_benefit"]:
            nb = idx.get(model, "net_benefit", attribute, "all", pt, "net_benefit")
            if nb is None:
                continue
            rows.append(
                [
                    Cell(pt.removeprefix("pt_")),
                    _value_cell(nb, "net_benefit"),
                    _value_cell(
                        idx.get(model, "net_benefit", attribute, "all", pt, "net_benefit_treat_all"),
                        "net_benefit_treat_all",
                    ),
                ]
            )
        if rows:
            sec.blocks.append(
                Block(
                    "table",
                    table=Table(
                        f"{model}: net benefit for everyone",
                        ["threshold probability", "net benefit", "treat all"],
                        rows,
                    ),
                )
            )
    return sec


def _judgement(result: AuditResult, idx: _Index) -> Section:
    sec = Section("judgement", SECTIONS[8][1])
    table = idx.table
    sub = table[table["analysis"] == "judgement"]
    if sub.empty:
        sec.absent = (
            "Actuarial and clinical scores are compared on one footing when two or more models are audited "
            "together (and 'judgement' is among the analyses); this result has fewer."
        )
        return sec
    sec.blocks.append(
        Block(
            "p",
            "Mechanical prediction is on average somewhat more accurate than unaided judgement (Grove et al. 2000), "
            "but what a score is accurate about depends on its label. Each score is compared at the same capacity: "
            "how well it ranks high need and high cost (AUROC), how much of all need and cost its flagged hold, and "
            "how many high-need members of each group it reaches.",
        )
    )
    fig = figs.judgement_figure(table)
    if fig is not None:
        sec.blocks.append(Block("figure", figure=fig))
    kinds = {m["name"]: m.get("kind", "") for m in result.models}
    op = str(sub["operating_point"].iloc[0])
    rows = []
    for model in dict.fromkeys(sub["model"]):
        cells = [Cell(str(model)), Cell(str(kinds.get(model, "")))]
        for m in ("auroc_high_need", "auroc_high_cost", "share_of_need_captured", "share_of_cost_captured"):
            cells.append(_value_cell(idx.get(str(model), "judgement", "all", "all", op, m), m))
        rows.append(cells)
    sec.blocks.append(
        Block(
            "table",
            table=Table(
                f"Models at {describe_operating_point(op)}",
                ["model", "kind", "AUROC, high need", "AUROC, high cost", "need captured", "cost captured"],
                rows,
            ),
        )
    )
    models = [str(m) for m in dict.fromkeys(sub["model"])]
    rows = [
        [Cell(a), Cell(g), *[_value_cell(idx.get(m, "judgement", a, g, op, "tpr"), "tpr") for m in models]]
        for a, g in _group_rows(result)
    ]
    sec.blocks.append(
        Block(
            "table",
            table=Table("Share of each group's high-need members flagged (tpr)", ["attribute", "group", *models], rows),
        )
    )
    return sec


def _explanations(result: AuditResult, idx: _Index) -> Section:
    sec = Section("explanations", SECTIONS[9][1])
    models = idx.models_with("explain")
    if not models:
        sec.absent = (
            "Explanations were not computed for this audit. They need the 'explain' extra "
            "(pip install phm-audit[explain]) and a model that can be explained; phm-audit demo runs them."
        )
        return sec
    sec.blocks.append(
        Block(
            "p",
            "Which inputs drive each score (mean absolute SHAP value), and which of them carry the difference "
            "between groups: an input that explains much of a group's gap may stand in for a protected attribute.",
        )
    )
    for model in models:
        sec.blocks.append(Block("h3", model))
        fig = figs.explain_figure(idx.rows(model, "explain"), model=model)
        if fig is not None:
            sec.blocks.append(Block("figure", figure=fig))
        imp = idx.rows(model, "explain")
        imp = imp[imp["metric"] == "mean_abs_shap"]
        if (imp["group"] == "all").any():
            imp = imp[imp["group"] == "all"]
        imp = imp.drop_duplicates("feature").sort_values("value", ascending=False, na_position="last").head(15)
        if len(imp):
            rows = [
                [Cell(str(r["feature"])), _value_cell({str(k): v for k, v in r.items()}, "mean_abs_shap"), _n(r["n"])]
                for r in imp.to_dict(orient="records")
            ]
            sec.blocks.append(
                Block("table", table=Table(f"{model}: mean |SHAP| by feature", ["feature", "mean |SHAP|", "n"], rows))
            )
    return sec


def _methods(result: AuditResult, disclosure: DisclosureControl, rules: FindingRules, synthetic: bool) -> Section:
    sec = Section("methods", SECTIONS[10][1])
    spec = result.spec
    level = f"{100 * spec.confidence:g}%"
    paras = [
        (
            "Intervals",
            f"Every interval is a {level} percentile interval from {spec.n_boot} bootstrap replicates. The bootstrap "
            "resamples counts, not rows: each statistic is a function of counts and sums per cell (for example group "
            "by flagged by high need), and resampling people with replacement makes the cell counts multinomial; "
            "given a cell's count, its sum is resampled exactly from the cell's own values for small cells and from "
            "the normal limit of the sum for large ones. Replicates in which a statistic is undefined are left out, "
            "and an interval needs at least half the replicates to be defined. With 0 replicates there are no "
            "intervals, and no finding can be graded flag.",
        ),
        (
            "Ties",
            "Operating points flag the k highest scores. People with equal scores are taken in their input order "
            "(a stable sort), so exactly k people are flagged and the rule is reproducible; 'high need' is the same "
            "number of people with the highest need, by the same tie rule.",
        ),
        (
            "Equal score and equal need",
            "Ratios at equal score compare a group with the reference group within bins of the score and combine "
            "the bins by direct standardisation, each bin weighted by the group's own count there "
            "(sum of n_g,b x mean_g,b over sum of n_g,b x mean_ref,b); bins where either group is empty are left out "
            "and counted in metrics.csv (bins_left_out, people_left_out). The selection ratio at equal need does "
            "the same within bands of need (percentiles " + ", ".join(f"{x:g}" for x in spec.need_strata) + ").",
        ),
        (
            "Label gap",
            "The label gap is the need ratio at equal score over the cost ratio at equal score. A group can be "
            "sicker at the same score under any label (its need ratio alone exceeds 1); the label gap isolates the "
            "part due to cost standing in for need: where access to care is equal it stays at 1, and above 1 a "
            "cost-trained score under-rates the group's need.",
        ),
        (
            "Findings",
            f"Graded by FindingRules: flag a share ratio below {rules.share_ratio:g} or a selection ratio at equal "
            f"need below {rules.selection_ratio:g} with the interval below 1; a tpr difference of "
            f"{100 * rules.tpr_gap:g} points or more with the interval below 0; a need ratio above "
            f"{rules.need_ratio:g} or a label gap above {rules.label_gap:g} with the interval above 1; an unmet-need "
            f"gap of {100 * rules.unmet_need_gap:g} points or more with the interval above 0; a referral refusal "
            f"ratio above {rules.refused_ratio:g} with the interval above 1. Review: the interval excludes parity "
            "but the effect is smaller"
            + (
                "; or the effect reaches the threshold but the interval includes parity or is missing"
                if rules.review_uncertain
                else ""
            )
            + "; or the value is not reported, with its reason. Ok otherwise.",
        ),
        (
            "False discoveries",
            (
                "Every graded comparison (model x attribute x group x metric x operating point) is one test of "
                "parity. Its two-sided p-value is read from its bootstrap percentile interval by the normal "
                "approximation on the comparison's scale (the logarithm for a ratio): the half of the interval "
                "facing parity over the normal quantile of the interval's level is the standard error, so the "
                "p-value is below 1 minus the level exactly when the interval excludes parity. The "
                "Benjamini-Hochberg procedure (scipy.stats.false_discovery_control) is applied once over all of "
                f"them at a false discovery rate of {100 * rules.false_discovery_rate:g}%, and only a discovery "
                "can be a flag; an interval that excludes parity but is not a discovery is graded review. Flags "
                "bounded from a suppressed count have no interval and are graded on their exact bound. The raw "
                "per-cell intervals are in metrics.csv; each finding in audit.json carries its p_value and q_value."
                if rules.false_discovery_rate is not None
                else "No multiplicity control was applied (FindingRules false_discovery_rate=None): each interval "
                "is graded on its own, so about one in twenty comparisons without an effect excludes parity by "
                "chance."
            )
            + (
                f" A comparison at equal score (need ratio, label gap) of a group of fewer than "
                f"{rules.min_calibration_n:,} people is graded review at most: over so few people in each score "
                "bin its bootstrap interval is too narrow (FindingRules min_calibration_n)."
                if rules.min_calibration_n
                else ""
            ),
        ),
        (
            "One finding per effect",
            "The cells of one model, attribute, group and metric at every operating point are one finding, graded "
            "by the worst of them; the same effect (attribute, group, metric, grade and direction) in several "
            "models is one finding, led by the largest. Each lists its cells, with their grades, beneath.",
        ),
        (
            "Headline and mechanisms",
            "The headline says who is under-served (share of the flagged over share of the highest need graded "
            "flag) and whether a score under-states a group's need, and why. Label: the model ranks by cost and "
            "the label gap at equal score (need ratio over cost ratio) is a flag, so a cost label under-states the "
            "group's need; a need label would fix it. Base rate: the model is not trained on cost and the need "
            "ratio at equal score is a flag: at the same score the group is sicker, as a noisy score of a group "
            "with more need shows (the label gap describes cost against need in the population and is much the "
            "same for every score, so it does not implicate such a score); calibration within groups or a "
            "group-aware threshold would fix it. For a model of unknown label the data decide (label gap a flag "
            "with the cost ratio at 1: label; need ratio a flag with the label gap at 1: base rate). Need measured "
            "by need_true_next is ground truth, known only on a synthetic cohort; any other need measure is a "
            "recorded proxy, which carries the access gap it should detect, and statements give the other measure "
            "beside. Capacity and allocation statements read the threshold sweep at twice the capacity and the "
            "counterfactual allocation by need or by a need-trained model. People affected are per 100,000 of the "
            "audited population, computed from published (disclosure-controlled) shares and counts only.",
        ),
        (
            "Disclosure control",
            (
                f"{disclosure.describe().capitalize()}. Rates are recomputed from rounded numerators and "
                "denominators; differences and ratios against the reference group from those rates; a statistic on "
                "a suppressed count is suppressed with it; and within every partition of a total (the groups of an "
                "attribute, the cells of an intersection sharing one component, the bins of a curve) a second cell "
                "is suppressed wherever one alone would be, so that no suppressed count can be recovered by "
                "subtraction. Curve means are suppressed where a bin holds too few people. The report holds no "
                "row-level data."
                if disclosure.enabled
                else "Disclosure control was switched off for this report: counts of 1 to 7 people are published "
                "exactly. Do not publish it."
            ),
        ),
        (
            "Data",
            "The data are synthetic: a structural causal model of an English-NHS-like population in which every "
            "mechanism that separates cost from need (unequal access to planned care, under-recording of diagnoses) "
            "is a named, documented scenario setting. Findings describe the scenario, not any real population or "
            "model in use."
            if synthetic
            else "The data were supplied by the user; phm-audit checked their columns and values but cannot check "
            "how they were collected or whether the outcomes measure what they are named for (PROBAST outcome "
            "domain).",
        ),
        (
            "Limitations",
            "Groups smaller than the minimum size are not reported. Intersections are fine-grained and their "
            "intervals wide. A model can pass every check here and still cause fairness-related harm through how "
            "it is used; these results assess the score, not the service around it. Reporting follows TRIPOD+AI "
            "(item 3c, health inequalities).",
        ),
    ]
    for title, text in paras:
        sec.blocks.append(Block("h3", title))
        sec.blocks.append(Block("p", text))
    return sec


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("phm_audit.report", "templates"),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


class PendingPage:
    """An HTML page whose figures are still being drawn (see :func:`start_page`).

    :meth:`result` waits for the figures and returns the page; :meth:`close` stops the drawing if the
    page is not wanted after all (an error elsewhere).
    """

    def __init__(self, text: str, figures: figs.FigureBatch) -> None:
        self._text = text
        self._figures = figures

    def result(self) -> str:
        """The page, with every figure in place."""
        return self._figures.fill(self._text)

    def close(self) -> None:
        """Stop drawing figures, if any are still being drawn."""
        self._figures.close()


def start_page(
    result: AuditResult,
    *,
    findings: Sequence[Finding],
    provenance: Mapping[str, Any],
    disclosure: DisclosureControl,
    rules: FindingRules,
    name: str,
    n_jobs: int = 1,
    headline: Sequence[Statement] = (),
) -> PendingPage:
    """Lay out the report page and start drawing its figures; :func:`render_html` without the wait.

    The caller can do other work (write the tables) while the figures are drawn, then take the
    page from :meth:`PendingPage.result`. Parameters as :func:`render_html`.
    """
    table = result.table()
    curves = result.curves()
    idx = _Index(table, curves)
    primary = primary_operating_point(result)
    synthetic = bool(provenance.get("synthetic"))
    batch = figs.FigureBatch()
    with batch.collecting():  # figures are drawn after the layout, together, in n_jobs processes
        sections = [
            _headline(result, headline, idx, primary),
            _summary(result, findings),
            _data(result, provenance, disclosure),
            _bias(result, idx, findings, primary),
            _calibration(result, idx, curves, primary),
            _label_choice(result, idx, rules),
            _thresholds(result, idx),
            _net_benefit(result, idx),
            _judgement(result, idx),
            _explanations(result, idx),
            _methods(result, disclosure, rules, synthetic),
        ]
    counts = {g: sum(f.grade == g for f in findings) for g in GRADES}
    template = _environment().get_template("report.html.j2")
    text = template.render(
        name=name,
        sections=sections,
        counts=counts,
        provenance=provenance,
        disclosure=disclosure,
        synthetic=synthetic,
        version=__version__,
        n=result.cohort.get("n"),
        svg_css=figs.SVG_PAGE_CSS,
        fmt=fmt,
    )
    batch.start(n_jobs)
    return PendingPage(text, batch)


def render_html(
    result: AuditResult,
    *,
    findings: Sequence[Finding],
    provenance: Mapping[str, Any],
    disclosure: DisclosureControl,
    rules: FindingRules,
    name: str,
    n_jobs: int = 1,
    headline: Sequence[Statement] = (),
) -> str:
    """The report as one self-contained HTML page.

    Parameters
    ----------
    result : AuditResult
        The audit, already under disclosure control.
    findings : sequence of Finding
        Graded findings of ``result``.
    provenance : mapping
        As written to ``audit.json`` (tool version, scenario, seed, n, models, supplied files, creation time).
    disclosure : DisclosureControl
        The settings applied (a banner says so when they are off).
    rules : FindingRules
        The rules that graded the findings.
    name : str
        Report name.
    n_jobs : int, default 1
        Processes that draw the figures (forked, on Linux; see :class:`~phm_audit.report.FigureBatch`).
        The page is the same whatever the number.
    headline : sequence of Statement, optional
        What the audit found (:func:`~phm_audit.report._headline.headline`), first on the page.

    Returns
    -------
    str
        HTML with inline styles and inline SVG figures; no network resources.
    """
    page = start_page(
        result,
        findings=findings,
        provenance=provenance,
        disclosure=disclosure,
        rules=rules,
        name=name,
        n_jobs=n_jobs,
        headline=headline,
    )
    try:
        return page.result()
    finally:
        page.close()
