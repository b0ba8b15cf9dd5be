"""Figures of a report, as lean inline SVG with alt text.

Compute apart from draw, as scikit-learn's ``CalibrationDisplay`` does:

- :mod:`phm_audit.report._figure_data`: each ``*_data`` function turns the (disclosure-controlled) tidy
  table or curves into a small tidy frame of exactly the numbers a figure draws (no plotting library);
- :mod:`phm_audit.report._figures_fairness` and :mod:`phm_audit.report._figures_decisions`: each
  ``draw_*`` function draws such a frame; each ``*_figure`` function does both, for the report;
- :mod:`phm_audit.report._figures_base`: the style, layout and rendering every figure shares, and the
  :class:`FigureBatch` that draws many figures at once, in forked processes if asked;
- :mod:`phm_audit.report._svg`: matplotlib's SVG made lean and fit to sit inline in a page.

This module gathers the names the report uses.
"""

from __future__ import annotations

from phm_audit.report._figure_data import MAX_GROUPS, need_cost_data
from phm_audit.report._figures_base import (
    LINESTYLES,
    MARKERS,
    OKABE_ITO,
    Figure,
    FigureBatch,
    available_cpus,
    group_style,
)
from phm_audit.report._figures_base import _render as _render
from phm_audit.report._figures_decisions import (
    explain_figure,
    judgement_figure,
    label_choice_figure,
    net_benefit_figure,
    thresholds_figure,
)
from phm_audit.report._figures_fairness import (
    headline_figure,
    label_gap_figure,
    need_cost_by_percentile,
    reliability_figure,
    shares_figure,
)
from phm_audit.report._svg import SVG_PAGE_CSS, lean_svg

__all__ = [
    "LINESTYLES",
    "MARKERS",
    "MAX_GROUPS",
    "OKABE_ITO",
    "SVG_PAGE_CSS",
    "Figure",
    "FigureBatch",
    "available_cpus",
    "explain_figure",
    "group_style",
    "headline_figure",
    "judgement_figure",
    "label_choice_figure",
    "label_gap_figure",
    "lean_svg",
    "need_cost_by_percentile",
    "need_cost_data",
    "net_benefit_figure",
    "reliability_figure",
    "shares_figure",
    "thresholds_figure",
]
