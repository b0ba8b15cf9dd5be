"""``write_report``: the report stage's entry point, from an :class:`AuditResult` to ``reports/<name>/``."""

from __future__ import annotations

import datetime
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from phm_audit._version import __version__
from phm_audit.audit._result import RESULT_SCHEMA_VERSION, AuditResult
from phm_audit.exceptions import PhmInputError, PhmTypeError
from phm_audit.report import _outputs
from phm_audit.report._disclosure import DisclosureControl, disclose_result
from phm_audit.report._findings import Finding, FindingRules, findings
from phm_audit.report._html import render_html

__all__ = [
    "REPORT_FILES",
    "REPORT_SCHEMA_VERSION",
    "build_provenance",
    "file_sha256",
    "report_document",
    "report_schema",
    "validate_report_json",
    "write_report",
]

#: Version of the ``audit.json`` layout described by ``audit.schema.json``.
REPORT_SCHEMA_VERSION = "1.0"
#: Files of a report folder.
REPORT_FILES = ("index.html", "audit.json", "metrics.csv", "curves.csv", "summary.md")

_SHA256 = re.compile(r"[0-9a-f]{64}")
#: Defaults of :func:`write_report` (immutable, so safe to share).
DEFAULT_DISCLOSURE = DisclosureControl()
DEFAULT_RULES = FindingRules()


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file, as 64 hexadecimal digits (read in blocks, so large files are fine).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "empty"
    >>> _ = p.write_bytes(b"")
    >>> file_sha256(p)[:12]
    'e3b0c44298fc'
    """
    digest = hashlib.sha256()
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


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-ready dictionaries, through pandas' C encoder (NaN and NA become None)."""
    if frame.empty:
        return []
    return list(json.loads(frame.to_json(orient="records", double_precision=15)))


def _document_head(
    result: AuditResult,
    found: Sequence[Finding],
    *,
    name: str,
    provenance: Mapping[str, Any],
    disclosure: DisclosureControl,
    rules: FindingRules,
) -> dict[str, Any]:
    """Everything in ``audit.json`` but the metrics and curves."""
    counts = {g: sum(f.grade == g for f in found) for g in ("flag", "review", "ok")}
    return {
        "schema_version": REPORT_SCHEMA_VERSION,
        "name": name,
        "provenance": dict(provenance),
        "disclosure": disclosure.to_dict(),
        "rules": rules.to_dict(),
        "summary": counts,
        "findings": [_jsonable(f.to_dict()) for f in found],
        "result_schema_version": RESULT_SCHEMA_VERSION,
        "spec": _jsonable(result.spec.to_dict()),
        "models": [_jsonable(dict(m)) for m in result.models],
        "groups": {str(k): _jsonable(dict(v)) for k, v in result.groups.items()},
        "cohort": _jsonable(dict(result.cohort)),
        "notes": [str(n) for n in result.notes],
    }


def report_document(
    result: AuditResult,
    found: Sequence[Finding],
    *,
    name: str,
    provenance: Mapping[str, Any],
    disclosure: DisclosureControl,
    rules: FindingRules,
) -> dict[str, Any]:
    """The ``audit.json`` document of a report (``result`` already under disclosure control).

    Returns
    -------
    dict
        Schema version, name, provenance, disclosure settings, rules, finding counts and findings,
        then the result: spec, models, groups, cohort, notes, metrics and curves.
    """
    doc = _document_head(result, found, name=name, provenance=provenance, disclosure=disclosure, rules=rules)
    doc["metrics"] = _records(result.table())
    doc["curves"] = _records(result.curves())
    return doc


@cache
def _schema_text() -> str:
    return resources.files("phm_audit.report").joinpath("audit.schema.json").read_text(encoding="utf-8")


def report_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of ``audit.json``, shipped in the package."""
    return dict(json.loads(_schema_text()))


def validate_report_json(doc: Mapping[str, Any]) -> None:
    """Check an ``audit.json`` document against the shipped schema.

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
    if errors:
        problems = "; ".join(
            f"{'/'.join(str(p) for p in e.absolute_path) or '(top level)'}: {e.message}" for e in errors[:10]
        )
        more = f" (and {len(errors) - 10} more)" if len(errors) > 10 else ""
        raise PhmInputError(f"audit.json does not match schema {REPORT_SCHEMA_VERSION}: {problems}{more}")


