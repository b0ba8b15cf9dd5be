"""``write_report``: the report stage's entry point, from an :class:`AuditResult` to ``reports/<name>/``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from phm_audit.audit._result import AuditResult
from phm_audit.exceptions import PhmInputError, PhmTypeError
from phm_audit.report import _outputs
from phm_audit.report._disclosure import DisclosureControl, disclose_provenance, disclose_result
from phm_audit.report._document import (
    REPORT_SCHEMA_VERSION,
    build_provenance,
    file_sha256,
    report_document,
    report_schema,
    specimen,
    validate_report_json,
)
from phm_audit.report._findings import FindingRules
from phm_audit.report._headline import report_findings

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

#: Files of a report folder.
REPORT_FILES = ("index.html", "audit.json", "metrics.csv", "curves.csv", "summary.md")

#: Defaults of :func:`write_report` (immutable, so safe to share).
DEFAULT_DISCLOSURE = DisclosureControl()
DEFAULT_RULES = FindingRules()


def _check_n_jobs(n_jobs: int | None) -> int:
    """``n_jobs`` as a number of processes: None and -1 mean one per CPU."""
    if n_jobs is None or n_jobs == -1:
        from phm_audit.report._figures import available_cpus

        return available_cpus()
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int):
        raise PhmTypeError(f"n_jobs must be a whole number of processes or None; got {n_jobs!r}")
    if n_jobs < 1:
        raise PhmInputError(f"n_jobs must be 1 or more, or -1 for one process per CPU; got {n_jobs}")
    return n_jobs


def write_report(
    result: AuditResult,
    out_dir: str | Path,
    *,
    name: str | None = None,
    provenance: Mapping[str, Any] | None = None,
    disclosure: DisclosureControl = DEFAULT_DISCLOSURE,
    rules: FindingRules = DEFAULT_RULES,
    deterministic: bool = False,
    n_jobs: int | None = 1,
    overwrite: bool = False,
) -> Path:
    """Write a report folder: ``index.html``, ``audit.json``, ``metrics.csv``, ``curves.csv``, ``summary.md``.

    Every file is made after disclosure control, and the folder is written atomically: an interrupted or
    failed run leaves the previous report (or nothing) in place, and no temporary folder. Files
    phm-audit did not write are never replaced or deleted (see :func:`~phm_audit.report.atomic_dir`). Before
    anything is written, ``audit.json`` is checked against the shipped schema (every field, and one
    finding and one metric record of each kind; :func:`validate_report_json` checks every one).

    ``metrics.csv`` and ``curves.csv`` hold every number; ``audit.json`` holds the findings, settings
    and metrics with the sweeps at a few readable operating points, and names the two tables with
    their SHA-256 (see :mod:`phm_audit.report._document`); ``index.html`` draws and tabulates them.

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
    n_jobs : int or None, default 1
        Processes that draw the figures, while this one writes the tables (forked worker processes,
        on Linux); ``None`` or -1 for one per CPU. The files are the same whatever the number. Leave
        it at 1 in a program whose other threads may hold locks (a forked worker could hang).
    overwrite : bool, default False
        Write into a folder that holds files phm-audit did not write. Only the report's files (those
        its manifest ``.phm-audit-manifest.json`` lists) are replaced; every other file is kept.
        Without it such a folder is refused (a new, empty or earlier-report folder needs no flag).

    Returns
    -------
    Path
        The report folder.

    Raises
    ------
    PhmInputError
        The folder cannot be written, holds files phm-audit did not write (without ``overwrite``), another
        run is writing it, or a supplied file cannot be read.

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
    ['.phm-audit-manifest.json', 'audit.json', 'curves.csv', 'index.html', 'metrics.csv', 'summary.md']
    """
    if not isinstance(result, AuditResult):
        raise PhmTypeError(f"result must be an AuditResult (from phm_audit.audit.audit); got {type(result).__name__}")
    if not isinstance(disclosure, DisclosureControl):
        raise PhmTypeError(f"disclosure must be a DisclosureControl; got {type(disclosure).__name__}")
    if not isinstance(rules, FindingRules):
        raise PhmTypeError(f"rules must be a FindingRules; got {type(rules).__name__}")
    jobs = _check_n_jobs(n_jobs)
    folder = Path(out_dir)
    # fail before the work, not after it (checked again, under a lock, when the files are moved in)
    final = _outputs.check_report_folder(out_dir, overwrite=overwrite, files=REPORT_FILES)
    title = name or final.name or "report"
    published = disclose_result(result, disclosure)
    found, statements = report_findings(published, rules, disclosure)
    prov = build_provenance(published, disclose_provenance(provenance, disclosure), deterministic=deterministic)
    # the figures are drawn (in n_jobs processes) while audit.json is made and checked and the files written
    from phm_audit.report._html import start_page  # matplotlib and jinja2: the report extra, needed only here

    page = start_page(
        published,
        findings=found,
        provenance=prov,
        disclosure=disclosure,
        rules=rules,
        name=title,
        n_jobs=jobs,
        headline=statements,
    )
    try:
        doc = report_document(
            published, found, name=title, provenance=prov, disclosure=disclosure, rules=rules, headline=statements
        )
        validate_report_json(specimen(doc))
        summary = _outputs.summary_markdown(published, found, disclosure=disclosure, headline=statements)
        with _outputs.atomic_dir(folder, overwrite=overwrite, files=REPORT_FILES) as tmp:
            _outputs.write_tables_and_json(tmp, published, doc)
            _outputs.write_text(tmp / "summary.md", summary)
            _outputs.write_text(tmp / "index.html", page.result())
    finally:
        page.close()
    return folder
