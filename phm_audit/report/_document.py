"""The ``audit.json`` document of a report, its schema, and a reader of its metrics.

``audit.json`` (layout :data:`REPORT_SCHEMA_VERSION`) holds what a program reading a report needs
first: provenance, disclosure settings, the finding rules, the headline (what the audit found, at
most 12 statements) and every graded finding (one per effect), the audit's
settings, models and groups, and its metrics, all after disclosure control. It does not repeat
what the two tables beside it hold in full:

- ``metrics.csv`` has every metric row. ``audit.json`` has every row too, except that the sweeps
  (:data:`SWEEP_POINTS`: the threshold sweep over capacities, the decision curves over threshold
  probabilities) are kept at a few readable operating points; ``sweeps`` says which, and how many
  rows ``metrics.csv`` has.
- ``curves.csv`` has the calibration curves by score bin; they are drawn in ``index.html``.

``files`` names both tables with their SHA-256, number of rows and columns, so a reader can check
that the tables beside the document are the ones it describes.

Metrics are stored a vector of groups at a time: one record per model, analysis, attribute,
operating point, metric, target and feature, with the groups and their ``value``, ``ci_low``,
``ci_high``, ``n`` and ``reason`` as parallel arrays (the rows of the tidy table, without
repeating the seven keys on every row). :func:`metrics_frame` turns them back into the tidy table,
for this layout and the 1.0 layout (one record per row).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from phm_audit._version import __version__
from phm_audit.audit._result import METRIC_COLUMNS, RESULT_SCHEMA_VERSION, AuditResult
from phm_audit.exceptions import PhmInputError, PhmTypeError
from phm_audit.report._disclosure import DisclosureControl
from phm_audit.report._findings import Finding, FindingRules
from phm_audit.report._headline import Statement

__all__ = [
    "METRIC_KEY",
    "REPORT_SCHEMA_VERSION",
    "SWEEP_POINTS",
    "build_provenance",
    "document_head",
    "document_json",
    "file_entry",
    "file_sha256",
    "metric_records",
    "metrics_frame",
    "report_document",
    "report_schema",
    "sweep_subset",
    "validate_report_json",
]

#: Version of the ``audit.json`` layout described by ``audit.schema.json``. 2.0: metrics a vector of
#: groups at a time, sweeps at readable operating points, no curves, and ``files`` and ``sweeps``.
#: 2.1: ``reason_code`` beside ``reason``; the primary operating point and what each operating point means.
REPORT_SCHEMA_VERSION = "2.1"

#: Analyses that sweep an operating point over a grid, and the points of the grid ``audit.json``
#: keeps (``index.html`` tabulates the same ones); the whole grid is in ``metrics.csv``.
SWEEP_POINTS: Mapping[str, tuple[str, ...]] = {
    "thresholds": ("top_1pct", "top_3pct", "top_5pct", "top_10pct", "top_20pct", "top_50pct"),
    "net_benefit": ("pt_0.05", "pt_0.1", "pt_0.2", "pt_0.3"),
}
#: A sweep of at most this many operating points is kept whole.
MAX_SWEEP_POINTS = 12
#: Columns that, with the group, identify a row of the tidy table; one metric record per value of them.
METRIC_KEY = ("model", "analysis", "attribute", "operating_point", "metric", "target", "feature")
#: The per-group arrays of a metric record.
METRIC_ARRAYS = ("group", "value", "ci_low", "ci_high", "n", "reason", "reason_code")

_SHA256 = re.compile(r"[0-9a-f]{64}")
_FILE_HOLDS = {
    "metrics.csv": "every metric of the audit (the tidy table), with every point of every sweep",
    "curves.csv": "mean outcome by score bin, per model, attribute, group and target (calibration curves)",
}


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file, as 64 hexadecimal digits (read in blocks, so large files are fine).

    A folder (a Parquet dataset) gets the SHA-256 of its parts' names and hashes, one ``name  sha256``
    line each in name order, so a changed, added or removed part changes it.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "empty"
    >>> _ = p.write_bytes(b"")
    >>> file_sha256(p)[:12]
    'e3b0c44298fc'
    """
    digest = hashlib.sha256()
    if Path(path).is_dir():
        parts = sorted(p for p in Path(path).iterdir() if p.is_file() and not p.name.startswith("."))
        for part in parts:
            digest.update(f"{part.name}  {file_sha256(part)}\n".encode())
        return digest.hexdigest()
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise PhmInputError(f"cannot read supplied file {path} to hash it: {exc.strerror}") from None
    return digest.hexdigest()


