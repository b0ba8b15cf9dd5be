"""Figures of decisions about a score: capacity, net benefit, explanations, judgement and label choice,
drawn from the frames of :mod:`phm_audit.report._figure_data`.

Each ``draw_*`` function draws one frame (and returns None for an empty one); each ``*_figure``
function computes its frame from the tidy table and draws it.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.figure import Figure as MplFigure

from phm_audit.audit._metrics import lookup
from phm_audit.report._figure_data import (
    MAX_GROUPS,
    NET_BENEFIT_GAIN,
    Attributes,
    explain_data,
    judgement_data,
    label_choice_data,
    net_benefit_data,
    ordered_groups,
    thresholds_data,
)
from phm_audit.report._figures_base import (
    OKABE_ITO,
    Figure,
    _bottom_legend,
    _err,
    _interval,
    _legend_height,
    _new_figure,
    _render,
    _shown,
    _slug,
    _width,
    group_style,
)
from phm_audit.report._findings import describe_operating_point

__all__ = [
    "draw_explain",
    "draw_judgement",
    "draw_label_choice",
    "draw_net_benefit",
    "draw_thresholds",
    "explain_figure",
    "judgement_figure",
    "label_choice_figure",
    "net_benefit_figure",
    "thresholds_figure",
]


def _panels(frame: pd.DataFrame, attributes: Attributes) -> list[tuple[str, tuple[list[str], str | None]]]:
    """The attributes with rows in ``frame``, in the order of ``attributes``, with their groups in drawing order."""
    have = set(frame["attribute"])
    return [(a, (ordered_groups(gr[0], gr[1]), gr[1])) for a, gr in attributes.items() if a in have]


# --- thresholds and capacity -------------------------------------------------------------------------


def draw_thresholds(frame: pd.DataFrame, *, model: str, attributes: Attributes) -> Figure | None:
    """Draw :func:`~phm_audit.report._figure_data.thresholds_data`: two line charts per attribute."""
    panels = _panels(frame, attributes)
    if frame.empty or not panels:
        return None
    fid = f"fig-thresholds-{_slug(model)}"

    def draw() -> MplFigure:
        fig, axes = _new_figure(nrows=len(panels), ncols=2, axes_height=1.5, hgap=0.45, sharex=True)
        for r, (attribute, (groups, _)) in enumerate(panels):
            for c, metric in enumerate(("selection_rate", "unmet_need_rate")):
                ax = axes[r, c]
                for i, g in enumerate(groups):
                    d = frame[(frame["attribute"] == attribute) & (frame["group"] == g) & (frame["metric"] == metric)]
                    if d.empty:
                        continue
                    ax.plot(d["x"], _shown(d), label=g, **group_style(i), markevery=max(1, len(d) // 8))
                ax.set_ylabel(("selected" if metric == "selection_rate" else "high need not flagged") + " (%)")
                ax.set_title(f"{attribute}: " + ("selection rate" if c == 0 else "unmet need"), loc="left")
                if r == len(panels) - 1:
                    ax.set_xlabel("capacity (% of the population flagged)")
            # the legend of each attribute's groups goes on the right panel, or the left if that alone has lines
            drawn = [a for a in axes[r] if a.get_legend_handles_labels()[0]]
            if drawn:
                drawn[-1].legend(frameon=False, fontsize=6.5)
        return fig

    alt = (
        f"Line charts for {model}: for each attribute ({', '.join(a for a, _ in panels)}), the share of each group "
        "selected (left) and the share of each group's high-need members left unflagged (right), as capacity "
        "rises from the smallest to the largest share of the population swept."
    )
    caption = (
        f"The threshold sweep of {model}: how selection and unmet need change with capacity, per group. Lines "
        "that stay apart at every capacity show a gap that a larger service does not close."
    )
    return _render(fid, f"Thresholds and capacity: {model}", alt, caption, draw, data=frame)


def thresholds_figure(table: pd.DataFrame, *, model: str, attributes: Attributes) -> Figure | None:
    """Selection rate and unmet-need rate against capacity (share of the population flagged), per group."""
    return draw_thresholds(
        thresholds_data(table, model=model, attributes=attributes), model=model, attributes=attributes
    )


# --- net benefit -------------------------------------------------------------------------------------


def draw_net_benefit(frame: pd.DataFrame, *, model: str, attributes: Attributes) -> Figure | None:
    """Draw :func:`~phm_audit.report._figure_data.net_benefit_data`: everyone, then one panel per attribute."""
    if frame.empty:
        return None
    gain = frame[frame["metric"] == NET_BENEFIT_GAIN]
    overall = frame[frame["metric"] != NET_BENEFIT_GAIN]
    panels = _panels(gain, attributes)
    n_axes = 1 + len(panels)
    ncols = min(3, n_axes)
    nrows = math.ceil(n_axes / ncols)
    target = str(frame["target"].iloc[0])
    fid = f"fig-net-benefit-{_slug(model)}"

    def draw() -> MplFigure:
        fig, axes = _new_figure(nrows=nrows, ncols=ncols, axes_height=1.9, hgap=0.8, left=0.8, wgap=0.95)
        flat = axes.ravel()
        ax = flat[0]
        for k, (metric, label) in enumerate((("net_benefit", model), ("net_benefit_treat_all", "treat all"))):
            d = overall[overall["metric"] == metric]
            ax.plot(d["x"], d["value"], label=label, **group_style(k + (0 if k == 0 else 4)), markevery=5)
        ax.axhline(0, color="#888888", linewidth=0.8, linestyle=(0, (1, 1)), label="treat none")
        ax.set_title("everyone", loc="left")
        ax.set_xlabel("threshold probability")
        ax.set_ylabel(lookup("net_benefit", "net_benefit").label)
        ax.legend(frameon=False, fontsize=6.5)
        vals = overall[overall["metric"] == "net_benefit"]["value"].to_numpy(dtype=np.float64)
        if np.isfinite(vals).any():
            top = np.nanmax(vals)
            ax.set_ylim(min(-0.25 * abs(top), -0.005), 1.15 * abs(top) + 1e-6)
        for k, (attribute, (groups, _)) in enumerate(panels, start=1):
            ax = flat[k]
            for i, g in enumerate(groups):
                d = gain[(gain["attribute"] == attribute) & (gain["group"] == g)]
                if d.empty:
                    continue
                ax.plot(d["x"], d["value"], label=g, **group_style(i), markevery=5)
            ax.axhline(0, color="#888888", linewidth=0.8)
            ax.set_title(attribute, loc="left")
            ax.set_xlabel("threshold probability")
            ax.set_ylabel("net benefit over the best default")
            ax.legend(frameon=False, fontsize=6.5)
        for ax in flat[n_axes:]:
            ax.set_visible(False)
        return fig

    alt = (
        f"Decision curves for {model} predicting {target}: net benefit against threshold probability for everyone "
        "(with treat-all and treat-none), then, per attribute, each group's net benefit over the better of treating "
        "everyone in the group and treating no one; above 0 the model helps that group."
    )
    caption = (
        f"Net benefit of acting on {model} (Vickers & Elkin 2006): NB = TP/N - FP/N x pt/(1 - pt). Per group, the "
        "curves show the model's net benefit minus the better of treat-all and treat-none for that group: a group "
        "whose curve sits at or below 0 gains nothing from the model at that threshold."
    )
    return _render(fid, f"Net benefit: {model}", alt, caption, draw, data=frame)


def net_benefit_figure(table: pd.DataFrame, *, model: str, attributes: Attributes) -> Figure | None:
    """Decision curves: net benefit against threshold probability overall, and per group relative to treat-all."""
    frame = net_benefit_data(table, model=model, attributes=attributes)
    return draw_net_benefit(frame, model=model, attributes=attributes)


# --- explanations ------------------------------------------------------------------------------------


def draw_explain(frame: pd.DataFrame, *, model: str) -> Figure | None:
    """Draw :func:`~phm_audit.report._figure_data.explain_data`: a bar chart and a dot plot by feature."""
    imp = frame[frame["metric"] == "mean_abs_shap"].sort_values("rank", kind="stable")
    gap = frame[frame["metric"] == "gap_contribution"]
    if imp.empty and gap.empty:
        return None
    gap_feats = [str(f) for f in gap.sort_values("rank", kind="stable")["feature"].drop_duplicates()]
    pairs = list(dict.fromkeys(zip(gap["attribute"], gap["group"], strict=True)))
    n_axes = int(not imp.empty) + int(bool(pairs))
    fid = f"fig-explain-{_slug(model)}"

    def draw() -> MplFigure:
        rows_n = max(len(imp), len(gap_feats), 2)
        imp_width = _width(list(imp["feature"].astype(str))) if not imp.empty else 0.0
        gap_width = _width(gap_feats) if pairs else 0.0
        fig, axes = _new_figure(
            ncols=n_axes,
            axes_height=0.22 * rows_n + 0.2,
            left=0.25 + (imp_width or gap_width),
            wgap=0.35 + gap_width,
            bottom=0.55 + (_legend_height(len(pairs), 4) if pairs else 0.0),
        )
        k = 0
        if not imp.empty:
            ax = axes[0, k]
            y = np.arange(len(imp))[::-1]
            v = imp["value"].to_numpy(dtype=np.float64)
            err = _err(v, imp["ci_low"].to_numpy(dtype=np.float64), imp["ci_high"].to_numpy(dtype=np.float64))
            ax.barh(y, v, color=OKABE_ITO[4], hatch="//", edgecolor="white", xerr=err, capsize=2)
            ax.set_yticks(y, imp["feature"].astype(str))
            ax.set_xlabel("mean |SHAP value|")
            ax.set_title("what drives the score", loc="left")
            k += 1
        if pairs:
            ax = axes[0, k]
            y = np.arange(len(gap_feats))[::-1]
            pos = dict(zip(gap_feats, y, strict=True))
            for i, (attribute, g) in enumerate(pairs):
                d = gap[(gap["attribute"] == attribute) & (gap["group"] == g)]
                style = group_style(i + 1)
                ax.plot(
                    d["value"],
                    [pos[f] for f in d["feature"]],
                    linestyle="none",
                    marker=style["marker"],
                    color=style["color"],
                    label=f"{attribute}: {g}",
                )
            ax.axvline(0, color="black", linewidth=0.8)
            ax.set_yticks(y, gap_feats)
            ax.set_xlabel("contribution to the score gap")
            ax.set_title("what makes the groups differ", loc="left")
            handles, names = ax.get_legend_handles_labels()
            _bottom_legend(fig, handles, names, 4)
        return fig

    names = ", ".join(imp["feature"].astype(str).head(3)) if len(imp) else ""
    alt = (
        f"Explanations of {model}: "
        + (f"a bar chart of mean absolute SHAP value per feature (largest: {names})" if names else "")
        + ("; " if names and pairs else "")
        + ("a dot plot of each feature's contribution to the score gap between groups" if pairs else "")
        + "."
    )
    caption = (
        f"Which inputs drive the {model} score, and which of them carry the difference between groups: a feature "
        "that contributes much to a group's gap may stand in for the protected attribute."
    )
    return _render(fid, f"Explanations: {model}", alt, caption, draw, data=frame)


def explain_figure(table: pd.DataFrame, *, model: str, top: int = 12) -> Figure | None:
    """Mean |SHAP| per feature and, where present, each feature's contribution to the group gaps."""
    return draw_explain(explain_data(table, model=model, top=top), model=model)