def _specimen(head: Mapping[str, Any], table: pd.DataFrame, curves: pd.DataFrame) -> dict[str, Any]:
    """The document with one metric row per (analysis, metric, defined or not) and one curve row per
    (bins, target, defined or not): every kind of row, checked in a fraction of the time of all rows."""

    def pick(frame: pd.DataFrame, keys: list[str], value: str) -> list[dict[str, Any]]:
        if frame.empty:
            return []
        kinds = frame[keys].assign(_v=frame[value].isna().to_numpy(), _n=frame["n"].isna().to_numpy())
        return _records(frame[~kinds.duplicated().to_numpy()])

    out = dict(head)
    out["metrics"] = pick(table, ["analysis", "metric"], "value")
    out["curves"] = pick(curves, ["bins", "target"], "mean")
    return out


def write_report(
    result: AuditResult,
    out_dir: str | Path,
    *,
    name: str | None = None,
    provenance: Mapping[str, Any] | None = None,
    disclosure: DisclosureControl = DEFAULT_DISCLOSURE,
    rules: FindingRules = DEFAULT_RULES,
    deterministic: bool = False,
) -> Path:
    """Write a report folder: ``index.html``, ``audit.json``, ``metrics.csv``, ``curves.csv``, ``summary.md``.

    Every file is made after disclosure control, and the folder is written atomically: an interrupted or
    failed run leaves the previous report (or nothing) in place, and no temporary folder. Before
    anything is written, ``audit.json`` is checked against the shipped schema (every field, and one row
    of each kind of metric and curve; :func:`validate_report_json` checks every row).

    Parameters
    ----------
    result : AuditResult
        The audit.
    out_dir : str or Path
        The report folder (``reports/<name>``); created or replaced.
    name : str, optional
        Report name shown in the title; default the folder's name.
    provenance : mapping, optional
        Scenario, seed, supplied files (name to SHA-256 or path) and other JSON-ready items; see
        :func:`build_provenance`.
    disclosure : DisclosureControl, optional
        Disclosure control (on by default: counts of 1 to 7 suppressed, others rounded to 5).
    rules : FindingRules, optional
        Rules that grade the findings.
    deterministic : bool, default False
        Leave out the creation time so that the same result gives byte-identical files.

    Returns
    -------
    Path
        The report folder.

    Raises
    ------
    PhmInputError
        The folder cannot be written, or a supplied file cannot be read.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from phm_audit.synth import generate
    >>> from phm_audit.audit import AuditSpec, audit
    >>> cohort = generate("england", n=5_000, seed=1)
    >>> result = audit(cohort, {"prior_cost": cohort["cost_prior"].to_numpy()},
    ...                AuditSpec(attributes=["sex"], intersections=[], n_boot=10,
    ...                          analyses=["fairness", "calibration"]))
    >>> folder = write_report(result, pathlib.Path(tempfile.mkdtemp()) / "example", deterministic=True)
    >>> sorted(p.name for p in folder.iterdir())
    ['audit.json', 'curves.csv', 'index.html', 'metrics.csv', 'summary.md']
    """
    if not isinstance(result, AuditResult):
        raise PhmTypeError(f"result must be an AuditResult (from phm_audit.audit.audit); got {type(result).__name__}")
    if not isinstance(disclosure, DisclosureControl):
        raise PhmTypeError(f"disclosure must be a DisclosureControl; got {type(disclosure).__name__}")
    if not isinstance(rules, FindingRules):
        raise PhmTypeError(f"rules must be a FindingRules; got {type(rules).__name__}")
    folder = Path(out_dir)
    if folder.exists() and not folder.is_dir():  # fail before the work, not after it
        raise PhmInputError(f"cannot write the report to {folder}: it is a file; choose a folder")
    title = name or folder.name or "report"
    published = disclose_result(result, disclosure)
    found = findings(published, rules)
    prov = build_provenance(published, provenance, deterministic=deterministic)
    head = _document_head(published, found, name=title, provenance=prov, disclosure=disclosure, rules=rules)
    table, curves = published.table(), published.curves()
    validate_report_json(_specimen(head, table, curves))
    page = render_html(published, findings=found, provenance=prov, disclosure=disclosure, rules=rules, name=title)
    summary = _outputs.summary_markdown(published, found, disclosure=disclosure)
    with _outputs.atomic_dir(folder) as tmp:
        _outputs.write_csv(tmp / "metrics.csv", table)
        _outputs.write_csv(tmp / "curves.csv", curves)
        _outputs.write_json(tmp / "audit.json", head, {"metrics": table, "curves": curves})
        _outputs.write_text(tmp / "summary.md", summary)
        _outputs.write_text(tmp / "index.html", page)
    return folder