def _supplied_files(files: Any) -> list[dict[str, str]]:
    """Normalise supplied files to ``[{"name", "sha256"}]``: a mapping of name to hash or path, or a list of paths."""
    if files is None:
        return []
    if isinstance(files, str | Path):
        files = [files]
    out = []
    if isinstance(files, Mapping):
        for name, value in files.items():
            text = str(value)
            digest = text.lower() if _SHA256.fullmatch(text.lower()) else file_sha256(text)
            out.append({"name": str(name), "sha256": digest})
    elif isinstance(files, Sequence):
        for path in files:
            out.append({"name": Path(str(path)).name, "sha256": file_sha256(path)})
    else:
        raise PhmTypeError(
            "provenance['supplied_files'] must map file names to SHA-256 hashes or paths, or list paths; "
            f"got {type(files).__name__}"
        )
    return sorted(out, key=lambda f: (f["name"], f["sha256"]))


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if np.isfinite(value) else None
    if value is None or isinstance(value, bool | int | str):
        return value
    return str(value)


def build_provenance(
    result: AuditResult, provenance: Mapping[str, Any] | None = None, *, deterministic: bool = False
) -> dict[str, Any]:
    """Where a report comes from: tool version, scenario, seed, n, models, supplied files, creation time.

    Parameters
    ----------
    result : AuditResult
        The audit (under disclosure control: ``n`` is taken from it).
    provenance : mapping, optional
        What the caller knows: ``scenario``, ``seed``, ``supplied_files`` (a mapping of name to SHA-256
        or path, or a list of paths), ``synthetic``, and any other JSON-ready items (``command``).
    deterministic : bool, default False
        Leave out the creation time, so that the same inputs give the same bytes.

    Returns
    -------
    dict
    """
    given = dict(provenance or {})
    given.pop("created", None)
    out: dict[str, Any] = {"tool": "phm-audit", "tool_version": __version__}
    if not deterministic:
        out["created"] = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    out["deterministic"] = bool(deterministic)
    out["scenario"] = _jsonable(given.pop("scenario", result.cohort.get("scenario")))
    out["seed"] = _jsonable(given.pop("seed", result.cohort.get("seed")))
    given.pop("n", None)
    out["n"] = _jsonable(result.cohort.get("n"))
    out["source"] = _jsonable(given.pop("source", result.cohort.get("source")))
    out["synthetic"] = bool(given.pop("synthetic", out["scenario"] is not None))
    out["models"] = [
        {"name": str(m["name"]), "kind": str(m.get("kind") or ""), "target": m.get("target")} for m in result.models
    ]
    out["supplied_files"] = _supplied_files(given.pop("supplied_files", None))
    for key, value in given.items():
        out[str(key)] = _jsonable(value)
    return out


# --- metrics -------------------------------------------------------------------------------------


def _sweep_points(analysis: str, names: Sequence[str]) -> list[str]:
    """The operating points of a sweep that ``audit.json`` keeps, in the sweep's order."""
    names = list(dict.fromkeys(names))
    grid = [n for n in names if n != "all"]
    if len(grid) <= MAX_SWEEP_POINTS:
        return names
    keep = set(SWEEP_POINTS[analysis]) | {"all"}
    return [n for n in names if n in keep]


def sweep_subset(table: pd.DataFrame) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """The rows of the tidy table that ``audit.json`` keeps, and what it leaves to ``metrics.csv``.

    Parameters
    ----------
    table : pandas.DataFrame
        The (disclosure-controlled) tidy table.

    Returns
    -------
    (kept, sweeps) : tuple
        Every row, except the rows of a sweep (:data:`SWEEP_POINTS`) of more than
        :data:`MAX_SWEEP_POINTS` operating points at points other than the readable ones; and per
        sweep present, ``analysis``, ``operating_points`` (how many), ``kept`` (which),
        ``rows_in_file`` and ``rows_kept``.

    Examples
    --------
    >>> import pandas as pd
    >>> ops = [f"top_{p}pct" for p in range(1, 51)]
    >>> table = pd.DataFrame({"analysis": "thresholds", "operating_point": ops, "metric": "tpr"})
    >>> kept, sweeps = sweep_subset(table)
    >>> list(kept["operating_point"]), sweeps[0]["rows_in_file"]
    (['top_1pct', 'top_3pct', 'top_5pct', 'top_10pct', 'top_20pct', 'top_50pct'], 50)
    """
    analysis = table["analysis"].to_numpy(dtype=object)
    keep = np.ones(len(table), dtype=bool)
    sweeps = []
    for name in SWEEP_POINTS:
        rows = analysis == name
        if not rows.any():
            continue
        ops = table["operating_point"].to_numpy(dtype=object)[rows]
        points = _sweep_points(name, ops)
        mine = np.isin(ops, points)
        keep[rows] = mine
        sweeps.append(
            {
                "analysis": name,
                "operating_points": len({o for o in ops if o != "all"}),
                "kept": [p for p in points if p != "all"],
                "rows_in_file": int(rows.sum()),
                "rows_kept": int(mine.sum()),
                "file": "metrics.csv",
            }
        )
    return table[keep], sweeps


