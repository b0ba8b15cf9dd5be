"""A release bundle: only what the output checkers of a secure data environment release.

Analysts in NHS secure data environments (OpenSAFELY, NHS England's Secure Data Environment) may take
out only aggregates that an output checker has released. :func:`write_release_bundle` writes, after the
disclosure control of the environment's preset (:meth:`DisclosureControl.preset`):

- the audit's tables as CSV files of at most ``max_rows`` rows, by analysis (``metrics_fairness.csv``;
  a longer one in numbered parts, ``metrics_thresholds_1.csv``, ``metrics_thresholds_2.csv``, ...), the
  calibration curves by kind of bin and the group sizes;
- each figure of the report as an SVG beside a CSV of exactly the numbers it draws (the frame of its
  ``*_data`` function, :mod:`phm_audit.report._figure_data`, as the report made it);
- a context file per output (``<name>.context.md``: the columns, the metrics from the registry, the
  controls applied, the rows and SHA-256 of each file) and a ``README.md`` indexing them.

Nothing else: no HTML, no ``audit.json``, no findings or notes (free text), no paths from the
analyst's machine. The curves leave out the lowest and highest score of each bin, which are single
people's scores. Every column written is on an allow-list of aggregate columns, and no cell that
counts people holds 1 to ``threshold``: both are checked before anything is written, and a failure
is a defect of phm-audit (:class:`~phm_audit.exceptions.PhmAuditError`), with nothing written.
"""

from __future__ import annotations

import datetime
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from phm_audit._version import __version__
from phm_audit.audit._result import AuditResult
from phm_audit.exceptions import PhmAuditError, PhmInputError, PhmTypeError
from phm_audit.report import _outputs
from phm_audit.report._bundle_text import (
    AGGREGATE_COLUMNS,
    FileInfo,
    Output,
    context_markdown,
    count_cells,
    readme_markdown,
)
from phm_audit.report._control import DisclosureControl, is_small
from phm_audit.report._disclosure import disclose_result
from phm_audit.report._document import file_sha256
from phm_audit.report._findings import FindingRules
from phm_audit.report._render import _check_n_jobs

__all__ = ["DEFAULT_PRESET", "MAX_ROWS", "bundle_outputs", "check_bundle_folder", "write_release_bundle"]

#: Most rows of one CSV file of a bundle.
MAX_ROWS = 5000
#: The preset a bundle uses unless told otherwise.
DEFAULT_PRESET = "opensafely"
#: Columns of the curves left out of a bundle: the lowest and highest score in a bin are people's scores.
DROPPED_CURVE_COLUMNS = ("score_low", "score_high")
_README = "README.md"
_STEM = 100  # longest file stem (a figure's id holds a model's name)

#: What each analysis's table holds, for its context file.
_ANALYSIS_ABOUT = {
    "fairness": "Who each model flags at each operating point, by group: selection rate, share of those flagged, "
    "share of the highest need, tpr, fnr, fpr and ppv against high need, differences and ratios to the reference "
    "group, and selection at equal need.",
    "calibration": "Calibration against cost and need: need and cost ratios at equal score against the reference "
    "group (direct standardisation over score bins), the label gap (need ratio over cost ratio), and calibration "
    "on the score's own scale.",
    "thresholds": "A sweep over capacities: selection, need captured, unmet need, tpr, fpr and ppv per group.",
    "allocation": "The same capacity allocated by need, by a need-trained model and with equal true-positive rates.",
    "raise_bar": "Capacity falling year by year: who is no longer flagged.",
    "referral": "A referral gate, and who with true need is refused.",
    "net_benefit": "Decision curves: net benefit against threshold probability, for everyone and per group.",
    "judgement": "Actuarial against clinical judgement: each score at the same capacity.",
    "label_choice": "The same learner trained on each label: who is flagged, and how much need and cost they hold.",
    "explain": "Explanations (SHAP): which inputs drive each score, and which carry the gaps between groups.",
}
#: The analysis whose metrics each figure draws, and the metric of a figure whose frame names none.
_FIGURE_KINDS = {
    "fig-headline": ("fairness", None),
    "fig-shares": ("fairness", None),
    "fig-curves": ("calibration", None),
    "fig-label-gap": ("calibration", "label_gap_at_equal_score"),
    "fig-reliability": ("calibration", None),
    "fig-thresholds": ("thresholds", None),
    "fig-net-benefit": ("net_benefit", None),
    "fig-explain": ("explain", None),
    "fig-judgement": ("judgement", None),
    "fig-label-choice": ("label_choice", "flagged_share"),
}


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9_-]+", "-", str(text).lower()).strip("-")[:_STEM] or "output"


