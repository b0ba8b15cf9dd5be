"""The blocks of the HTML report: sections, tables and cells, values formatted as the metric registry
says (:mod:`phm_audit.audit._metrics`), and fast lookups of the tidy table."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from phm_audit.audit import METRICS, MetricDecl, lookup
from phm_audit.audit._metrics import UndeclaredMetricError
from phm_audit.audit._result import AuditResult
from phm_audit.report import _figures as figs
from phm_audit.report._derived import derivation
from phm_audit.report._rules import GRADES

__all__ = [
    "SECTIONS",
    "Block",
    "Cell",
    "Index",
    "Section",
    "Table",
    "finite",
    "fmt",
    "group_rows",
    "group_sizes",
    "n_cell",
    "single_attributes",
    "value_cell",
    "worst",
]

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


def finite(x: Any) -> bool:
    """Whether ``x`` is a finite number."""
    try:
        return x is not None and x is not pd.NA and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


#: Counts that are changes, printed with their sign.
_SIGNED_COUNTS = ("equal_tpr_change_in_flagged",)


def _declaration(metric: str, analysis: str) -> MetricDecl | None:
    try:
        return lookup(metric, analysis)
    except UndeclaredMetricError:
        pass
    # a metric declared for one analysis only, asked for without its analysis
    for decl in METRICS:
        if decl.name == metric or (decl.family and metric.startswith(decl.name)):
            return decl
    return None  # a name that is no metric (several joined): printed as a number


def _in_points(metric: str, analysis: str) -> bool:
    """A difference of two per cents (a tpr difference, an unmet-need gap): said in percentage points."""
    recipe = derivation(metric)
    if recipe is None or recipe[0] != "difference":
        return False
    base = _declaration(recipe[1], analysis)
    return base is not None and base.fmt == "percent"


def fmt(metric: str, x: Any, analysis: str = "*") -> str:
    """A value in words, as the metric registry formats it: counts whole, per cents with one decimal,
    differences of per cents in points, ratios and other numbers to 2 decimals."""
    if not finite(x):
        return "not reported"
    v = float(x)
    decl = _declaration(metric, analysis)
    if decl is not None and decl.fmt == "count":
        return f"{v:+,.0f}" if metric in _SIGNED_COUNTS else f"{v:,.0f}"
    if decl is not None and decl.kind == "difference" and _in_points(metric, analysis):
        return f"{100 * v:+.1f} pts"
    if decl is not None and decl.fmt == "percent":
        return f"{100 * v:.1f}%"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.2f}" if abs(v) >= 0.01 or v == 0 else f"{v:.2g}"


def n_cell(x: Any) -> Cell:
    """A group's n, or a suppressed one."""
    return Cell(f"{int(x):,}") if finite(x) else Cell("*", "suppressed", "na")


def value_cell(row: Mapping[str, Any] | None, metric: str | None = None) -> Cell:
    """Value with its interval, or 'not reported' with the reason."""
    if row is None:
        return Cell("", "", "na")
    metric = metric or str(row["metric"])
    analysis = str(row.get("analysis") or "*")
    if not finite(row["value"]):
        reason = str(row.get("reason") or "undefined")
        if str(row.get("reason_code") or "").startswith("suppressed"):  # disclosure control hid it
            return Cell("*", "suppressed: " + reason.rsplit(": ", 1)[-1], "na")
        return Cell("not reported", reason, "na")
    text = fmt(metric, row["value"], analysis)
    if finite(row["ci_low"]) and finite(row["ci_high"]):
        lo, hi = fmt(metric, row["ci_low"], analysis), fmt(metric, row["ci_high"], analysis)
        return Cell(text, f"{lo} to {hi}")
    return Cell(text)


class Index:
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


def single_attributes(result: AuditResult, single: bool = True) -> dict[str, tuple[list[str], str | None]]:
    """``{attribute: (groups, reference)}``; with ``single``, intersections (with ``components``) left out."""
    out = {}
    for attribute, info in result.groups.items():
        if single and info.get("components"):
            continue
        out[attribute] = ([str(g) for g in info.get("labels", [])], str(info.get("reference", "")) or None)
    return out


def group_sizes(result: AuditResult, attribute: str) -> dict[str, Any]:
    """``{group: n}`` of one attribute."""
    info = result.groups.get(attribute, {})
    return dict(zip(map(str, info.get("labels", [])), info.get("sizes", []), strict=False))


def worst(grades: Iterable[str]) -> str:
    """The worst of some grades (flag before review before ok), or ""."""
    grades = list(grades)
    for g in GRADES:
        if g in grades:
            return g
    return ""


def group_rows(result: AuditResult) -> list[tuple[str, str]]:
    """(attribute, group) of every single attribute, in order."""
    return [(a, g) for a, (groups, _) in single_attributes(result).items() for g in groups]
