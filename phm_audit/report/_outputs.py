"""Write an audit's machine-readable outputs: the tidy table, curves, JSON and a Markdown summary.

A report folder is written whole or not at all: everything goes to a temporary folder beside the
destination, which replaces the destination only when every file is complete.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import numpy as np
import pandas as pd

from phm_audit.audit._result import AuditResult
from phm_audit.exceptions import PhmInputError

__all__ = ["atomic_dir", "write_machine_outputs"]


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary folder that replaces ``path`` only if the block succeeds."""
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


def _fmt(x: float, pct: bool = False) -> str:
    if x is None or not np.isfinite(x):
        return "undefined"
    return f"{100 * x:.1f}%" if pct else f"{x:.3g}"


def _cell(sub: pd.DataFrame, metric: str, group: str, pct: bool = True) -> str:
    if (metric, group) not in sub.index:
        return ""
    row = cast(pd.Series, sub.loc[(metric, group)])
    if not np.isfinite(row["value"]):
        return f"undefined ({row['reason']})"
    ci = f" ({_fmt(row['ci_low'], pct)} to {_fmt(row['ci_high'], pct)})" if np.isfinite(row["ci_low"]) else ""
    return _fmt(row["value"], pct) + ci


def summary_markdown(result: AuditResult) -> str:
    """A short Markdown summary: who is flagged against who has the highest need, and the label gaps."""
    table = result.table()
    lines = [
        "# phm-audit summary",
        "",
        f"{result.cohort.get('n', 0):,} people audited"
        + (f"; scenario {result.cohort['scenario']}" if result.cohort.get("scenario") else "")
        + f"; high need measured by `{result.cohort.get('high_need_target')}`.",
        "",
    ]
    for model in result.models:
        name = model["name"]
        lines += [
            f"## {name} ({model['kind']}" + (f", predicts {model['target']})" if model.get("target") else ")"),
            "",
        ]
        op = result.spec.operating_points[min(1, len(result.spec.operating_points) - 1)]
        fair = table[(table["model"] == name) & (table["analysis"] == "fairness")]
        op_name = fair["operating_point"].iloc[0] if len(fair) else op
        ops = list(dict.fromkeys(fair["operating_point"]))
        if len(ops) > 1:
            op_name = ops[1]
        for attribute in result.groups:
            sub = fair[(fair["attribute"] == attribute) & (fair["operating_point"] == op_name)].set_index(
                ["metric", "group"]
            )
            if sub.empty:
                continue
            lines += [
                f"### {attribute} at {op_name}",
                "",
                "| group | n | flagged share (95% CI) | high-need share | selection ratio at equal need |",
                "|---|---|---|---|---|",
            ]
            for group in result.groups[attribute]["labels"]:
                n = sub.loc[("n", group), "value"] if ("n", group) in sub.index else np.nan
                lines.append(
                    f"| {group} | {int(n) if np.isfinite(n) else ''} | {_cell(sub, 'flagged_share', group)} | "
                    f"{_cell(sub, 'high_need_share', group)} | "
                    f"{_cell(sub, 'selection_ratio_at_equal_need', group, False)} |"
                )
            lines.append("")
        gaps = table[(table["model"] == name) & (table["metric"] == "label_gap_at_equal_score")]
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
                    else f"undefined ({row.reason})"
                )
                lines.append(f"| {row.attribute} | {row.group} | {row.target} | {value} | {row.n} |")
            lines.append("")
    if result.notes:
        lines += ["## Notes", "", *[f"- {n}" for n in result.notes], ""]
    return "\n".join(lines)


def write_machine_outputs(result: AuditResult, folder: Path) -> None:
    """Write ``metrics.csv``, ``curves.csv``, ``audit.json`` and ``summary.md`` into ``folder``."""
    result.table().to_csv(folder / "metrics.csv", index=False, lineterminator="\n")
    result.curves().to_csv(folder / "curves.csv", index=False, lineterminator="\n")
    with open(folder / "audit.json", "w", encoding="utf-8") as fh:
        json.dump(result.to_dict(), fh, indent=1, sort_keys=False, allow_nan=False)
        fh.write("\n")
    (folder / "summary.md").write_text(summary_markdown(result), encoding="utf-8")


def read_metrics(path: str | Path) -> pd.DataFrame:
    """Read a ``metrics.csv`` back (for comparing reports)."""
    return pd.read_csv(path, keep_default_na=False, na_values=[""])
