"""The words of a release bundle: what each column holds, which metrics a file has, which disclosure
controls were applied, and the context file and README an output checker reads.

Text only: :mod:`phm_audit.report._bundle` assembles the outputs and writes them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from phm_audit.audit._metrics import MetricDecl, UndeclaredMetricError, lookup
from phm_audit.report._control import PRESETS, DisclosureControl
from phm_audit.report._figure_data import NET_BENEFIT_GAIN
from phm_audit.report._outputs import _md

__all__ = [
    "AGGREGATE_COLUMNS",
    "FileInfo",
    "Output",
    "context_markdown",
    "count_cells",
    "declaration",
    "disclosure_lines",
    "readme_markdown",
]

#: What each column a bundle may hold means. A column not listed here is never written (it could hold
#: something other than an aggregate), so this is also the bundle's allow-list of columns.
COLUMN_WORDS: dict[str, str] = {
    "model": "the risk model (score) audited",
    "analysis": "the analysis that made the row (fairness, calibration, thresholds, ...)",
    "attribute": "the protected attribute the groups belong to; `a x b` is an intersection; `all` is everyone",
    "group": "the group of the attribute (`all`: everyone); a label, not a person",
    "operating_point": "the decision rule: `top_3pct` flags the 3% with the highest scores, `top_k_2000` the "
    "2,000 highest, `score_ge_0.3` a score of at least 0.3, `score_bins_20` 20 score bins; a capacity in it is "
    "a count under disclosure control",
    "metric": "the metric's name; each is described under 'Metrics' below, from phm-audit's metric registry",
    "value": "the metric's value after disclosure control; empty when suppressed or undefined (see `reason`)",
    "ci_low": "lower end of the 95% bootstrap interval of `value` (empty where `value` is)",
    "ci_high": "upper end of the 95% bootstrap interval of `value` (empty where `value` is)",
    "n": "people the value is computed on (what `n` counts for each metric is under 'Metrics'): a count, "
    "rounded, empty when suppressed",
    "target": "the outcome measured against (a need or cost column of the data; `predicted` before it: the model's "
    "prediction of it)",
    "feature": "the model input an explanation is about (explanations only)",
    "reason": "why `value` is empty, in words made by phm-audit (numbers in it are under disclosure control)",
    "reason_code": "why `value` is empty, as a code: `undefined` (the audit could not compute it), `suppressed` "
    "(it counts or is made of too few people), `suppressed_complement` (its complement does), "
    "`suppressed_secondary` (complementary suppression: hidden so a suppressed value cannot be derived)",
    "bins": "how people are binned by score: `decile`, `percentile` (equal-sized rank bins) or `reliability` "
    "(bins of the predicted value)",
    "bin": "the bin's number, 0 = the lowest scores",
    "mean": "mean of `target` among the people in the bin or band; empty where the bin is suppressed",
    "fmt": "how the report prints `value`: `percent` (a fraction shown as per cent), `number`, `count` or `money`",
    "x": "the horizontal position in the figure",
    "band": "band of 5 percentiles of the score (0 = the lowest scores)",
    "percentile": "the band's mean percentile of the score, weighted by its bins' published counts",
    "predicted": "mean predicted value in the bin",
    "observed": "mean observed `target` in the bin",
    "rank": "the feature's rank (0 = the largest); a rank, not a count",
    "reference": "`yes` for the attribute's reference group, against which ratios and differences are taken",
}
AGGREGATE_COLUMNS = frozenset(COLUMN_WORDS)

#: The words of ``x`` in each figure that has it, by the start of the figure's id.
_X_WORDS = {
    "fig-thresholds": "capacity: the per cent of the population flagged",
    "fig-net-benefit": "threshold probability of the net benefit",
}


@dataclass
class Output:
    """One output of a bundle: a table (in one or more CSV parts) or a figure (an SVG and its CSV)."""

    stem: str
    title: str
    about: str
    parts: list[pd.DataFrame]
    csv_names: list[str]
    analysis: str = "*"
    svg: str | None = None
    extra: list[str] = field(default_factory=list)
    metric: str | None = None  # the metric every ``value`` is, when the frame has no ``metric`` column


@dataclass(frozen=True)
class FileInfo:
    """A file written: its name, rows (None for an SVG) and SHA-256."""

    name: str
    rows: int | None
    sha256: str


def declaration(metric: str, analysis: str) -> MetricDecl | None:
    """The registry's declaration of a metric, or None (the figures' net benefit over the best default)."""
    try:
        return lookup(metric, analysis)
    except UndeclaredMetricError:
        return None


def count_cells(frame: pd.DataFrame, analysis: str = "*") -> dict[str, np.ndarray]:
    """Which cells of ``frame`` are numbers of people: ``{column: rows}``.

    ``n`` always; ``value`` and its interval where the row's metric is a count (by the registry, or by
    the figure's ``fmt``).
    """
    out: dict[str, np.ndarray] = {}
    if "n" in frame.columns:
        out["n"] = np.ones(len(frame), dtype=bool)
    counts = np.zeros(len(frame), dtype=bool)
    if "metric" in frame.columns:
        analyses = frame["analysis"].astype(str) if "analysis" in frame.columns else pd.Series(analysis, frame.index)
        pairs = pd.MultiIndex.from_arrays([analyses, frame["metric"].astype(str)])
        kinds = {(a, m): getattr(declaration(m, a), "kind", "") for a, m in dict.fromkeys(pairs)}
        counts |= np.array([kinds[p] == "count" for p in pairs], dtype=bool)
    if "fmt" in frame.columns:
        counts |= (frame["fmt"].astype(str) == "count").to_numpy()
    for col in ("value", "ci_low", "ci_high"):
        if col in frame.columns and counts.any():
            out[col] = counts
    return out


def disclosure_lines(control: DisclosureControl) -> list[str]:
    """The controls applied to every output, as a Markdown list."""
    source = (
        f"the rules are {PRESETS[control.preset_name].source} (preset `{control.preset_name}`)"
        if control.preset_name
        else "the rules were set by the analyst (no named preset)"
    )
    t = control.threshold
    return [
        f"- {source};",
        f"- threshold: every count of 1 to {t} people is suppressed (left empty; `reason_code` `suppressed`); "
        "0 is published;",
        f"- rounding: every other count is rounded to the nearest {control.rounding} (halves up), and a count "
        f"above {t} never rounds to {t} or below;",
        "- complementary (secondary) suppression: within every published total (the groups of an attribute, an "
        "intersection's cells with their parent groups, a group's need bands with the group, the groups and bins "
        "of a curve) no suppressed cell is left alone, so none can be recovered by subtraction "
        "(`suppressed_secondary`);",
        "- rates and shares are recomputed from the rounded counts, and differences and ratios from those rates;",
        f"- a statistic computed on 1 to {t} people (a mean, a ratio, an interval) is suppressed with its count;",
        "- capacities in operating-point names and counts in the `reason` words are under the same rules.",
    ]


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in rows]
    return lines


def _metric_rows(output: Output) -> list[list[str]]:
    frame = pd.concat(output.parts, ignore_index=True) if output.parts else pd.DataFrame()
    if "metric" in frame.columns:
        metrics = frame["metric"].astype(str)
    elif output.metric is not None and "value" in frame.columns:
        metrics = pd.Series(output.metric, frame.index)
    else:
        return []
    analyses = frame["analysis"].astype(str) if "analysis" in frame.columns else pd.Series(output.analysis, frame.index)
    rows = []
    for a, m in dict.fromkeys(zip(analyses, metrics, strict=True)):
        decl = declaration(m, a)
        if m == NET_BENEFIT_GAIN:
            rows.append([m, a, "difference", "net benefit minus the better of treating everyone and no one", "", ""])
        elif decl is not None:
            n_counts = {"denominator": "the denominator", "numerator": "the numerator", "value": "the value"}
            parts = " / ".join(p for p in (decl.numerator, decl.denominator) if p)
            rows.append([m, a, decl.kind, decl.label, n_counts.get(decl.n_role, "the people it is computed on"), parts])
    return rows


def context_markdown(
    output: Output, files: Sequence[FileInfo], control: DisclosureControl, *, version: str, max_rows: int
) -> str:
    """The context file of one output: what it is, its files, columns, metrics and the controls applied."""
    lines = [f"# {_md(output.title)}", "", _md(output.about), ""]
    lines += output.extra
    lines += ["## Files", ""]
    lines += _table(
        ["file", "rows", "SHA-256"], [[f.name, "" if f.rows is None else f"{f.rows:,}", f.sha256] for f in files]
    )
    if len(output.csv_names) > 1:
        lines += [
            "",
            f"The table has more than {max_rows:,} rows, so it is split into {len(output.csv_names)} parts; "
            "read in order, they concatenate (under one header) to the whole table.",
        ]
    frame = pd.concat(output.parts, ignore_index=True) if output.parts else pd.DataFrame()
    x_words = next((w for p, w in _X_WORDS.items() if output.stem.startswith(p)), COLUMN_WORDS["x"])
    words = {**COLUMN_WORDS, "x": x_words}
    lines += ["", "## Columns", ""]
    lines += _table(["column", "what it holds"], [[c, words[str(c)]] for c in frame.columns])
    counts = count_cells(frame, output.analysis)
    if counts:
        described = ["`n`" if c == "n" else f"`{c}` of count metrics" for c in counts]
        lines += ["", f"Columns that count people: {', '.join(described)}."]
    metric_rows = _metric_rows(output)
    if metric_rows:
        lines += ["", "## Metrics", "", "From phm-audit's metric registry (`phm_audit/audit/_metrics.py`).", ""]
        lines += _table(["metric", "analysis", "kind", "label", "`n` counts", "made of"], metric_rows)
    lines += ["", "## Disclosure control applied", "", *disclosure_lines(control)]
    if "reason_code" in frame.columns:
        codes = frame["reason_code"].astype(str).value_counts()
        said = [
            f"{int(codes.get(c, 0)):,} {c}" for c in ("suppressed", "suppressed_complement", "suppressed_secondary")
        ]
        lines += ["", f"In this table, values left empty by disclosure control (by `reason_code`): {', '.join(said)}."]
    else:
        shown = next((c for c in ("value", "mean", "observed") if c in frame.columns), None)
        if shown is not None:
            empty = int(pd.to_numeric(frame[shown], errors="coerce").isna().sum())
            lines += ["", f"In this file, {empty:,} rows have an empty `{shown}` (suppressed or undefined)."]
    lines += [
        "",
        f"Made by phm-audit {version}. Every row is an aggregate over people; no row describes one person.",
        "",
    ]
    return "\n".join(lines)


def readme_markdown(
    *,
    title: str,
    outputs: Sequence[tuple[Output, str, Sequence[FileInfo]]],
    control: DisclosureControl,
    cohort: Mapping[str, Any],
    models: Sequence[str],
    attributes: Sequence[str],
    version: str,
    max_rows: int,
    created: str | None,
) -> str:
    """The bundle's ``README.md``: what it is, the controls applied, and every file with its context file."""
    n = cohort.get("n")
    audited = f"{n:,} people (rounded)" if isinstance(n, int) else "a number of people that is suppressed"
    lines = [
        f"# Release bundle: {_md(title)}",
        "",
        "Aggregate outputs of an audit of risk-stratification models by phm-audit "
        f"{version}, made for output checking in a secure data environment. The audit covered {audited}; "
        f"models: {', '.join(_md(m) for m in models)}; attributes: {', '.join(_md(a) for a in attributes)}.",
        "",
        "## Disclosure control",
        "",
        f"{_md(control.describe())}.",
        "",
        *disclosure_lines(control),
        "",
        "## What is here, and what is not",
        "",
        f"- CSV tables of at most {max_rows:,} rows each: the audit's metrics by analysis (`metrics_*.csv`), "
        "the calibration curves by kind of bin (`curves_*.csv`) and the group sizes (`groups.csv`); a longer "
        "table is split into numbered parts (`_1`, `_2`, ...) that concatenate in order;",
        "- each figure of the report as an SVG, with a CSV of exactly the numbers it draws;",
        "- beside each output, `<name>.context.md`: what each column holds, the metrics, the controls applied, "
        "the rows and the SHA-256 of each file; `.phm-audit-manifest.json` lists the files phm-audit wrote;",
        "- not here: the HTML report, `audit.json`, the findings and their words, notes, file names and paths "
        "from the analyst's machine, and any row-level data. The curves leave out the lowest and highest score "
        "of each bin (each is one person's score).",
        "- the numbers are those of the phm-audit report made with the same disclosure control.",
        "",
        "## Files",
        "",
    ]
    rows = []
    for output, context, files in outputs:
        for f in files:
            rows.append([output.title, f.name, "" if f.rows is None else f"{f.rows:,}", f.sha256, context])
    lines += _table(["output", "file", "rows", "SHA-256", "context"], rows)
    if created:
        lines += ["", f"Created {created}."]
    lines.append("")
    return "\n".join(lines)