def _split(frame: pd.DataFrame, max_rows: int) -> list[pd.DataFrame]:
    """``frame`` in consecutive parts of at most ``max_rows`` rows (one part when it fits)."""
    if len(frame) <= max_rows:
        return [frame]
    return [frame.iloc[i : i + max_rows] for i in range(0, len(frame), max_rows)]


def _csv_names(stem: str, parts: int) -> list[str]:
    return [f"{stem}.csv"] if parts == 1 else [f"{stem}_{i}.csv" for i in range(1, parts + 1)]


def _by(frame: pd.DataFrame, column: str) -> list[tuple[str, pd.DataFrame]]:
    """The rows of each value of ``column``, values in order of first appearance, rows in table order."""
    if frame.empty:
        return []
    return [(str(k), rows) for k, rows in frame.groupby(column, sort=False)]


def _groups_frame(published: AuditResult) -> pd.DataFrame:
    rows = []
    for attribute, info in published.groups.items():
        reference = info.get("reference")
        reference = None if reference is None else str(reference)
        sizes = list(info.get("sizes", []))
        for i, group in enumerate(map(str, info.get("labels", []))):
            size = sizes[i] if i < len(sizes) else None
            rows.append((str(attribute), group, "yes" if group == reference else "", size))
    frame = pd.DataFrame(rows, columns=["attribute", "group", "reference", "n"])
    frame["n"] = frame["n"].astype("Float64").round().astype("Int64")
    return frame


def _table_outputs(published: AuditResult, max_rows: int) -> list[Output]:
    out = []
    for analysis, rows in _by(published.table(), "analysis"):
        parts = _split(rows, max_rows)
        about = _ANALYSIS_ABOUT.get(analysis, f"The rows of the analysis {analysis}.")
        out.append(
            Output(
                stem=f"metrics_{_slug(analysis)}",
                title=f"Metrics: {analysis}",
                about=about + " One row per model, attribute, group, operating point, metric and target.",
                parts=parts,
                csv_names=[],
                analysis=analysis,
            )
        )
    curves = published.curves().drop(columns=list(DROPPED_CURVE_COLUMNS), errors="ignore")
    for bins, rows in _by(curves, "bins"):
        out.append(
            Output(
                stem=f"curves_{_slug(bins)}",
                title=f"Calibration curves: {bins} bins",
                about=f"Mean of each outcome by {bins} bin of the score, per model and group (the curves of the "
                "calibration analysis). The lowest and highest score of each bin are left out: each is one "
                "person's score.",
                parts=_split(rows, max_rows),
                csv_names=[],
                analysis="calibration",
            )
        )
    groups = _groups_frame(published)
    if len(groups):
        out.append(
            Output(
                stem="groups",
                title="Group sizes",
                about="The people audited in each group of each attribute and intersection.",
                parts=_split(groups, max_rows),
                csv_names=[],
            )
        )
    return out


def _figure_outputs(
    published: AuditResult, disclosure: DisclosureControl, rules: FindingRules, n_jobs: int, max_rows: int
) -> list[Output]:
    from phm_audit.report._html import report_figures  # matplotlib and jinja2: the report extra
    from phm_audit.report._svg import standalone_svg

    # the figures do not depend on the findings (only the page's words do), so none are passed
    out = []
    for fig in report_figures(published, findings=(), disclosure=disclosure, rules=rules, n_jobs=n_jobs):
        data = fig.data if fig.data is not None else pd.DataFrame()
        kind = next((k for p, k in _FIGURE_KINDS.items() if fig.id.startswith(p)), ("*", None))
        extra = [f"Alt text: {_outputs._md(fig.alt)}", ""]
        if kind[1] is not None:
            extra = [f"Every `value` is the metric `{kind[1]}`.", "", *extra]
        out.append(
            Output(
                stem=_slug(fig.id),
                title=f"Figure: {fig.title}",
                about=fig.caption,
                parts=_split(data, max_rows),
                csv_names=[],
                analysis=kind[0],
                svg=standalone_svg(fig.svg),
                extra=extra,
                metric=kind[1],
            )
        )
    return out


