"""Write an audit's files: the tidy table, curves, JSON and a Markdown summary, atomically.

A report folder is written whole or not at all: everything goes to a temporary folder beside the
destination, which replaces the destination only when every file is complete.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from phm_audit.audit._result import AuditResult
from phm_audit.exceptions import PhmInputError
from phm_audit.report._disclosure import DisclosureControl, disclose_result
from phm_audit.report._findings import (
    GRADES,
    Finding,
    describe_operating_point,
    primary_operating_point,
)

__all__ = [
    "atomic_dir",
    "read_metrics",
    "summary_markdown",
    "write_csv",
    "write_json",
    "write_machine_outputs",
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


def write_json(path: Path, doc: Mapping[str, Any], records: Mapping[str, pd.DataFrame] | None = None) -> None:
    """Write a JSON document (no NaN: missing values are ``null``).

    Top-level lists of records get one record per line: readable, diffable and fast. ``records`` maps
    more top-level keys to frames written the same way, straight from pandas' C encoder (floats to 15
    significant digits).
    """
    parts = []
    for key, value in doc.items():
        head = f" {json.dumps(key)}: "
        if isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            body = ",\n".join("  " + json.dumps(v, allow_nan=False, separators=(", ", ": ")) for v in value)
            parts.append(head + "[\n" + body + "\n ]")
        else:
            parts.append(head + json.dumps(value, indent=1, allow_nan=False).replace("\n", "\n "))
    for key, frame in (records or {}).items():
        head = f" {json.dumps(key)}: "
        if frame.empty:
            parts.append(head + "[]")
            continue
        lines = frame.to_json(orient="records", lines=True, double_precision=15).strip().split("\n")
        parts.append(head + "[\n" + ",\n".join("  " + line for line in lines) + "\n ]")
    write_text(path, "{\n" + ",\n".join(parts) + "\n}\n")


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
    for model in result.models:
        name = model["name"]
        mine = table[table["model"] == name]
        fair = mine[(mine["analysis"] == "fairness") & (mine["operating_point"] == op_name)]
        gaps = table[(table["model"] == name) & (table["metric"] == "label_gap_at_equal_score")]
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


def write_machine_outputs(result: AuditResult, folder: Path, *, disclosure: DisclosureControl | None = None) -> None:
    """Write ``metrics.csv``, ``curves.csv``, ``audit.json`` and ``summary.md`` into ``folder``.

    Every file is made after disclosure control (default: ``DisclosureControl()``).

    The full report (with ``index.html``, findings and provenance) is :func:`phm_audit.report.write_report`.
    """
    disclosure = DisclosureControl() if disclosure is None else disclosure
    published = disclose_result(result, disclosure)
    write_csv(folder / "metrics.csv", published.table())
    write_csv(folder / "curves.csv", published.curves())
    doc = published.to_dict()
    doc["disclosure"] = disclosure.to_dict()
    frames = {"metrics": published.table(), "curves": published.curves()}
    write_json(folder / "audit.json", {k: v for k, v in doc.items() if k not in frames}, frames)
    write_text(folder / "summary.md", summary_markdown(published, disclosure=disclosure))


def read_metrics(path: str | Path) -> pd.DataFrame:
    """Read a ``metrics.csv`` back (for comparing reports)."""
    return pd.read_csv(path, keep_default_na=False, na_values=[""])
