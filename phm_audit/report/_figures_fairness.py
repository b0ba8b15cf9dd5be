"""Figures of who is flagged and of what a score says at equal value: drawn from the frames of
:mod:`phm_audit.report._figure_data`.

Each ``draw_*`` function draws one frame (and returns None for an empty one); each ``*_figure``
function computes its frame from the tidy table or curves and draws it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import cast

import numpy as np
import pandas as pd
from matplotlib.figure import Figure as MplFigure

from phm_audit.audit._operating_points import describe_point
from phm_audit.report._figure_data import (
    MAX_GROUPS,
    Attributes,
    headline_data,
    label_gap_data,
    need_cost_data,
    ordered_groups,
    reliability_data,
    shares_data,
    worst,
)
from phm_audit.report._figures_base import (
    OKABE_ITO,
    Figure,
    _bottom_legend,
    _fmt,
    _interval,
    _legend_height,
    _log_axis,
    _new_figure,
    _render,
    _shown,
    _slug,
    _width,
    group_style,
)
from phm_audit.report._findings import describe_operating_point

__all__ = [
    "draw_headline",
    "draw_label_gap",
    "draw_need_cost",
    "draw_reliability",
    "draw_shares",
    "headline_figure",
    "label_gap_figure",
    "need_cost_by_percentile",
    "reliability_figure",
    "shares_figure",
]


# --- flagged against need, every model ---------------------------------------------------------------


def draw_headline(frame: pd.DataFrame, *, operating_point: str, attributes: Attributes) -> Figure | None:
    """Draw :func:`~phm_audit.report._figure_data.headline_data`: one dot plot per attribute, every model."""
    panels = []
    for attribute, (groups, reference) in attributes.items():
        rows = frame[frame["attribute"] == attribute]
        if len(rows):
            panels.append((attribute, ordered_groups(groups, reference)[::-1], rows))
    shown = list(dict.fromkeys(frame["model"]))
    if not panels or not shown:
        return None
    heights = [max(len(p[1]), 2) for p in panels]
    op_words = describe_operating_point(operating_point)
    step = 0.8 / max(len(shown), 1)

    def draw() -> MplFigure:
        labels_width = _width([g for p in panels for g in p[1]])
        fig, grid = _new_figure(
            nrows=len(panels),
            axes_height=0.42,
            height_ratios=heights,
            left=0.3 + labels_width,
            hgap=0.75,
            bottom=0.5 + _legend_height(len(shown), 3),
        )
        axes = grid[:, 0]
        for ax, (attribute, groups, rows) in zip(axes, panels, strict=True):
            y = np.arange(len(groups))
            for i, model in enumerate(shown):
                f = rows[rows["model"] == model].set_index("group").reindex(groups)
                style = group_style(i + 1)
                ax.errorbar(
                    _shown(f),
                    y - 0.4 + step * (i + 0.5),
                    xerr=_interval(f),
                    linestyle="none",
                    marker=style["marker"],
                    color=style["color"],
                    markersize=3.5,
                    elinewidth=0.8,
                    capsize=0,
                    label=model,
                )
            ax.axvline(1.0, color="black", linewidth=0.8)
            ax.set_yticks(y, groups)
            ax.set_xlabel("share of those flagged / share of the highest need (1 = flagged in proportion to need)")
            ax.set_title(attribute, loc="left")
        handles, labels = axes[0].get_legend_handles_labels()
        _bottom_legend(fig, handles, labels, 3)
        return fig

    lowest = []
    for attribute, _groups, rows in panels:
        r = rows[np.isfinite(rows["value"].to_numpy(dtype=np.float64))]
        if len(r):
            w = r.loc[worst(r["value"], str(r["metric"].iloc[0]), "fairness")]
            lowest.append(f"{attribute}: lowest is {w['group']} under {w['model']} ({float(w['value']):.2f})")
    alt = (
        f"Dot plots, one per attribute, at {op_words}: for every model side by side, each group's share of those "
        "flagged divided by its share of the people with the highest need, with 95% intervals; 1 means flagged in "
        "proportion to need, below 1 under-served. " + ("; ".join(lowest) + "." if lowest else "")
    )
    caption = (
        f"Who each model under-serves at {op_words}: a group's share of those flagged over its share of the people "
        "with the highest need, every model side by side, with 95% intervals. Left of the line at 1: flagged less "
        "than its share of the highest need."
    )
    return _render(
        f"fig-headline-{_slug(operating_point)}", "Flagged against need, every model", alt, caption, draw, data=frame
    )


def headline_figure(
    table: pd.DataFrame, *, models: Sequence[str], operating_point: str, attributes: Attributes
) -> Figure | None:
    """The headline's figure: each group's share of the flagged over its share of the highest need, every
    model side by side, one panel per attribute (deprivation and ethnicity in the report)."""
    frame = headline_data(table, models=models, operating_point=operating_point, attributes=attributes)
    return draw_headline(frame, operating_point=operating_point, attributes=attributes)


def draw_shares(frame: pd.DataFrame, *, model: str, operating_point: str, attributes: Attributes) -> Figure | None:
    """Draw :func:`~phm_audit.report._figure_data.shares_data`: per attribute, the two shares of each group."""
    panels = []
    for attribute, (groups, reference) in attributes.items():
        sub = frame[frame["attribute"] == attribute]
        if sub.empty:
            continue
        fs = sub[sub["metric"] == "flagged_share"].set_index("group")
        hs = sub[sub["metric"] == "high_need_share"].set_index("group")
        panels.append((attribute, ordered_groups(groups, reference)[::-1], fs, hs, reference))
    if not panels:
        return None
    heights = [max(len(p[1]), 2) for p in panels]
    fid = f"fig-shares-{_slug(model)}-{_slug(operating_point)}"
    op_words = describe_operating_point(operating_point)

    def draw() -> MplFigure:
        labels_width = _width([g for p in panels for g in p[1]])
        fig, grid = _new_figure(
            nrows=len(panels),
            axes_height=0.28,
            height_ratios=heights,
            left=0.3 + labels_width,
            hgap=0.75,
            bottom=0.5 + _legend_height(2, 2),
        )
        axes = grid[:, 0]
        for ax, (attribute, groups, fs, hs, _) in zip(axes, panels, strict=True):
            y = np.arange(len(groups))
            for rows, label, style, dy in (
                (hs, "share of the highest need", {"marker": "s", "color": OKABE_ITO[4], "mfc": "white"}, 0.17),
                (fs, "share of those flagged", {"marker": "o", "color": OKABE_ITO[5]}, -0.17),
            ):
                f = rows.reindex(groups)
                ax.errorbar(_shown(f), y + dy, xerr=_interval(f), linestyle="none", capsize=2, label=label, **style)
            ax.set_yticks(y, groups)
            ax.set_xlabel("per cent")
            ax.set_title(attribute, loc="left")
            ax.set_xlim(left=0)
        handles, labels = axes[0].get_legend_handles_labels()
        _bottom_legend(fig, handles, labels, 2)
        return fig

    gaps = []
    for attribute, groups, fs, hs, reference in panels:
        ratio = (fs["value"] / hs["value"]).reindex(groups).drop(reference, errors="ignore")
        ratio = ratio[np.isfinite(ratio.to_numpy(dtype=np.float64))]
        if len(ratio):
            g = str(worst(ratio, "flagged_to_high_need_ratio", "fairness"))
            gaps.append(
                f"{attribute}: {g} is {100 * float(hs['value'][g]):.1f}% of the highest need and "
                f"{100 * float(fs['value'][g]):.1f}% of those flagged"
            )
    alt = (
        f"Dot plots, one per attribute, for {model} at {op_words}: each group's share of those flagged (filled "
        "circles) beside its share of the people with the highest need (open squares), with 95% intervals. "
        + ("Largest shortfall by attribute — " + "; ".join(gaps) + "." if gaps else "")
    )
    caption = (
        f"Who is flagged and who has the highest need, at {op_words} of the {model} score. A filled circle to the "
        "left of its open square means the group is under-represented among those flagged, relative to its need."
    )
    return _render(fid, f"Flagged and high-need shares: {model}", alt, caption, draw, data=frame)


def shares_figure(table: pd.DataFrame, *, model: str, operating_point: str, attributes: Attributes) -> Figure | None:
    """Per attribute, each group's share of those flagged beside its share of the highest need, with intervals."""
    frame = shares_data(table, model=model, operating_point=operating_point, attributes=attributes)
    return draw_shares(frame, model=model, operating_point=operating_point, attributes=attributes)