def _check_aggregate(output: Output, control: DisclosureControl) -> None:
    """Refuse (a defect of phm-audit) a column off the allow-list, or a count of 1 to ``threshold`` people."""
    for part in output.parts:
        unknown = [str(c) for c in part.columns if c not in AGGREGATE_COLUMNS]
        if unknown:
            raise PhmAuditError(
                f"release bundle: {output.stem} would hold column(s) {', '.join(unknown)}, which are not known "
                "aggregates; nothing was written (a defect of phm-audit: please report it)"
            )
        for col, rows in count_cells(part, output.analysis).items():
            values = pd.to_numeric(part[col], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
            small = is_small(np.abs(np.round(values)), control) & rows
            if small.any():
                raise PhmAuditError(
                    f"release bundle: {output.stem} would publish a count of 1 to {control.threshold} people in "
                    f"column {col}; nothing was written (a defect of phm-audit: please report it)"
                )


def bundle_outputs(
    published: AuditResult,
    *,
    disclosure: DisclosureControl,
    rules: FindingRules,
    max_rows: int = MAX_ROWS,
    n_jobs: int = 1,
) -> list[Output]:
    """Every output of the bundle of ``published``, with unique file names, checked.

    Parameters
    ----------
    published : AuditResult
        The audit under ``disclosure`` (:func:`~phm_audit.report.disclose_result`), which must be enabled.
    disclosure, rules, max_rows, n_jobs
        As :func:`write_release_bundle`.

    Returns
    -------
    list of Output
    """
    outputs = _table_outputs(published, max_rows) + _figure_outputs(published, disclosure, rules, n_jobs, max_rows)
    taken: set[str] = {_README.removesuffix(".md").lower()}
    for output in outputs:
        stem, k = output.stem, 2
        while stem.lower() in taken:  # two models whose names make the same id
            stem, k = f"{output.stem}-{k}", k + 1
        taken.add(stem.lower())
        output.stem = stem
        output.csv_names = _csv_names(stem, len(output.parts))
        _check_aggregate(output, disclosure)
    return outputs


def check_bundle_folder(folder: str | Path) -> Path:
    """Check that a release bundle can be written to ``folder``: new, empty, or holding only an earlier
    phm-audit output (whose files are replaced whole); never over a file phm-audit did not write.

    Parameters
    ----------
    folder : str or Path

    Returns
    -------
    Path
        The folder as an absolute path.

    Raises
    ------
    PhmInputError
        The folder is a file, the root, empty as a name, or holds a file phm-audit did not write.
    """
    if not str(folder).strip():
        raise PhmInputError("the release bundle folder is empty (--release-bundle ''); give a folder such as bundle")
    final = Path(os.path.abspath(os.fspath(folder)))
    if final.is_dir():
        listed = _outputs.read_manifest(final)
        ours = set(listed or ()) | ({_outputs.MANIFEST_NAME} if listed is not None else set())
        foreign = sorted(p for p in os.listdir(final) if p not in ours)
        if foreign:
            shown = ", ".join(repr(f) for f in foreign[:3]) + (
                f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
            )
            raise PhmInputError(
                f"the release bundle folder {folder} holds files phm-audit did not write ({shown}); a bundle's folder "
                "holds only the bundle, so that nothing unchecked goes out with it: choose a new or empty folder"
            )
    return _outputs.check_report_folder(folder)


def _check_max_rows(max_rows: int) -> int:
    if isinstance(max_rows, bool) or not isinstance(max_rows, int | np.integer):
        raise PhmTypeError(f"max_rows must be a whole number of rows; got {max_rows!r}")
    if max_rows < 1:
        raise PhmInputError(f"max_rows must be at least 1; got {max_rows}")
    return int(max_rows)


def write_release_bundle(
    result: AuditResult,
    folder: str | Path,
    *,
    disclosure: DisclosureControl | None = None,
    rules: FindingRules | None = None,
    max_rows: int = MAX_ROWS,
    deterministic: bool = False,
    n_jobs: int | None = 1,
) -> Path:
    """Write a release bundle: only the aggregates an output checker of a secure data environment releases.

    CSV tables of at most ``max_rows`` rows (by analysis, a longer one in numbered parts), each figure of
    the report as an SVG with a CSV of the numbers it draws, a ``<name>.context.md`` beside each output
    (its columns, metrics, the disclosure controls applied, rows and SHA-256) and a ``README.md`` index.
    No HTML, no ``audit.json``, no free text. The numbers are the report's (:func:`write_report`) under the
    same disclosure control. The folder is written atomically, with a manifest, under a lock; it must be
    new, empty or hold only an earlier phm-audit output (a folder holding any other file is refused, so
    that no file phm-audit did not check is ever sent out with the bundle).

    Parameters
    ----------
    result : AuditResult
        The audit.
    folder : str or Path
        The bundle's folder; created or replaced.
    disclosure : DisclosureControl, optional
        Default ``DisclosureControl.preset("opensafely")``; ``DisclosureControl.preset("nhs-sde")`` for NHS
        England's Secure Data Environment. Must be enabled.
    rules : FindingRules, optional
        The report's finding rules (the label gap figure draws its flag line); default ``FindingRules()``.
    max_rows : int, default 5000
        Most rows of one CSV file.
    deterministic : bool, default False
        Leave the creation time out of ``README.md``, so that the same result gives byte-identical files.
    n_jobs : int or None, default 1
        Processes that draw the figures (as :func:`write_report`).

    Returns
    -------
    Path
        The folder.

    Raises
    ------
    PhmInputError
        Disclosure control is off, or the folder cannot be written, holds files phm-audit did not write,
        or another run is writing it.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from phm_audit.synth import generate
    >>> from phm_audit.audit import AuditSpec, audit
    >>> cohort = generate("england", n=5_000, seed=1)
    >>> result = audit(cohort, {"prior_cost": cohort["cost_prior"].to_numpy()},
    ...                AuditSpec(attributes=["sex"], intersections=[], n_boot=10, analyses=["fairness"]))
    >>> folder = write_release_bundle(result, pathlib.Path(tempfile.mkdtemp()) / "bundle", deterministic=True)
    >>> sorted(p.name for p in folder.glob("*.csv"))
    ['fig-shares-prior-cost-top-3pct.csv', 'groups.csv', 'metrics_fairness.csv']
    >>> (folder / "fig-shares-prior-cost-top-3pct.svg").exists(), (folder / "groups.context.md").exists()
    (True, True)
    """
    if not isinstance(result, AuditResult):
        raise PhmTypeError(f"result must be an AuditResult (from phm_audit.audit.audit); got {type(result).__name__}")
    disclosure = DisclosureControl.preset(DEFAULT_PRESET) if disclosure is None else disclosure
    if not isinstance(disclosure, DisclosureControl):
        raise PhmTypeError(f"disclosure must be a DisclosureControl; got {type(disclosure).__name__}")
    if not disclosure.enabled:
        raise PhmInputError(
            "a release bundle is made for output checking, so disclosure control must be on; use "
            "DisclosureControl.preset('opensafely') or DisclosureControl.preset('nhs-sde')"
        )
    rules = FindingRules() if rules is None else rules
    if not isinstance(rules, FindingRules):
        raise PhmTypeError(f"rules must be a FindingRules; got {type(rules).__name__}")
    rows = _check_max_rows(max_rows)
    jobs = _check_n_jobs(n_jobs)
    final = check_bundle_folder(folder)  # before the work, not after it
    published = disclose_result(result, disclosure)
    outputs = bundle_outputs(published, disclosure=disclosure, rules=rules, max_rows=rows, n_jobs=jobs)
    names = [_README]
    for output in outputs:
        names += [*output.csv_names, f"{output.stem}.context.md"] + ([f"{output.stem}.svg"] if output.svg else [])
    created = None if deterministic else datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    index: list[tuple[Output, str, Sequence[FileInfo]]] = []
    with _outputs.atomic_dir(folder, files=names) as tmp:
        for output in outputs:
            files = []
            if output.svg is not None:
                _outputs.write_text(tmp / f"{output.stem}.svg", output.svg)
                files.append(FileInfo(f"{output.stem}.svg", None, file_sha256(tmp / f"{output.stem}.svg")))
            for name, part in zip(output.csv_names, output.parts, strict=True):
                _outputs.write_csv(tmp / name, part)
                files.append(FileInfo(name, len(part), file_sha256(tmp / name)))
            context = f"{output.stem}.context.md"
            text = context_markdown(output, files, disclosure, version=__version__, max_rows=rows)
            _outputs.write_text(tmp / context, text)
            index.append((output, context, files))
        _outputs.write_text(
            tmp / _README,
            readme_markdown(
                title=final.name or "release bundle",
                outputs=index,
                control=disclosure,
                cohort=published.cohort,
                models=[str(m["name"]) for m in published.models],
                attributes=[str(a) for a in published.groups],
                version=__version__,
                max_rows=rows,
                created=created,
            ),
        )
    return Path(folder)
