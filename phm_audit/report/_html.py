"""The self-contained HTML report: sections of blocks (paragraphs, figures, tables, findings) in one template.

The page carries everything inline (styles, figures as SVG), loads nothing from the network, and
prints to PDF. Every disparity in a table sits beside its interval and its group's n.

This module assembles the page; the blocks, cells and number formats are in
:mod:`~phm_audit.report._html_tables`, the sections in :mod:`~phm_audit.report._html_sections` (groups),
:mod:`~phm_audit.report._html_decisions` (decisions) and :mod:`~phm_audit.report._html_methods`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import jinja2

from phm_audit._version import __version__
from phm_audit.audit._result import AuditResult
from phm_audit.report import _figures as figs
from phm_audit.report._control import DisclosureControl, sentence
from phm_audit.report._findings import primary_operating_point
from phm_audit.report._html_decisions import (
    explanations_section,
    judgement_section,
    net_benefit_section,
    thresholds_section,
)
from phm_audit.report._html_methods import methods_section
from phm_audit.report._html_sections import (
    bias_section,
    calibration_section,
    data_section,
    headline_section,
    label_choice_section,
    summary_section,
)
from phm_audit.report._html_tables import SECTIONS, Index, Section, fmt
from phm_audit.report._rules import GRADES, Finding, FindingRules
from phm_audit.report._statements import Statement

__all__ = ["SECTIONS", "PendingPage", "fmt", "render_html", "report_figures", "start_page"]


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("phm_audit.report", "templates"),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["sentence"] = sentence  # ``capitalize`` would lower "OpenSAFELY" and "NHS"
    return env


class PendingPage:
    """An HTML page whose figures are still being drawn (see :func:`start_page`).

    :meth:`result` waits for the figures and returns the page; :meth:`close` stops the drawing if the
    page is not wanted after all (an error elsewhere).
    """

    def __init__(self, text: str, figures: figs.FigureBatch) -> None:
        self._text = text
        self._figures = figures

    def result(self) -> str:
        """The page, with every figure in place."""
        return self._figures.fill(self._text)

    def close(self) -> None:
        """Stop drawing figures, if any are still being drawn."""
        self._figures.close()


def _sections(
    result: AuditResult,
    findings: Sequence[Finding],
    provenance: Mapping[str, Any],
    disclosure: DisclosureControl,
    rules: FindingRules,
    headline: Sequence[Statement],
) -> list[Section]:
    """The sections of the page, in order (inside a :class:`~phm_audit.report.FigureBatch`, figures wait)."""
    curves = result.curves()
    idx = Index(result.table(), curves)
    primary = primary_operating_point(result)
    return [
        headline_section(result, headline, idx, primary),
        summary_section(result, findings),
        data_section(result, provenance, disclosure),
        bias_section(result, idx, findings, primary),
        calibration_section(result, idx, curves, primary),
        label_choice_section(result, idx, rules),
        thresholds_section(result, idx),
        net_benefit_section(result, idx),
        judgement_section(result, idx),
        explanations_section(result, idx),
        methods_section(result, disclosure, rules, bool(provenance.get("synthetic"))),
    ]


def report_figures(
    result: AuditResult,
    *,
    findings: Sequence[Finding],
    disclosure: DisclosureControl,
    rules: FindingRules,
    headline: Sequence[Statement] = (),
    n_jobs: int = 1,
) -> list[figs.Figure]:
    """Every figure the report page of ``result`` draws, in the page's order, drawn, each with its data.

    The page's own sections choose and make them (parameters as :func:`render_html`), so a release
    bundle publishes exactly the report's figures and the frames they draw (:attr:`Figure.data`).
    """
    batch = figs.FigureBatch()
    with batch.collecting():
        sections = _sections(result, findings, {}, disclosure, rules, headline)
    made = [b.figure for s in sections for b in s.blocks if b.kind == "figure" and b.figure is not None]
    batch.start(n_jobs)
    try:
        return [dataclasses.replace(f, svg=batch.fill(f.svg)) for f in made]
    finally:
        batch.close()


def start_page(
    result: AuditResult,
    *,
    findings: Sequence[Finding],
    provenance: Mapping[str, Any],
    disclosure: DisclosureControl,
    rules: FindingRules,
    name: str,
    n_jobs: int = 1,
    headline: Sequence[Statement] = (),
) -> PendingPage:
    """Lay out the report page and start drawing its figures; :func:`render_html` without the wait.

    The caller can do other work (write the tables) while the figures are drawn, then take the
    page from :meth:`PendingPage.result`. Parameters as :func:`render_html`.
    """
    synthetic = bool(provenance.get("synthetic"))
    batch = figs.FigureBatch()
    with batch.collecting():  # figures are drawn after the layout, together, in n_jobs processes
        sections = _sections(result, findings, provenance, disclosure, rules, headline)
    counts = {g: sum(f.grade == g for f in findings) for g in GRADES}
    template = _environment().get_template("report.html.j2")
    text = template.render(
        name=name,
        sections=sections,
        counts=counts,
        provenance=provenance,
        disclosure=disclosure,
        synthetic=synthetic,
        version=__version__,
        n=result.cohort.get("n"),
        svg_css=figs.SVG_PAGE_CSS,
        fmt=fmt,
    )
    batch.start(n_jobs)
    return PendingPage(text, batch)


def render_html(
    result: AuditResult,
    *,
    findings: Sequence[Finding],
    provenance: Mapping[str, Any],
    disclosure: DisclosureControl,
    rules: FindingRules,
    name: str,
    n_jobs: int = 1,
    headline: Sequence[Statement] = (),
) -> str:
    """The report as one self-contained HTML page.

    Parameters
    ----------
    result : AuditResult
        The audit, already under disclosure control.
    findings : sequence of Finding
        Graded findings of ``result``.
    provenance : mapping
        As written to ``audit.json`` (tool version, scenario, seed, n, models, supplied files, creation time).
    disclosure : DisclosureControl
        The settings applied (a banner says so when they are off).
    rules : FindingRules
        The rules that graded the findings.
    name : str
        Report name.
    n_jobs : int, default 1
        Processes that draw the figures (forked, on Linux; see :class:`~phm_audit.report.FigureBatch`).
        The page is the same whatever the number.
    headline : sequence of Statement, optional
        What the audit found (:func:`~phm_audit.report._headline.headline`), first on the page.

    Returns
    -------
    str
        HTML with inline styles and inline SVG figures; no network resources.
    """
    page = start_page(
        result,
        findings=findings,
        provenance=provenance,
        disclosure=disclosure,
        rules=rules,
        name=name,
        n_jobs=n_jobs,
        headline=headline,
    )
    try:
        return page.result()
    finally:
        page.close()
