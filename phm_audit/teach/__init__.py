"""An explorable teaching page: a class watches a cost label go wrong.

:func:`teach` audits one generated cohort per access gap (the same people each time, with less planned
care at equal need for the most deprived fifth and minority ethnic groups), for a learner trained on
each label, a simulated clinician and a combined pathway, and writes one self-contained HTML page
(inline script, styles and figures; no network, no server) whose sliders look the precomputed,
disclosure-controlled values up. :func:`build_teach_data` returns those values; :func:`render_page`
turns them into the page.

Examples
--------
>>> import tempfile, pathlib
>>> from phm_audit.teach import teach
>>> page = teach(pathlib.Path(tempfile.mkdtemp()) / "teach.html", n=2000, gaps=(0.0, 0.3), n_boot=0)
>>> page.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
True
"""

from phm_audit.teach._api import DEFAULT_OUT, teach
from phm_audit.teach._build import DEFAULT_GAPS, build_teach_data, grid_point_result, scenario_overrides
from phm_audit.teach._page import render_page

__all__ = [
    "DEFAULT_GAPS",
    "DEFAULT_OUT",
    "build_teach_data",
    "grid_point_result",
    "render_page",
    "scenario_overrides",
    "teach",
]
