"""Reports of an audit: HTML, JSON, CSV and Markdown, with figures, graded findings and disclosure control.

:func:`write_report` turns an :class:`~phm_audit.audit.AuditResult` into ``reports/<name>/``:
``index.html`` (self-contained, prints to PDF), ``audit.json`` (findings, settings and metrics,
validated against the shipped JSON Schema), ``metrics.csv`` (every metric), ``curves.csv`` and
``summary.md``, all after disclosure control, written atomically. :func:`metrics_frame` reads the
metrics of an ``audit.json`` back into the tidy table. :func:`write_release_bundle` writes only what the
output checkers of a secure data environment release (CSV tables, figures as SVG with their numbers,
a context file for each), under a preset's rules (``DisclosureControl.preset("opensafely")`` or
``"nhs-sde"``).

Examples
--------
>>> import tempfile, pathlib
>>> from phm_audit.synth import generate
>>> from phm_audit.audit import AuditSpec, audit
>>> from phm_audit.report import FindingRules, findings, write_report
>>> cohort = generate("england", n=5_000, seed=1)
>>> result = audit(cohort, {"prior_cost": cohort["cost_prior"].to_numpy()},
...                AuditSpec(attributes=["imd_quintile"], intersections=[], n_boot=10,
...                          analyses=["fairness", "calibration"]))
>>> {f.grade for f in findings(result, FindingRules())} <= {"flag", "review", "ok"}
True
>>> folder = write_report(result, pathlib.Path(tempfile.mkdtemp()) / "imd", deterministic=True)
>>> (folder / "index.html").exists()
True
"""

from phm_audit.report._bundle import write_release_bundle
from phm_audit.report._disclosure import (
    COUNT_METRICS,
    DENOMINATOR_RATES,
    NUMERATOR_SHARES,
    DisclosureControl,
    apply_disclosure,
    disclose_result,
)
from phm_audit.report._document import SWEEP_POINTS, metrics_frame
from phm_audit.report._findings import Finding, FindingRules, findings
from phm_audit.report._outputs import atomic_dir, summary_markdown, write_machine_outputs
from phm_audit.report._render import (
    REPORT_FILES,
    REPORT_SCHEMA_VERSION,
    build_provenance,
    file_sha256,
    report_schema,
    validate_report_json,
    write_report,
)

__all__ = [
    "COUNT_METRICS",
    "DENOMINATOR_RATES",
    "NUMERATOR_SHARES",
    "REPORT_FILES",
    "REPORT_SCHEMA_VERSION",
    "SECTIONS",
    "SWEEP_POINTS",
    "DisclosureControl",
    "Figure",
    "FigureBatch",
    "Finding",
    "FindingRules",
    "apply_disclosure",
    "atomic_dir",
    "build_provenance",
    "disclose_result",
    "file_sha256",
    "findings",
    "metrics_frame",
    "render_html",
    "report_schema",
    "summary_markdown",
    "validate_report_json",
    "write_machine_outputs",
    "write_release_bundle",
    "write_report",
]

#: Names whose modules import matplotlib or jinja2 (the ``report`` extra): imported when first used, so
#: that importing :mod:`phm_audit.report` (for disclosure control, findings or the tables) needs neither.
_LAZY = {
    "Figure": "phm_audit.report._figures",
    "FigureBatch": "phm_audit.report._figures",
    "SECTIONS": "phm_audit.report._html",
    "render_html": "phm_audit.report._html",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'phm_audit.report' has no attribute {name!r}")