# --- need and cost by score percentile (Obermeyer et al. 2019, Figure 1) -------------------------------


def _top_line(op: str | None) -> float | None:
    point = describe_point(op or "")
    return 100 - float(point["value"]) if point["kind"] == "top_pct" and point["place"] is None else None


def draw_need_cost(
    data: pd.DataFrame,
    *,
    model: str,
    attribute: str,
    groups: Sequence[str],
    reference: str | None,
    need_target: str,
    cost_target: str,
    operating_point: str | None = None,
) -> Figure | None:
    """Draw :func:`~phm_audit.report._figure_data.need_cost_data`: need and cost by percentile, per group."""
    if len(groups) > MAX_GROUPS or data.empty or not (data["target"] == need_target).any():
        return None
    order = ordered_groups(groups, reference)
    cut = _top_line(operating_point)
    fid = f"fig-curves-{_slug(model)}-{_slug(attribute)}"

    def draw() -> MplFigure:
        ncol = min(len(order), 4)
        fig, axes = _new_figure(
            ncols=2, axes_height=2.1, left=0.85, wgap=1.0, bottom=0.55 + _legend_height(len(order), ncol, True)
        )
        for ax, target, label in ((axes[0, 0], need_target, "need"), (axes[0, 1], cost_target, "cost")):
            for i, g in enumerate(order):
                d = data[(data["target"] == target) & (data["group"] == g)]
                if d.empty:
                    continue
                ax.plot(
                    d["percentile"],
                    d["mean"],
                    label=g + (" (reference)" if g == reference else ""),
                    **group_style(i),
                    markevery=1,
                )
            if cut is not None:
                ax.axvline(cut, color="#555555", linewidth=0.8, linestyle=(0, (2, 2)))
                ax.annotate(
                    describe_operating_point(str(operating_point)),
                    (cut, 1),
                    xycoords=("data", "axes fraction"),
                    ha="right",
                    va="top",
                    fontsize=7,
                    color="#333333",
                    xytext=(-2, -2),
                    textcoords="offset points",
                )
            ax.set_xlim(0, 100)
            values = data.loc[data["target"] == target, "mean"].to_numpy(dtype=np.float64)
            if values.size and np.nanmin(values) > 0:
                _log_axis(ax, "y", float(np.nanmin(values)), float(np.nanmax(values)))
            ax.set_xlabel(f"percentile of {model} score")
            ax.set_ylabel(f"mean {target} (log scale)")
            ax.set_title(f"{label.capitalize()}: {target}")
        handles, labels = axes[0, 0].get_legend_handles_labels()
        _bottom_legend(fig, handles, labels, ncol, title=attribute)
        return fig

    top = data[data["percentile"] >= (cut if cut is not None else 95) - 2.5]
    summary = []
    for target, label in ((need_target, "need"), (cost_target, "cost")):
        t = top[top["target"] == target].groupby("group")["mean"].mean()
        if len(t) >= 2:
            summary.append(
                f"among the highest scores, mean {label} ranges from {_fmt(float(t.min()))} ({t.idxmin()}) "
                f"to {_fmt(float(t.max()))} ({t.idxmax()})"
            )
    alt = (
        f"Two line charts for the {model} score by {attribute}: mean {need_target} (left) and mean {cost_target} "
        f"(right) against the percentile of the score, one line per group ({', '.join(order)}). "
        + ("; ".join(summary).capitalize() + "." if summary else "")
    )
    caption = (
        f"Need (left) and cost (right) by percentile of the {model} score, per {attribute} group: means over "
        "bands of 5 percentiles, on log scales. At the same score, a group whose need line lies above the reference "
        "group's while its cost line does not is sicker than its cost suggests."
    )
    return _render(fid, f"Need and cost by score: {model}, {attribute}", alt, caption, draw, data=data)


