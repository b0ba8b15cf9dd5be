"""``--disclosure`` and ``--release-bundle``, shared by ``phm-audit audit`` and ``phm-audit demo``.

``--disclosure PRESET`` sets the disclosure control of the report to a secure data environment's output
rules (:meth:`phm_audit.report.DisclosureControl.preset`); without it the report keeps the default
(counts of 1 to 7 suppressed, others rounded to 5). ``--release-bundle FOLDER`` also writes the bundle
an output checker releases (:func:`phm_audit.report.write_release_bundle`), under the same preset, or
``opensafely`` when none is given, whose numbers are the default's: the bundle's numbers are always the
report's. The command line has no flags for the threshold or the rounding, nor for switching control off.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from phm_audit.exceptions import PhmInputError

if TYPE_CHECKING:
    from phm_audit.report import DisclosureControl

__all__ = ["Release", "add_release_arguments", "release_settings"]


def add_release_arguments(group: argparse._ArgumentGroup | argparse.ArgumentParser) -> None:
    """Add ``--disclosure`` and ``--release-bundle`` to a command's arguments."""
    from phm_audit.report._control import PRESETS

    group.add_argument(
        "--disclosure",
        metavar="PRESET",
        help="disclosure control by a secure data environment's output rules: "
        + "; ".join(f"{name} ({p.source}: counts of 1 to {p.threshold} suppressed)" for name, p in PRESETS.items())
        + "; others rounded to 5, rates from rounded counts (default: counts of 1 to 7 suppressed, others "
        "rounded to 5)",
    )
    group.add_argument(
        "--release-bundle",
        metavar="FOLDER",
        help="also write a release bundle for output checkers to FOLDER: CSV tables of at most 5,000 rows, "
        "each figure as SVG with its numbers, a context file for each, under --disclosure (default opensafely); "
        "FOLDER must be new, empty or hold an earlier phm-audit output",
    )


@dataclass(frozen=True)
class Release:
    """The report's disclosure control, and the bundle's folder and control (None without ``--release-bundle``)."""

    report: DisclosureControl
    bundle_folder: Path | None
    bundle: DisclosureControl | None


def _inside(a: Path, b: Path) -> bool:
    return a == b or b in a.parents


def release_settings(args: argparse.Namespace, out: str | Path) -> Release:
    """Check ``--disclosure`` and ``--release-bundle`` before any work; the report goes to ``out``.

    Raises
    ------
    PhmInputError
        An unknown preset (the closest and the list named), or a bundle folder that is the report's
        folder, inside it or around it, or holds files phm-audit did not write.
    """
    from phm_audit.report import DisclosureControl
    from phm_audit.report._bundle import DEFAULT_PRESET, check_bundle_folder

    name = getattr(args, "disclosure", None)
    report = DisclosureControl() if name is None else DisclosureControl.preset(name)
    folder = getattr(args, "release_bundle", None)
    if folder is None:
        return Release(report, None, None)
    final = check_bundle_folder(folder)
    report_folder = Path(out).resolve()
    if _inside(final.resolve(), report_folder) or _inside(report_folder, final.resolve()):
        raise PhmInputError(
            f"--release-bundle {folder} and the report folder {out} overlap; give the bundle a folder of its own "
            "(such as a sibling of the report's)"
        )
    return Release(report, Path(folder), DisclosureControl.preset(name or DEFAULT_PRESET))
