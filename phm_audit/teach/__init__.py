"""An explorable teaching page: a class watches a cost label go wrong.

:func:`teach` audits one generated cohort per access gap (the same people each time, with less planned
care at equal need for the most deprived fifth and minority ethnic groups), for a learner trained on
each label, a simulated clinician and a combined pathway, and writes one self-contained HTML page
(inline script, styles and figures; no network, no server) whose sliders look the precomputed,
disclosure-controlled values up. :func:`build_teach_data` returns those values; :func:`render_page`
turns them into the page.

``phm_audit.teach("reports/teach/index.html")`` (or ``phm-audit teach``) builds the default grid: seven
access gaps of 100,000 people each.

Examples
--------
One grid point is the ``no_gap`` scenario with planned care lowered for both groups:

>>> from phm_audit.teach import scenario_overrides
>>> scenario_overrides(0.3)["planned_access.imd_q1"], scenario_overrides(0.3)["planned_access.black"]
(0.7, 0.7)
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