def need_cost_by_percentile(
    curves: pd.DataFrame,
    *,
    model: str,
    attribute: str,
    groups: Sequence[str],
    reference: str | None,
    need_target: str,
    cost_target: str,
    operating_point: str | None = None,
) -> Figure | None:
    """Side-by-side panels: mean need and mean cost by percentile of the score, one line per group.

    Where the need lines of two groups part while their cost lines stay together, the score ranks
    the groups alike on cost but not on need (Obermeyer et al. 2019, Figure 1).
    """
    if len(groups) > MAX_GROUPS:
        return None
    return draw_need_cost(
        need_cost_data(curves, model, attribute, [need_target, cost_target]),
        model=model,
        attribute=attribute,
        groups=groups,
        reference=reference,
        need_target=need_target,
        cost_target=cost_target,
        operating_point=operating_point,
    )


# --- label gap at equal score ------------------------------------------------------------------------


def draw_label_gap(frame: pd.DataFrame, *, model: str, flag_at: float = 1.1) -> Figure | None:
    """Draw :func:`~phm_audit.report._figure_data.label_gap_data`: a forest plot, one row per group."""
    if frame.empty:
        return None
    rows = list(dict.fromkeys(zip(frame["attribute"], frame["group"], strict=True)))
    targets = list(dict.fromkeys(frame["target"]))
    labels = [f"{a}: {g}" for a, g in rows]
    fid = f"fig-label-gap-{_slug(model)}"
    span = frame.attrs.get("span")

    def draw() -> MplFigure:
        fig, axes = _new_figure(
            axes_height=0.22 * len(rows) + 0.2,
            left=0.25 + _width(labels),
            top=0.15,
            bottom=0.55 + (_legend_height(len(targets), len(targets)) if len(targets) > 1 else 0.0),
        )
        ax = axes[0, 0]
        y = np.arange(len(rows))[::-1].astype(float)
        for j, target in enumerate(targets):
            f = frame[frame["target"] == target]
            dy = (j - (len(targets) - 1) / 2) * 0.25
            style = group_style(j + 4)
            ax.errorbar(
                _shown(f),
                y + dy,
                xerr=_interval(f),
                linestyle="none",
                capsize=2,
                color=style["color"],
                marker=style["marker"],
                label=f"need = {target}",
            )
        ax.axvline(1.0, color="black", linewidth=0.9)
        ax.axvline(flag_at, color="#555555", linewidth=0.8, linestyle=(0, (3, 2)))
        ax.set_yticks(y, labels)
        low = min(span[0] if span else 0.9, 0.9)
        high = max(span[1] if span else 1.2, flag_at * 1.05)
        _log_axis(ax, "x", low, high)
        ax.set_xlabel("label gap at equal score (need ratio / cost ratio; 1 = no gap; log scale)")
        if len(targets) > 1:
            handles, names = ax.get_legend_handles_labels()
            _bottom_legend(fig, handles, names, len(targets))
        return fig

    primary = frame[frame["target"] == targets[0]].set_index(["attribute", "group"])["value"].dropna()
    extreme = ""
    if len(primary):
        attribute, group = (str(k) for k in cast(tuple, worst(primary, "label_gap_at_equal_score", "calibration")))
        extreme = f" The largest gap is for {attribute} {group} ({_fmt(float(primary.max()))})."
    alt = (
        f"Forest plot for {model}: the label gap at equal score for each group against its reference group, "
        f"with 95% intervals, on a log scale with a line at 1 (no gap) and a dashed line at {flag_at:g} (the flag "
        f"threshold).{extreme}"
    )
    caption = (
        "Label gap = need ratio at equal score / cost ratio at equal score, each by direct standardisation "
        "against the reference group. Above 1: at the same score the group is sicker, relative to the reference, "
        "than its cost shows, so a cost label under-states its need."
    )
    return _render(fid, f"Label gap at equal score: {model}", alt, caption, draw, data=frame)