def _floats(values: np.ndarray) -> list[float | None]:
    return [None if math.isnan(x) else x for x in np.asarray(values, dtype=np.float64).tolist()]


def metric_records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """The tidy table a vector of groups at a time: one record per value of :data:`METRIC_KEY`.

    Parameters
    ----------
    table : pandas.DataFrame
        Rows of the tidy table (``AuditResult.table()``).

    Returns
    -------
    list of dict
        In order of first appearance; each with the seven keys and the arrays ``group``, ``value``,
        ``ci_low``, ``ci_high``, ``n`` and ``reason`` (missing numbers as None), one entry per row.

    Examples
    --------
    >>> import pandas as pd
    >>> from phm_audit.audit._result import RowBuilder
    >>> rows = RowBuilder()
    >>> rows.add(model="m", analysis="fairness", attribute="sex", groups=["F", "M"], metric="tpr",
    ...          value=[0.5, float("nan")], n=[40, 3], reason=["", "too few"])
    >>> record = metric_records(rows.frame())[0]
    >>> record["group"], record["value"], record["n"], record["reason"]
    (['F', 'M'], [0.5, None], [40, 3], ['', 'too few'])
    """
    if table.empty:
        return []
    codes = table.groupby(list(METRIC_KEY), sort=False, dropna=False).ngroup().to_numpy()
    order = np.argsort(codes, kind="stable")
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    starts = np.concatenate([[0], bounds]).tolist()
    ends = np.concatenate([bounds, [len(order)]]).tolist()
    keys = {c: table[c].astype(str).to_numpy(dtype=object)[order].tolist() for c in METRIC_KEY}
    n = table["n"].to_numpy(dtype=np.float64, na_value=np.nan)[order]
    arrays: dict[str, list[Any]] = {
        "group": table["group"].astype(str).to_numpy(dtype=object)[order].tolist(),
        "value": _floats(table["value"].to_numpy(dtype=np.float64)[order]),
        "ci_low": _floats(table["ci_low"].to_numpy(dtype=np.float64)[order]),
        "ci_high": _floats(table["ci_high"].to_numpy(dtype=np.float64)[order]),
        "n": [None if math.isnan(x) else int(x) for x in n.tolist()],
        "reason": table["reason"].astype(str).to_numpy(dtype=object)[order].tolist(),
        "reason_code": table["reason_code"].astype(str).to_numpy(dtype=object)[order].tolist(),
    }
    out = []
    for start, end in zip(starts, ends, strict=True):
        record: dict[str, Any] = {c: keys[c][start] for c in METRIC_KEY}
        for c in METRIC_ARRAYS:
            record[c] = arrays[c][start:end]
        out.append(record)
    return out