# --- judgement and label choice ----------------------------------------------------------------------


def draw_judgement(frame: pd.DataFrame) -> Figure | None:
    """Draw :func:`~phm_audit.report._figure_data.judgement_data`: one point per model, with intervals."""
    if frame.empty:
        return None
    need = frame[frame["metric"] == "share_of_need_captured"].set_index("model")
    cost = frame[frame["metric"] == "share_of_cost_captured"].set_index("model")
    models = list(need.index)
    op = str(frame["operating_point"].iloc[0])

    def draw() -> MplFigure:
        fig, axes = _new_figure(axes_height=3.0, right=0.6 + _width(models), top=0.15, bottom=0.55)
        ax = axes[0, 0]
        for i, m in enumerate(models):
            style = group_style(i)
            ax.errorbar(
                _shown(need.loc[[m]])[0],
                _shown(cost.loc[[m]])[0],
                xerr=_interval(need.loc[[m]]),
                yerr=_interval(cost.loc[[m]]),
                marker=style["marker"],
                color=style["color"],
                linestyle="none",
                capsize=2,
                label=m,
            )
        ax.set_xlabel("share of all need held by those flagged (%)")
        ax.set_ylabel("share of all cost held by those flagged (%)")
        handles, names = ax.get_legend_handles_labels()
        fig.legend(handles, names, loc="center right", frameon=False)
        return fig

    captured = need["value"].astype(float)
    best = max(models, key=lambda m: float(captured[m]))
    alt = (
        f"Scatter plot at {describe_operating_point(op)}: for each of {len(models)} models, the share of all need "
        f"(x) and of all cost (y) held by the people it flags, with 95% intervals. {best} captures the most need "
        f"({100 * float(captured[best]):.1f}%)."
    )
    caption = (
        f"Actuarial, clinical and judgement-based scores on one footing, at {describe_operating_point(op)}: a "
        "score built for cost sits high on the vertical axis; one built for need sits far to the right."
    )
    return _render("fig-judgement", "Need and cost captured by each model", alt, caption, draw, data=frame)