def label_gap_figure(
    table: pd.DataFrame,
    *,
    model: str,
    need_targets: Sequence[str],
    attributes: Attributes,
    flag_at: float = 1.1,
) -> Figure | None:
    """Forest plot of the label gap at equal score (need ratio over cost ratio), per group, with intervals."""
    frame = label_gap_data(table, model=model, need_targets=need_targets, attributes=attributes)
    return draw_label_gap(frame, model=model, flag_at=flag_at)


# --- reliability diagram -----------------------------------------------------------------------------


def draw_reliability(frame: pd.DataFrame, *, model: str, attributes: Attributes) -> Figure | None:
    """Draw :func:`~phm_audit.report._figure_data.reliability_data`: one panel per attribute."""
    if frame.empty:
        return None
    target = str(frame["target"].iloc[0])
    panels = [(a, gr) for a, gr in attributes.items() if a in set(frame["attribute"])]
    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fid = f"fig-reliability-{_slug(model)}"

    def draw() -> MplFigure:
        fig, axes = _new_figure(nrows=nrows, ncols=ncols, axes_height=1.9, hgap=0.8)
        for k, ax in enumerate(axes.ravel()):
            if k >= len(panels):
                ax.set_visible(False)
                continue
            attribute, (groups, reference) = panels[k]
            lims = [np.inf, -np.inf]
            for i, g in enumerate(ordered_groups(groups, reference)):
                d = frame[(frame["attribute"] == attribute) & (frame["group"] == g)]
                both = d[["predicted", "observed"]].dropna()
                if both.empty:
                    continue
                ax.plot(both["predicted"], both["observed"], label=g, **group_style(i))
                lims = [min(lims[0], both.min().min()), max(lims[1], both.max().max())]
            if np.isfinite(lims[0]):
                ax.plot(lims, lims, color="#888888", linewidth=0.8, linestyle=(0, (1, 1)))
            ax.set_title(attribute, loc="left")
            ax.set_xlabel("predicted (mean in bin)")
            ax.set_ylabel("observed (mean in bin)")
            ax.legend(frameon=False, fontsize=6.5)
        return fig

    alt = (
        f"Reliability diagrams for {model}: observed {target} against predicted {target} by bin of prediction, "
        f"one line per group, one panel per attribute ({', '.join(a for a, _ in panels)}); the dotted diagonal "
        "is perfect calibration."
    )
    caption = (
        f"Calibration of {model} on its own scale ({target}), per group. Points below the diagonal: the model "
        "over-predicts for that group; above: it under-predicts."
    )
    return _render(fid, f"Reliability: {model}", alt, caption, draw, data=frame)


def reliability_figure(curves: pd.DataFrame, *, model: str, attributes: Attributes) -> Figure | None:
    """Observed against predicted mean by bin of prediction, per group, one panel per attribute."""
    return draw_reliability(
        reliability_data(curves, model=model, attributes=attributes), model=model, attributes=attributes
    )
