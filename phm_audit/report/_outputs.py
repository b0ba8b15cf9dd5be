"""Write an audit's files: the tidy table, curves, JSON and a Markdown summary, atomically.

A report folder is written whole or not at all: everything goes to a temporary folder beside the
destination, which replaces the destination only when every file is complete.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from phm_audit.audit._result import METRIC_COLUMNS, AuditResult
from phm_audit.exceptions import PhmInputError
from phm_audit.report._disclosure import DisclosureControl, disclose_result
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
    "atomic_dir",
    "read_metrics",
    "summary_markdown",
    "write_csv",
    "write_json",
    "write_machine_outputs",
    "write_tables_and_json",
    "write_text",
]


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary folder that replaces ``path`` only if the block succeeds.

    Parameters
    ----------
    path : str or Path
        The folder to create or replace.

    Yields
    ------
    Path
        A temporary folder beside ``path``; it is removed if the block raises.
    """
    final = Path(path)
    parent = final.parent if str(final.parent) else Path(".")
    if final.exists() and not final.is_dir():
        raise PhmInputError(f"cannot write the report to {final}: it is a file; choose a folder with --out")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PhmInputError(f"cannot create the folder {parent}: {exc.strerror}; choose another --out") from None
    if not os.access(parent, os.W_OK):
        raise PhmInputError(f"cannot write in {parent}: permission denied; choose another --out")
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".partial", dir=parent))
    try:
        yield tmp
        os.chmod(tmp, 0o755)
        if final.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".old", dir=parent))
            os.replace(final, old / final.name)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_text(path: Path, text: str) -> None:
    """Write UTF-8 text with Unix line endings."""
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(text)


def write_csv(path: Path, frame: pd.DataFrame) -> None:
    """Write a frame as CSV (no index, Unix line endings, empty cells for missing values)."""
    frame.to_csv(path, index=False, lineterminator="\n")


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


def _cell(sub: Mapping[tuple[str, str], Mapping[str, Any]], metric: str, group: str, pct: bool = True) -> str:
    row = sub.get((metric, group))
    if row is None:
        return ""
    value, low, high = (float(row[c]) for c in ("value", "ci_low", "ci_high"))
    if not np.isfinite(value):
        return f"not reported ({row['reason']})"
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
        + (f"; scenario {result.cohort['scenario']}" if result.cohort.get("scenario") else "")
        + f"; high need measured by `{result.cohort.get('high_need_target')}`.",
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
            lines += [f"- **{grade}**: {f.text}" for f in items[:max_findings]]
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
            f"## {name} ({model.get('kind')}" + (f", predicts {model['target']})" if model.get("target") else ")"),
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
                f"### {attribute} at {describe_operating_point(op_name)}",
                "",
                "| group | n | flagged share (95% CI) | high-need share | selection ratio at equal need |",
                "|---|---|---|---|---|",
            ]
            info = result.groups[attribute]
            for group, size in zip(info["labels"], info["sizes"], strict=False):
                lines.append(
                    f"| {group} | {'*' if size is None else f'{int(size):,}'} | "
                    f"{_cell(sub, 'flagged_share', group)} | {_cell(sub, 'high_need_share', group)} | "
                    f"{_cell(sub, 'selection_ratio_at_equal_need', group, False)} |"
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
                lines.append(f"| {row.attribute} | {row.group} | {row.target} | {value} | {size} |")
            lines.append("")
    if result.notes:
        lines += ["## Notes", "", *[f"- {n}" for n in result.notes], ""]
    return "\n".join(lines)


def write_machine_outputs(
    result: AuditResult,
    folder: Path,
    *,
    disclosure: DisclosureControl | None = None,
    rules: FindingRules | None = None,
    provenance: Mapping[str, Any] | None = None,
    deterministic: bool = False,
) -> None:
    """Write ``metrics.csv``, ``curves.csv``, ``audit.json`` and ``summary.md`` into ``folder``.

    The same files as :func:`phm_audit.report.write_report` but ``index.html``, written in place
    (not atomically). Every file is made after disclosure control.

    Parameters
    ----------
    result : AuditResult
        The audit.
    folder : Path
        An existing folder.
    disclosure : DisclosureControl, optional
        Default ``DisclosureControl()`` (on).
    rules : FindingRules, optional
        Default ``FindingRules()``.
    provenance : mapping, optional
        See :func:`~phm_audit.report.build_provenance`.
    deterministic : bool, default False
        Leave out the creation time.
    """
    disclosure = DisclosureControl() if disclosure is None else disclosure
    rules = FindingRules() if rules is None else rules
    published = disclose_result(result, disclosure)
    found, statements = report_findings(published, rules)
    prov = build_provenance(published, provenance, deterministic=deterministic)
    name = Path(folder).name or "report"
    doc = report_document(
        published, found, name=name, provenance=prov, disclosure=disclosure, rules=rules, headline=statements
    )
    write_tables_and_json(Path(folder), published, doc)
    summary = summary_markdown(published, found, disclosure=disclosure, headline=statements)
    write_text(Path(folder) / "summary.md", summary)


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
    return frame