def judgement_figure(table: pd.DataFrame) -> Figure | None:
    """Share of all need against share of all cost held by those each model flags, with intervals."""
    return draw_judgement(judgement_data(table))


def draw_label_choice(frame: pd.DataFrame, *, attributes: Attributes) -> Figure | None:
    """Draw :func:`~phm_audit.report._figure_data.label_choice_data`: one dot plot per attribute."""
    panels = _panels(frame, attributes)
    if frame.empty or not panels:
        return None
    models = list(dict.fromkeys(frame["model"]))[:MAX_GROUPS]
    heights = [max(len(gr[0]), 2) for _, gr in panels]
    op = str(frame["operating_point"].dropna().iloc[0])

    def draw() -> MplFigure:
        fig, grid = _new_figure(
            nrows=len(panels),
            axes_height=0.3,
            height_ratios=heights,
            left=0.3 + _width([g for _, gr in panels for g in gr[0]]),
            hgap=0.75,
            bottom=0.5 + _legend_height(len(models), 2),
        )
        axes = grid[:, 0]
        for ax, (attribute, (groups, _)) in zip(axes, panels, strict=True):
            order = groups[::-1]
            y = np.arange(len(order))
            for i, m in enumerate(models):
                d = frame[(frame["attribute"] == attribute) & (frame["model"] == m)].set_index("group").reindex(order)
                dy = (i - (len(models) - 1) / 2) * (0.7 / max(len(models), 1))
                style = group_style(i)
                ax.errorbar(
                    _shown(d),
                    y + dy,
                    xerr=_interval(d),
                    linestyle="none",
                    marker=style["marker"],
                    color=style["color"],
                    capsize=1.5,
                    label=m,
                )
            ax.set_yticks(y, order)
            ax.set_title(attribute, loc="left")
            ax.set_xlabel("share of those flagged (%)")
        handles, labels = axes[0].get_legend_handles_labels()
        _bottom_legend(fig, handles, labels, 2)
        return fig

    alt = (
        f"Dot plots at {describe_operating_point(op)}: for each attribute, each group's share of those flagged when "
        f"the same learner is trained on each label ({', '.join(models)}), with 95% intervals."
    )
    caption = (
        "Label choice (Obermeyer et al. 2019, Table 2): the same learner retrained on each candidate label. "
        "Where a group's share moves with the label, the choice of label, not the learner, decides who is flagged."
    )
    return _render("fig-label-choice", "Who is flagged under each label", alt, caption, draw, data=frame)


def label_choice_figure(table: pd.DataFrame, *, attributes: Attributes) -> Figure | None:
    """Each group's share of those flagged when the same learner is trained on each label."""
    return draw_label_choice(label_choice_data(table, attributes=attributes), attributes=attributes)
