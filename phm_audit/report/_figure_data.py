"""The numbers each figure of a report draws, computed apart from drawing them.

Each ``*_data`` function takes the (disclosure-controlled) tidy table or curves a figure is made from
and returns a small tidy :class:`pandas.DataFrame` of exactly what the figure draws, like
scikit-learn's ``CalibrationDisplay.from_predictions`` before its ``plot``; the drawing functions
(:mod:`phm_audit.report._figures`) only draw such a frame. A figure's numbers can so be tested, or
written out, without a plotting library: this module imports none.

What the frames share:

- rows keep the table's values, intervals and counts unchanged: a suppressed value stays missing
  (``NaN``), never 0; in the dot and forest plots (one place on an axis per group), a group without
  a row in the table has a row whose numbers are missing; line charts hold the rows there are;
- groups are listed in the audit's order (the figures put the reference group first);
- ``fmt`` is the metric's format from the metric registry (:func:`phm_audit.audit._metrics.lookup`):
  the figures draw a ``"percent"`` value as per cent;
- an empty frame (no rows) means the figure is not drawn.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from phm_audit.audit._metrics import lookup
from phm_audit.audit._operating_points import describe_point

__all__ = [
    "MAX_GROUPS",
    "Attributes",
    "explain_data",
    "headline_data",
    "judgement_data",
    "label_choice_data",
    "label_gap_data",
    "need_cost_data",
    "net_benefit_data",
    "ordered_groups",
    "reliability_data",
    "shares_data",
    "thresholds_data",
    "worst",
]

#: Most groups a figure draws as separate series (one colour, marker and line style each); attributes
#: with more (intersections) are left to tables.
MAX_GROUPS = 8
#: Each attribute's groups, in the audit's order, and its reference group (``AuditResult.groups``).
Attributes = Mapping[str, tuple[Sequence[str], str | None]]
#: The metric a figure's net-benefit panels draw per group: net benefit minus the better of treating
#: everyone in the group and treating no one (not a published metric: made from two that are).
NET_BENEFIT_GAIN = "net_benefit_over_best_default"

_ROW = ["value", "ci_low", "ci_high", "n"]


def ordered_groups(groups: Sequence[str], reference: str | None) -> list[str]:
    """The reference group first, then the others in their order.

    Examples
    --------
    >>> ordered_groups(["1", "2", "3"], "3")
    ['3', '1', '2']
    """
    out = list(dict.fromkeys(groups))
    if reference is not None and reference in out:
        out.remove(reference)
        out.insert(0, reference)
    return out


def worst(values: pd.Series, metric: str, analysis: str = "*") -> Hashable:
    """The index of the value on ``metric``'s harmful side (the registry's ``harmful``), NaN skipped.

    The first such value wins a tie. Raises :class:`ValueError` for a metric without a harmful side.

    Examples
    --------
    >>> worst(pd.Series([1.2, 0.7, float("nan")], index=["a", "b", "c"]), "flagged_to_high_need_ratio")
    'b'
    """
    harmful = lookup(metric, analysis).harmful
    if harmful == "lower":
        return values.idxmin()
    if harmful == "higher":
        return values.idxmax()
    raise ValueError(f"metric {metric} has no harmful side")


def _rows(table: pd.DataFrame, **where: Any) -> pd.DataFrame:
    mask = np.ones(len(table), dtype=bool)
    for col, value in where.items():
        mask &= (table[col] == value).to_numpy()
    return table[mask]


def _formats(metrics: pd.Series, analysis: str) -> pd.Series:
    """Each metric's format, read from the registry."""
    fmt = {m: lookup(str(m), analysis).fmt for m in metrics.unique()}
    return metrics.map(fmt).astype(object)