def metrics_frame(doc: Mapping[str, Any]) -> pd.DataFrame:
    """The metrics of a parsed ``audit.json`` as a tidy table, whichever layout it has (1.0 or 2.0).

    Parameters
    ----------
    doc : mapping
        A parsed ``audit.json``.

    Returns
    -------
    pandas.DataFrame
        The columns of ``metrics.csv``; ``n`` as nullable integers. For layout 2.0, the rows that
        ``audit.json`` keeps (see ``doc["sweeps"]`` for the sweep rows it leaves to ``metrics.csv``).

    Raises
    ------
    PhmInputError
        An unknown ``schema_version``.

    Examples
    --------
    >>> doc = {"schema_version": "2.0", "metrics": [
    ...     {"model": "m", "analysis": "fairness", "attribute": "sex", "operating_point": "top_3pct",
    ...      "metric": "tpr", "target": "", "feature": "", "group": ["F", "M"], "value": [0.5, 0.4],
    ...      "ci_low": [0.4, 0.3], "ci_high": [0.6, 0.5], "n": [40, None], "reason": ["", ""]}]}
    >>> frame = metrics_frame(doc)
    >>> frame["group"].tolist(), frame["value"].tolist(), frame["n"].isna().tolist()
    (['F', 'M'], [0.5, 0.4], [False, True])
    """
    version = str(doc.get("schema_version", ""))
    records = list(doc.get("metrics") or [])
    if version.startswith("1."):
        frame = pd.DataFrame.from_records(records, columns=list(METRIC_COLUMNS))
        frame["reason_code"] = np.where(frame["reason"].fillna("").astype(str) == "", "", "undefined")
    elif version.startswith("2."):
        columns: dict[str, list[Any]] = {c: [] for c in METRIC_COLUMNS}
        for record in records:
            size = len(record["group"])
            for c in METRIC_KEY:
                columns[c].extend([record[c]] * size)
            for c in METRIC_ARRAYS:
                if c == "reason_code" and c not in record:  # 2.0: the code is read from the reason
                    columns[c].extend("" if not r else "undefined" for r in record["reason"])
                else:
                    columns[c].extend(record[c])
        frame = pd.DataFrame(columns)
    else:
        raise PhmInputError(f"cannot read audit.json with schema_version '{version}'; this phm-audit reads 1.x and 2.x")
    for c in ("value", "ci_low", "ci_high"):
        frame[c] = pd.to_numeric(frame[c], errors="coerce").astype(np.float64)
    frame["n"] = pd.to_numeric(frame["n"], errors="coerce").astype("Float64").round().astype("Int64")
    return frame[list(METRIC_COLUMNS)]


def file_entry(path: Path, frame: pd.DataFrame) -> dict[str, Any]:
    """What ``audit.json`` says about a table written beside it: name, SHA-256, rows, columns, contents."""
    return {
        "name": path.name,
        "sha256": file_sha256(path),
        "rows": len(frame),
        "columns": [str(c) for c in frame.columns],
        "holds": _FILE_HOLDS.get(path.name, ""),
    }


# --- the document --------------------------------------------------------------------------------


def document_head(
    result: AuditResult,
    found: Sequence[Finding],
    *,
    name: str,
    provenance: Mapping[str, Any],
    disclosure: DisclosureControl,
    rules: FindingRules,
    headline: Sequence[Statement] = (),
) -> dict[str, Any]:
    """Everything in ``audit.json`` but ``files``, ``sweeps`` and ``metrics`` (``result`` under disclosure control)."""
    counts = {g: sum(f.grade == g for f in found) for g in ("flag", "review", "ok")}
    return {
        "schema_version": REPORT_SCHEMA_VERSION,
        "name": name,
        "provenance": dict(provenance),
        "disclosure": disclosure.to_dict(),
        "rules": rules.to_dict(),
        "summary": counts,
        "headline": [_jsonable(s.to_dict()) for s in headline],
        "findings": [_jsonable(f.to_dict()) for f in found],
        "result_schema_version": RESULT_SCHEMA_VERSION,
        "spec": _jsonable(result.spec.to_dict()),
        "models": [_jsonable(dict(m)) for m in result.models],
        "groups": {str(k): _jsonable(dict(v)) for k, v in result.groups.items()},
        "cohort": _jsonable(dict(result.cohort)),
        "notes": [str(n) for n in result.notes],
        "primary_operating_point": result.primary_operating_point,
        "operating_points": {str(k): _jsonable(dict(v)) for k, v in result.operating_points.items()},
    }


def report_document(
    result: AuditResult,
    found: Sequence[Finding],
    *,
    name: str,
    provenance: Mapping[str, Any],
    disclosure: DisclosureControl,
    rules: FindingRules,
    files: Sequence[Mapping[str, Any]] = (),
    headline: Sequence[Statement] = (),
) -> dict[str, Any]:
    """The ``audit.json`` document of a report (``result`` already under disclosure control).

    Parameters
    ----------
    result : AuditResult
        The audit, under disclosure control.
    found : sequence of Finding
        Its graded findings.
    name : str
        Report name.
    provenance : mapping
        From :func:`build_provenance`.
    disclosure : DisclosureControl
        The settings applied.
    rules : FindingRules
        The rules that graded the findings.
    files : sequence of mapping, optional
        The tables written beside the document (:func:`file_entry`).
    headline : sequence of Statement, optional
        What the audit found (:func:`~phm_audit.report._headline.headline`), written as ``headline``.

    Returns
    -------
    dict
        Schema version, name, provenance, disclosure settings, rules, finding counts, the headline and findings,
        the result's spec, models, groups, cohort and notes, then ``files``, ``sweeps`` and
        ``metrics`` (see the module documentation).
    """
    doc = document_head(
        result, found, name=name, provenance=provenance, disclosure=disclosure, rules=rules, headline=headline
    )
    kept, sweeps = sweep_subset(result.table())
    doc["files"] = [dict(f) for f in files]
    doc["sweeps"] = sweeps
    doc["metrics"] = metric_records(kept)
    return doc


