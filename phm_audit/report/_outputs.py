"""Write an audit's files: the tidy table, curves, JSON and a Markdown summary, atomically and safely.

A report folder is written whole or not at all: everything goes to a temporary folder beside the
destination, whose files take the destination's place only when every file is complete. phm-audit
never deletes a file it did not write: each report folder holds a manifest of its files, and only
those are ever replaced (see :func:`atomic_dir`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from phm_audit._folders import MANIFEST_NAME, atomic_dir, read_manifest
from phm_audit._folders import check_folder as check_report_folder
from phm_audit.audit import lookup
from phm_audit.audit._result import METRIC_COLUMNS, AuditResult
from phm_audit.report._disclosure import DisclosureControl, disclose_provenance, disclose_result
from phm_audit.report._document import build_provenance, document_json, file_entry, report_document
from phm_audit.report._findings import (
    GRADES,
    Finding,
    FindingRules,
    describe_operating_point,
    primary_operating_point,
)
from phm_audit.report._headline import Statement, headline_markdown, report_findings

__all__ = [
    "MANIFEST_NAME",
    "atomic_dir",
    "check_report_folder",
    "neutralise_formulas",
    "read_manifest",
    "read_metrics",
    "summary_markdown",
    "write_csv",
    "write_json",
    "write_machine_outputs",
    "write_tables_and_json",
    "write_text",
]


def write_text(path: Path, text: str) -> None:
    """Write UTF-8 text with Unix line endings."""
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(text)


#: First characters that make a spreadsheet read a cell as a formula (OWASP, "CSV Injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """Prefix ``'`` to text cells that a spreadsheet would run as a formula; numbers are left as they are.

    Parameters
    ----------
    frame : pandas.DataFrame

    Returns
    -------
    pandas.DataFrame
        A copy when any cell changed, else ``frame`` itself.

    Examples
    --------
    >>> frame = pd.DataFrame({"group": ["0-17", "=1+1", "-x"], "value": [-1.0, 2.0, 3.0]})
    >>> neutralise_formulas(frame)["group"].tolist()
    ['0-17', "'=1+1", "'-x"]
    """
    out = frame
    for col in frame.columns:
        if frame[col].dtype != object and not isinstance(frame[col].dtype, pd.StringDtype):
            continue
        cells = frame[col]
        is_text = cells.map(lambda v: isinstance(v, str)).to_numpy(dtype=bool)
        texts = cells.where(is_text, "").astype(str)
        risky = is_text & texts.str.startswith(FORMULA_STARTS).to_numpy(dtype=bool)
        if risky.any():
            if out is frame:
                out = frame.copy()
            out[col] = cells.where(~risky, "'" + texts)
    return out


def write_csv(path: Path, frame: pd.DataFrame) -> None:
    """Write a frame as CSV (no index, Unix line endings, empty cells for missing values).

    Text cells that a spreadsheet would run as a formula are neutralised (:func:`neutralise_formulas`).
    """
    neutralise_formulas(frame).to_csv(path, index=False, lineterminator="\n")


def _md(text: Any) -> str:
    """Text from the input (a group, model or file name) made safe for Markdown: no HTML, no table pipes."""
    return (
        str(text)
        .replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace("|", "\\|")
        .replace("\r", " ")
        .replace("\n", " ")
    )


def write_json(path: Path, doc: Mapping[str, Any]) -> None:
    """Write a JSON document compactly: one top-level item per line, one record of a list per line, no NaN."""
    write_text(path, document_json(doc))


def write_tables_and_json(folder: Path, published: AuditResult, doc: dict[str, Any]) -> None:
    """Write ``metrics.csv`` and ``curves.csv`` of ``published``, then ``audit.json`` naming them.

    Parameters
    ----------
    folder : Path
        Where to write.
    published : AuditResult
        The audit under disclosure control.
    doc : dict
        Its ``audit.json`` document (:func:`~phm_audit.report._document.report_document`); its
        ``files`` are filled in here, with each table's SHA-256.
    """
    entries = []
    for name, frame in (("metrics.csv", published.table()), ("curves.csv", published.curves())):
        write_csv(folder / name, frame)
        entries.append(file_entry(folder / name, frame))
    doc["files"] = entries
    write_json(folder / "audit.json", doc)


def _fmt(x: Any, pct: bool = False) -> str:
    if x is None or x is pd.NA or not np.isfinite(float(x)):
        return "not reported"
    return f"{100 * float(x):.1f}%" if pct else f"{float(x):.3g}"


def _cell(sub: Mapping[tuple[str, str], Mapping[str, Any]], metric: str, group: str) -> str:
    """A fairness value with its interval, as a per cent where the metric registry says so."""
    pct = lookup(metric, "fairness").fmt == "percent"
    row = sub.get((metric, group))
    if row is None:
        return ""
    value, low, high = (float(row[c]) for c in ("value", "ci_low", "ci_high"))
    if not np.isfinite(value):
        return f"not reported ({_md(row['reason'])})"
    ci = f" ({_fmt(low, pct)} to {_fmt(high, pct)})" if np.isfinite(low) else ""
    return _fmt(value, pct) + ci


def summary_markdown(
    result: AuditResult,
    found: Sequence[Finding] = (),
    *,
    disclosure: DisclosureControl | None = None,
    max_findings: int = 20,
    headline: Sequence[Statement] = (),
) -> str:
    """A short Markdown summary: graded findings, who is flagged against who has the highest need, label gaps.

    Parameters
    ----------
    result : AuditResult
        The audit (under disclosure control if the summary is to be published).
    found : sequence of Finding, optional
        Graded findings to list (flags, then reviews).
    disclosure : DisclosureControl, optional
        The settings applied; a warning heads the summary when they are off.
    max_findings : int, default 20
        Most findings listed per grade.
    headline : sequence of Statement, optional
        What the audit found; listed first, under "What this audit found".

    Returns
    -------
    str
    """
    table = result.table()
    lines = ["# phm-audit summary", ""]
    if disclosure is not None and not disclosure.enabled:
        lines += ["**Disclosure control is OFF: exact counts of 1 to 7 people are shown. Do not publish.**", ""]
    n = result.cohort.get("n")
    lines += [
        (f"{n:,} people audited" if isinstance(n, int) else "People audited: suppressed")
        + (f"; scenario {_md(result.cohort['scenario'])}" if result.cohort.get("scenario") else "")
        + f"; high need measured by {_md(result.cohort.get('high_need_target'))}.",
        "",
    ]
    if disclosure is not None:
        lines += [f"Disclosure control: {disclosure.describe()}.", ""]
    if found or headline:
        lines += headline_markdown(headline)
    if found:
        counts = {g: sum(f.grade == g for f in found) for g in GRADES}
        lines += ["## Findings", "", f"{counts['flag']} flag, {counts['review']} review, {counts['ok']} ok.", ""]
        for grade in ("flag", "review"):
            items = [f for f in found if f.grade == grade]
            lines += [f"- **{grade}**: {_md(f.text)}" for f in items[:max_findings]]
            if len(items) > max_findings:
                lines.append(f"- … and {len(items) - max_findings} more {grade} findings in audit.json")
        lines.append("")
    op_name = primary_operating_point(result)
    # split once: comparing every row of the table for each model was most of the time taken here
    wanted = ((table["analysis"] == "fairness") & (table["operating_point"] == op_name)) | (
        table["metric"] == "label_gap_at_equal_score"
    )
    by_model: dict[str, Any] = {str(m): t for m, t in table[wanted].groupby("model", sort=False)}
    empty = table.iloc[:0]
    for model in result.models:
        name = model["name"]
        mine = by_model.get(str(name), empty)
        fair = mine[(mine["analysis"] == "fairness") & (mine["operating_point"] == op_name)]
        gaps = mine[mine["metric"] == "label_gap_at_equal_score"]
        if fair.empty and gaps.empty:
            continue
        lines += [
            f"## {_md(name)} ({_md(model.get('kind'))}"
            + (f", predicts {_md(model['target'])})" if model.get("target") else ")"),
            "",
        ]
        for attribute in result.groups:
            mine = fair[fair["attribute"] == attribute]
            if mine.empty:
                continue
            sub = {
                (str(r["metric"]), str(r["group"])): r
                for r in mine[["metric", "group", "value", "ci_low", "ci_high", "reason"]].to_dict(orient="records")
            }
            lines += [
                f"### {_md(attribute)} at {_md(describe_operating_point(op_name, result.operating_points))}",
                "",
                "| group | n | flagged share (95% CI) | high-need share | selection ratio at equal need |",
                "|---|---|---|---|---|",
            ]
            info = result.groups[attribute]
            for group, size in zip(info["labels"], info["sizes"], strict=False):
                lines.append(
                    f"| {_md(group)} | {'*' if size is None else f'{int(size):,}'} | "
                    f"{_cell(sub, 'flagged_share', group)} | {_cell(sub, 'high_need_share', group)} | "
                    f"{_cell(sub, 'selection_ratio_at_equal_need', group)} |"
                )
            lines.append("")
        if len(gaps):
            lines += [
                "### Need and cost at equal score (label gap = need ratio / cost ratio; 1 = no gap)",
                "",
                "| attribute | group | target | label gap (95% CI) | n |",
                "|---|---|---|---|---|",
            ]
            for row in gaps.itertuples():
                if row.group == result.groups[row.attribute]["reference"]:
                    continue
                value = (
                    f"{_fmt(row.value)} ({_fmt(row.ci_low)} to {_fmt(row.ci_high)})"
                    if np.isfinite(row.value)
                    else f"not reported ({row.reason})"
                )
                size = "*" if row.n is pd.NA else f"{int(row.n):,}"
                lines.append(f"| {_md(row.attribute)} | {_md(row.group)} | {_md(row.target)} | {_md(value)} | {size} |")
            lines.append("")
    if result.notes:
        lines += ["## Notes", "", *[f"- {_md(n)}" for n in result.notes], ""]
    return "\n".join(lines)


def write_machine_outputs(
    result: AuditResult,
    folder: Path,
    *,
    disclosure: DisclosureControl | None = None,
    rules: FindingRules | None = None,
    provenance: Mapping[str, Any] | None = None,
    deterministic: bool = False,
    overwrite: bool = False,
) -> Path:
    """Write ``metrics.csv``, ``curves.csv``, ``audit.json`` and ``summary.md`` into ``folder``.

    The same files as :func:`phm_audit.report.write_report` but ``index.html`` (no figures are drawn),
    written the same way: atomically, with a manifest, under a lock, never replacing or deleting a
    file phm-audit did not write (see :func:`atomic_dir`). Every file is made after disclosure control.

    Parameters
    ----------
    result : AuditResult
        The audit.
    folder : Path
        The output folder (made if missing).
    disclosure : DisclosureControl, optional
        Default ``DisclosureControl()`` (on).
    rules : FindingRules, optional
        Default ``FindingRules()``.
    provenance : mapping, optional
        See :func:`~phm_audit.report.build_provenance`.
    deterministic : bool, default False
        Leave out the creation time.
    overwrite : bool, default False
        Write into a folder that holds files phm-audit did not write (they are kept).

    Returns
    -------
    Path
        The folder.

    Raises
    ------
    PhmInputError
        The folder cannot be written, holds other files (without ``overwrite``), or another run is writing it.
    """
    files = ("audit.json", "metrics.csv", "curves.csv", "summary.md")
    check_report_folder(folder, overwrite=overwrite, files=files)
    disclosure = DisclosureControl() if disclosure is None else disclosure
    rules = FindingRules() if rules is None else rules
    published = disclose_result(result, disclosure)
    found, statements = report_findings(published, rules, disclosure)
    prov = build_provenance(published, disclose_provenance(provenance, disclosure), deterministic=deterministic)
    name = Path(folder).name or "report"
    doc = report_document(
        published, found, name=name, provenance=prov, disclosure=disclosure, rules=rules, headline=statements
    )
    summary = summary_markdown(published, found, disclosure=disclosure, headline=statements)
    with atomic_dir(folder, overwrite=overwrite, files=files) as tmp:
        write_tables_and_json(tmp, published, doc)
        write_text(tmp / "summary.md", summary)
    return Path(folder)


def read_metrics(path: str | Path) -> pd.DataFrame:
    """Read a ``metrics.csv`` back as the tidy table (for comparing reports).

    Text columns are read as text (a group ``1`` stays ``"1"``, an empty cell is ``""``), ``n`` as
    nullable integers and the numbers as floats, so the frame compares equal to
    :func:`~phm_audit.report.metrics_frame` of the ``audit.json`` beside it.
    """
    numeric = ("value", "ci_low", "ci_high", "n")
    frame = pd.read_csv(
        path,
        keep_default_na=False,
        na_values={c: [""] for c in numeric},
        dtype={c: str for c in METRIC_COLUMNS if c not in numeric},
    )
    frame["n"] = frame["n"].astype("Float64").round().astype("Int64")
    for col in frame.columns:
        if col not in numeric:
            cells = frame[col].astype(str)
            quoted = cells.str.startswith("'") & cells.str[1:2].isin(FORMULA_STARTS)
            if quoted.any():
                frame[col] = cells.where(~quoted, cells.str[1:])
    return frame