def _empty(columns: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame(columns=list(columns))


def _reindexed(rows: pd.DataFrame, groups: Sequence[str], columns: Sequence[str], **constant: Any) -> pd.DataFrame:
    """``rows`` (one per group) at ``groups``, missing where a group has none, with constant columns."""
    f = rows.set_index("group").reindex(list(dict.fromkeys(groups)))
    out = f[[c for c in columns if c in f.columns and c not in constant]].rename_axis("group").reset_index()
    return out.assign(**constant)[list(columns)]


def _point_values(op: pd.Series, kind: str) -> np.ndarray:
    """The value of each operating point of ``kind`` (as the audit describes it), NaN for the others."""
    values = {}
    for name in op.unique():
        point = describe_point(str(name))
        values[name] = point["value"] if point["kind"] == kind and point["place"] is None else None
    return pd.to_numeric(op.map(values), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def _capacity(op: pd.Series) -> np.ndarray:
    """Per cent of the population flagged, for ``top_pct`` operating points (NaN for others)."""
    return _point_values(op, "top_pct")


def _threshold(op: pd.Series) -> np.ndarray:
    """Threshold probability, for net benefit's operating points (NaN for others)."""
    return _point_values(op, "threshold_probability")


def _panels(attributes: Attributes, present: pd.Series) -> list[tuple[str, tuple[Sequence[str], str | None]]]:
    """The attributes a figure gives a panel: few enough groups to draw, and rows in ``present``."""
    have = set(present)
    return [(a, gr) for a, gr in attributes.items() if len(gr[0]) <= MAX_GROUPS and a in have]


# --- fairness at an operating point ----------------------------------------------------------------


def headline_data(
    table: pd.DataFrame, *, models: Sequence[str], operating_point: str, attributes: Attributes
) -> pd.DataFrame:
    """Each group's share of those flagged over its share of the highest need, under every model.

    Parameters
    ----------
    table : pandas.DataFrame
        The tidy metrics table.
    models : sequence of str
        Models to draw side by side.
    operating_point : str
    attributes : mapping
        Each attribute's groups and reference group.

    Returns
    -------
    pandas.DataFrame
        Columns ``attribute, model, group, metric, value, ci_low, ci_high, n, fmt``: one row per
        attribute drawn (at most :data:`MAX_GROUPS` groups, with rows), model with rows at the
        operating point (in the order of ``models``) and group.
    """
    metric = "flagged_to_high_need_ratio"
    cols = ["attribute", "model", "group", "metric", *_ROW, "fmt"]
    sub = table[
        (table["analysis"] == "fairness")
        & (table["operating_point"] == operating_point)
        & (table["metric"] == metric)
        & table["model"].isin(list(models))
    ]
    shown = [m for m in models if (sub["model"] == m).any()]
    fmt = lookup(metric, "fairness").fmt
    blocks = []
    for attribute, (groups, _) in attributes.items():
        rows = sub[sub["attribute"] == attribute]
        if rows.empty or len(groups) > MAX_GROUPS:
            continue
        for model in shown:
            blocks.append(
                _reindexed(
                    rows[rows["model"] == model], groups, cols, attribute=attribute, model=model, metric=metric, fmt=fmt
                )
            )
    return pd.concat(blocks, ignore_index=True) if blocks else _empty(cols)


def shares_data(table: pd.DataFrame, *, model: str, operating_point: str, attributes: Attributes) -> pd.DataFrame:
    """Per attribute, each group's share of the highest need and its share of those flagged.

    Returns
    -------
    pandas.DataFrame
        Columns ``attribute, metric, group, value, ci_low, ci_high, n, fmt``: for each attribute with
        both shares (and at most :data:`MAX_GROUPS` groups), ``high_need_share`` then ``flagged_share``
        of every group.
    """
    cols = ["attribute", "metric", "group", *_ROW, "fmt"]
    blocks = []
    for attribute, (groups, _) in attributes.items():
        sub = _rows(table, model=model, analysis="fairness", attribute=attribute, operating_point=operating_point)
        fs, hs = sub[sub["metric"] == "flagged_share"], sub[sub["metric"] == "high_need_share"]
        if fs.empty or hs.empty or len(groups) > MAX_GROUPS:
            continue
        for metric, rows in (("high_need_share", hs), ("flagged_share", fs)):
            fmt = lookup(metric, "fairness").fmt
            blocks.append(_reindexed(rows, groups, cols, attribute=attribute, metric=metric, fmt=fmt))
    return pd.concat(blocks, ignore_index=True) if blocks else _empty(cols)


def label_gap_data(
    table: pd.DataFrame, *, model: str, need_targets: Sequence[str], attributes: Attributes
) -> pd.DataFrame:
    """The label gap at equal score of every group against its reference group, per need target.

    Returns
    -------
    pandas.DataFrame
        Columns ``target, attribute, group, value, ci_low, ci_high, n, fmt``: for each need target
        with rows (in the order of ``need_targets``), every group but the reference of every attribute.
        ``attrs["span"]`` is the smallest and largest positive value or interval end among all the
        model's label gaps for these targets (other attributes and intersections too), or None: the
        figure's scale spans them all.
    """
    cols = ["target", "attribute", "group", *_ROW, "fmt"]
    sub = _rows(table, model=model, analysis="calibration", metric="label_gap_at_equal_score")
    sub = sub[sub["target"].isin(need_targets)]
    pairs = [(a, g) for a, (groups, reference) in attributes.items() for g in groups if g != reference]
    if sub.empty or not pairs:
        return _empty(cols)
    targets = [t for t in need_targets if t in set(sub["target"])]
    keyed = sub.set_index(["attribute", "group", "target"])
    index = pd.MultiIndex.from_tuples([(a, g, t) for t in targets for a, g in pairs], names=keyed.index.names)
    out = keyed.reindex(index)[_ROW].reset_index()
    out["fmt"] = lookup("label_gap_at_equal_score", "calibration").fmt
    values = keyed[["value", "ci_low", "ci_high"]].to_numpy(dtype=np.float64)
    values = values[np.isfinite(values) & (values > 0)]
    out = out[cols]
    out.attrs["span"] = (float(values.min()), float(values.max())) if values.size else None
    return out


# --- curves ----------------------------------------------------------------------------------------


def need_cost_data(
    curves: pd.DataFrame, model: str, attribute: str, targets: Sequence[str], bands: int = 20
) -> pd.DataFrame:
    """Mean of each target by band of the score's percentile, per group.

    Percentile bins (``bins == "percentile"``) are placed at the mid-rank of the whole population
    (so a score with few distinct values, binned one bin per value, lands at its true percentile)
    and merged into ``bands`` equal bands, each a mean weighted by the bins' published counts. A bin
    whose mean or count is missing (suppressed) is left out of its band.

    Returns
    -------
    pandas.DataFrame
        Columns ``target, group, band, percentile, mean, n``.
    """
    cols = ["target", "group", "band", "percentile", "mean", "n"]
    sub = curves[(curves["model"] == model) & (curves["attribute"] == attribute) & (curves["bins"] == "percentile")]
    sub = sub[sub["target"].isin(targets)]
    if sub.empty:
        return _empty(cols)
    first = sub[sub["target"] == sub["target"].iloc[0]]
    pooled = first.assign(_n=pd.to_numeric(first["n"], errors="coerce").fillna(0)).groupby("bin")["_n"].sum()
    total = float(pooled.sum())
    if total <= 0:
        return _empty(cols)
    mid = (pooled.cumsum() - pooled / 2) / total * 100
    out = sub.assign(
        percentile=sub["bin"].map(mid).to_numpy(dtype=np.float64),
        _n=pd.to_numeric(sub["n"], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan),
        mean=sub["mean"].to_numpy(dtype=np.float64),
    )
    out = out[np.isfinite(out["_n"]) & np.isfinite(out["mean"]) & (out["_n"] > 0)]
    out = out.assign(band=np.minimum((out["percentile"] // (100 / bands)).astype(int), bands - 1))
    out = out.assign(_w=out["_n"] * out["mean"], _wx=out["_n"] * out["percentile"])
    agg = out.groupby(["target", "group", "band"], sort=False)[["_n", "_w", "_wx"]].sum().reset_index()
    agg["mean"] = agg["_w"] / agg["_n"]
    agg["percentile"] = agg["_wx"] / agg["_n"]
    agg["n"] = agg["_n"]
    return agg[cols].sort_values(["target", "group", "band"], kind="stable").reset_index(drop=True)


def reliability_data(curves: pd.DataFrame, *, model: str, attributes: Attributes) -> pd.DataFrame:
    """Observed against predicted mean, by bin of prediction, per group of each attribute drawn.

    The observed target is the first (in sorted order) that the curves also hold as
    ``"predicted <target>"``.

    Returns
    -------
    pandas.DataFrame
        Columns ``attribute, group, target, bin, predicted, observed, n`` (``n`` of the observed bin),
        one row per bin with either mean.
    """
    cols = ["attribute", "group", "target", "bin", "predicted", "observed", "n"]
    sub = _rows(curves, model=model, bins="reliability")
    predicted = sorted(t for t in sub["target"].unique() if str(t).startswith("predicted "))
    if sub.empty or not predicted:
        return _empty(cols)
    target = predicted[0].removeprefix("predicted ")
    blocks = []
    for attribute, (groups, _) in _panels(attributes, sub["attribute"]):
        for g in dict.fromkeys(groups):
            obs = _rows(sub, attribute=attribute, group=g, target=target).set_index("bin")
            pred = _rows(sub, attribute=attribute, group=g, target=f"predicted {target}").set_index("bin")["mean"]
            both = pd.concat([pred.rename("predicted"), obs["mean"].rename("observed"), obs["n"]], axis=1)
            if len(both):
                blocks.append(both.rename_axis("bin").reset_index().assign(attribute=attribute, group=g, target=target))
    return pd.concat(blocks, ignore_index=True)[cols] if blocks else _empty(cols)


# --- sweeps and decisions --------------------------------------------------------------------------


def thresholds_data(table: pd.DataFrame, *, model: str, attributes: Attributes) -> pd.DataFrame:
    """Selection rate and unmet-need rate against capacity, per group of each attribute drawn.

    Returns
    -------
    pandas.DataFrame
        Columns ``attribute, group, metric, operating_point, x, value, ci_low, ci_high, n, fmt``, ``x``
        the capacity (per cent of the population flagged); rows in order of ``x``.
    """
    cols = ["attribute", "group", "metric", "operating_point", "x", *_ROW, "fmt"]
    sub = _rows(table, model=model, analysis="thresholds")
    sub = sub[sub["metric"].isin(["selection_rate", "unmet_need_rate"])]
    panels = _panels(attributes, sub["attribute"])
    if sub.empty or not panels:
        return _empty(cols)
    drawn = np.zeros(len(sub), dtype=bool)
    for attribute, (groups, _) in panels:
        drawn |= ((sub["attribute"] == attribute) & sub["group"].isin(list(groups))).to_numpy()
    sub = sub[drawn]
    out = sub.assign(x=_capacity(sub["operating_point"]), fmt=_formats(sub["metric"], "thresholds"))
    return out.sort_values("x", kind="stable")[cols].reset_index(drop=True)


def net_benefit_data(table: pd.DataFrame, *, model: str, attributes: Attributes) -> pd.DataFrame:
    """Decision curves: net benefit against threshold probability, for everyone and per group.

    Returns
    -------
    pandas.DataFrame
        Columns ``attribute, group, metric, target, x, value, ci_low, ci_high, n``, ``x`` the threshold
        probability, rows in order of ``x``. For everyone (group ``"all"`` of the first attribute):
        ``net_benefit`` and ``net_benefit_treat_all``. For each group of each attribute drawn:
        :data:`NET_BENEFIT_GAIN`, the group's net benefit minus the better of treating everyone in it
        and treating no one (no interval).
    """
    cols = ["attribute", "group", "metric", "target", "x", *_ROW]
    sub = _rows(table, model=model, analysis="net_benefit")
    if sub.empty:
        return _empty(cols)
    sub = sub.assign(x=_threshold(sub["operating_point"]))
    overall = sub[(sub["group"] == "all") & (sub["attribute"] == sub["attribute"].iloc[0])]
    overall = overall[overall["metric"].isin(["net_benefit", "net_benefit_treat_all"])]
    keys = ["attribute", "group", "operating_point"]
    nb = sub[sub["metric"] == "net_benefit"].drop_duplicates(keys).set_index(keys)
    ta = sub[sub["metric"] == "net_benefit_treat_all"].drop_duplicates(keys).set_index(keys)
    gain = nb[["target", "x", "n"]].assign(
        metric=NET_BENEFIT_GAIN,
        value=nb["value"] - np.maximum(ta["value"].reindex(nb.index), 0.0),
        ci_low=np.nan,
        ci_high=np.nan,
    )
    gain = gain.reset_index()
    drawn = np.zeros(len(gain), dtype=bool)
    for attribute, (groups, _) in _panels(attributes, sub["attribute"]):
        drawn |= ((gain["attribute"] == attribute) & gain["group"].isin(list(groups))).to_numpy()
    out = pd.concat([overall[cols], gain[drawn][cols]], ignore_index=True)
    return out.sort_values("x", kind="stable").reset_index(drop=True)


def explain_data(table: pd.DataFrame, *, model: str, top: int = 12) -> pd.DataFrame:
    """Mean |SHAP| of the ``top`` features and the contributions of the ``top`` features to group gaps.

    Returns
    -------
    pandas.DataFrame
        Columns ``metric, attribute, group, feature, rank, value, ci_low, ci_high, n``. ``mean_abs_shap``
        rows (of everyone, else of the first group): the largest first, ``rank`` 0, 1, ...;
        ``gap_contribution`` rows of the first :data:`MAX_GROUPS` (attribute, group) pairs, ``rank``
        the feature's place by its largest absolute contribution. Missing values are left out.
    """
    cols = ["metric", "attribute", "group", "feature", "rank", *_ROW]
    sub = _rows(table, model=model, analysis="explain")
    if sub.empty:
        return _empty(cols)
    imp = sub[sub["metric"] == "mean_abs_shap"]
    if len(imp) and (imp["group"] == "all").any():
        imp = imp[imp["group"] == "all"]
    elif len(imp):
        imp = imp[imp["group"] == imp["group"].iloc[0]]
    imp = imp.drop_duplicates("feature").dropna(subset=["value"]).sort_values("value", ascending=False).head(top)
    imp = imp.assign(rank=np.arange(len(imp)))
    gap = sub[(sub["metric"] == "gap_contribution") & (sub["group"] != "all")].dropna(subset=["value"])
    if len(gap):
        strength = gap.assign(_a=gap["value"].abs()).groupby("feature")["_a"].max().sort_values(ascending=False)
        rank = {str(f): i for i, f in enumerate(strength.index[:top])}
        gap = gap[gap["feature"].isin(list(rank))]
        pairs = list(dict.fromkeys(zip(gap["attribute"], gap["group"], strict=True)))[:MAX_GROUPS]
        keep = pd.MultiIndex.from_frame(gap[["attribute", "group"]]).isin(pairs)
        gap = gap[keep].assign(rank=gap.loc[keep, "feature"].map(rank))
    blocks = [f[cols] for f in (imp, gap) if len(f)]
    return pd.concat(blocks, ignore_index=True) if blocks else _empty(cols)


def judgement_data(table: pd.DataFrame) -> pd.DataFrame:
    """Share of all need and share of all cost held by those each model flags (everyone's rows).

    Returns
    -------
    pandas.DataFrame
        Columns ``model, metric, operating_point, value, ci_low, ci_high, n, fmt``: for each model with
        both, ``share_of_need_captured`` then ``share_of_cost_captured``; empty with fewer than two such
        models (nothing to compare).
    """
    cols = ["model", "metric", "operating_point", *_ROW, "fmt"]
    sub = table[(table["analysis"] == "judgement") & (table["group"] == "all")]
    need = sub[sub["metric"] == "share_of_need_captured"].drop_duplicates("model").set_index("model")
    cost = sub[sub["metric"] == "share_of_cost_captured"].drop_duplicates("model").set_index("model")
    models = [m for m in need.index if m in cost.index]
    if len(models) < 2:
        return _empty(cols)
    blocks = []
    for frame in (need, cost):
        rows = frame.loc[models].rename_axis("model").reset_index()
        blocks.append(rows.assign(fmt=_formats(rows["metric"], "judgement"))[cols])
    return pd.concat(blocks, ignore_index=True)


def label_choice_data(table: pd.DataFrame, *, attributes: Attributes) -> pd.DataFrame:
    """Each group's share of those flagged when the same learner is trained on each label.

    Returns
    -------
    pandas.DataFrame
        Columns ``attribute, model, group, target, operating_point, value, ci_low, ci_high, n, fmt``: for
        each attribute drawn, each of the first :data:`MAX_GROUPS` models (one per label), every group.
    """
    cols = ["attribute", "model", "group", "target", "operating_point", *_ROW, "fmt"]
    sub = table[(table["analysis"] == "label_choice") & (table["metric"] == "flagged_share")]
    if sub.empty:
        return _empty(cols)
    models = list(dict.fromkeys(sub["model"]))[:MAX_GROUPS]
    fmt = lookup("flagged_share", "label_choice").fmt
    blocks = []
    for attribute, (groups, _) in _panels(attributes, sub["attribute"]):
        for model in models:
            rows = sub[(sub["attribute"] == attribute) & (sub["model"] == model)]
            blocks.append(_reindexed(rows, groups, cols, attribute=attribute, model=model, fmt=fmt))
    return pd.concat(blocks, ignore_index=True) if blocks else _empty(cols)