def document_json(doc: Mapping[str, Any]) -> str:
    """``audit.json`` text: compact, one top-level item per line and one finding or metric record per line.

    Readable and diffable line by line, without the indentation that made most of the bytes. No
    NaN: missing values are ``null``.
    """

    def dumps(value: Any) -> str:
        return json.dumps(value, separators=(",", ":"), allow_nan=False)

    parts = []
    for key, value in doc.items():
        head = f"{json.dumps(key)}:"
        if isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            parts.append(head + "[\n" + ",\n".join(dumps(v) for v in value) + "\n]")
        else:
            parts.append(head + dumps(value))
    return "{\n" + ",\n".join(parts) + "\n}\n"


# --- the schema ----------------------------------------------------------------------------------


@cache
def _schema_text() -> str:
    return resources.files("phm_audit.report").joinpath("audit.schema.json").read_text(encoding="utf-8")


def report_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of ``audit.json``, shipped in the package."""
    return dict(json.loads(_schema_text()))


def _record_problems(doc: Mapping[str, Any]) -> list[str]:
    """What the schema cannot say: a metric record's arrays have one entry per group, and a missing
    value gives its reason."""
    problems: list[str] = []
    records = doc.get("metrics")
    if not isinstance(records, list):
        return problems
    for i, record in enumerate(records):
        if not isinstance(record, Mapping) or not isinstance(record.get("group"), list):
            continue
        size = len(record["group"])
        for c in METRIC_ARRAYS[1:]:
            if isinstance(record.get(c), list) and len(record[c]) != size:
                problems.append(f"metrics/{i}/{c}: {len(record[c])} entries for {size} groups")
        values, reasons = record.get("value"), record.get("reason")
        if isinstance(values, list) and isinstance(reasons, list):
            for j, (v, r) in enumerate(zip(values, reasons, strict=False)):
                if v is None and not r:
                    problems.append(f"metrics/{i}/reason/{j}: a missing value must give its reason")
    return problems


def validate_report_json(doc: Mapping[str, Any]) -> None:
    """Check an ``audit.json`` document against the shipped schema.

    Besides the JSON Schema, checks that every metric record's arrays have one entry per group and
    that every missing value gives its reason.

    Parameters
    ----------
    doc : mapping
        A parsed ``audit.json``.

    Raises
    ------
    PhmInputError
        Naming every place where the document breaks the schema.
    """
    import jsonschema

    validator = jsonschema.Draft202012Validator(report_schema())
    errors = sorted(validator.iter_errors(doc), key=lambda e: [str(p) for p in e.absolute_path])
    found = [f"{'/'.join(str(p) for p in e.absolute_path) or '(top level)'}: {e.message}" for e in errors]
    found += _record_problems(doc)
    if found:
        more = f" (and {len(found) - 10} more)" if len(found) > 10 else ""
        raise PhmInputError(f"audit.json does not match schema {REPORT_SCHEMA_VERSION}: {'; '.join(found[:10])}{more}")


def specimen(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The document with one finding and one metric record of each kind: every kind of entry, checked
    by :func:`validate_report_json` in a fraction of the time of all of them."""

    def pick(items: Sequence[Any], kind: Any) -> list[Any]:
        seen: dict[Any, Any] = {}
        for item in items:
            seen.setdefault(kind(item), item)
        return list(seen.values())

    out = dict(doc)
    out["findings"] = pick(
        doc.get("findings") or [],
        lambda f: (f.get("grade"), f.get("analysis"), f.get("metric"), f.get("value") is None, f.get("n") is None),
    )
    out["metrics"] = pick(
        doc.get("metrics") or [],
        lambda r: (r.get("analysis"), r.get("metric"), None in r.get("value", []), None in r.get("n", [])),
    )
    return out
