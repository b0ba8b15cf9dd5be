"""Statistics derived from other published rows (a difference or ratio against the reference group, a
quotient of two rows), recomputed by disclosure control from the published values and hidden with them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast

import numpy as np
import pandas as pd

from phm_audit.report._control import PROTECTS

__all__ = ["derivation", "derive", "infer_references"]

_RATE_BASES = ("selection_rate", "tpr", "fnr", "fpr", "ppv")


def derivation(metric: str) -> tuple[str, str, str] | None:
    """How a metric is computed from other published metrics, or None.

    Returns ``(kind, first, second)``: ``("difference" | "ratio", base, "")`` against the reference
    group's ``base`` in the same analysis and operating point, or ``("quotient" | "minus", first,
    second)`` of two metrics of the same group.

    Examples
    --------
    >>> derivation("tpr_difference")
    ('difference', 'tpr', '')
    >>> derivation("flagged_to_high_need_ratio")
    ('quotient', 'flagged_share', 'high_need_share')
    """
    for base in _RATE_BASES:
        if metric == f"{base}_difference":
            return ("difference", base, "")
        if metric == f"{base}_ratio":
            return ("ratio", base, "")
    if metric == "unmet_need_gap":
        return ("difference", "unmet_need_rate", "")
    if metric.startswith("unmet_need_gap_if_by_"):
        return ("difference", "unmet_need_rate_if_by_" + metric.removeprefix("unmet_need_gap_if_by_"), "")
    if metric == "refused_rate_ratio":
        return ("ratio", "refused_rate_among_needing", "")
    if metric == "flagged_to_high_need_ratio":
        return ("quotient", "flagged_share", "high_need_share")
    if metric == "net_benefit_minus_treat_all":
        return ("minus", "net_benefit", "net_benefit_treat_all")
    return None


_CELL = ["model", "analysis", "attribute", "operating_point", "target", "feature", "group", "metric"]


def infer_references(table: pd.DataFrame) -> dict[str, str]:
    """Reference group per attribute, read from the table: the group whose differences are all exactly 0."""
    diffs = table[table["metric"].astype(str).str.endswith("_difference")]
    zero = (diffs["value"] == 0) & (diffs["ci_low"].fillna(0) == 0) & (diffs["ci_high"].fillna(0) == 0)
    ok = zero.groupby([diffs["attribute"], diffs["group"]], sort=False).all()
    out: dict[str, str] = {}
    for key, is_ref in ok.items():
        attribute, group = (str(k) for k in cast(tuple, key))
        if is_ref and attribute not in out:
            out[attribute] = group
    return out


def derive(
    out: pd.DataFrame,
    value: np.ndarray,
    hide: np.ndarray,
    references: Mapping[str, str],
    cause: np.ndarray | None = None,
) -> None:
    """Recompute (in place) metrics derived from other rows, from those rows' published values.

    A derived row is hidden with its sources, and takes the strongest ``cause`` among its hidden
    sources (:data:`OWN_SMALL` before :data:`COMPLEMENT_SMALL` before :data:`PROTECTS`), so that its
    reason names why the count behind it is not published.
    """
    metrics = out["metric"].to_numpy(dtype=object).astype(str)
    found_recipes = {m: derivation(m) for m in dict.fromkeys(metrics)}
    recipes = {m: r for m, r in found_recipes.items() if r is not None}
    targets = np.isin(metrics, list(recipes))
    if not targets.any():
        return
    index = pd.Series(np.arange(len(out)), index=pd.MultiIndex.from_frame(out[_CELL].astype(str)))
    index = index[~index.index.duplicated()]
    rows = np.flatnonzero(targets)
    cells = out.iloc[rows][_CELL].astype(str)
    parts = cells["metric"].map(recipes)
    kinds = parts.str[0].to_numpy(dtype=object)
    first = parts.str[1].to_numpy(dtype=object)
    second = parts.str[2].to_numpy(dtype=object)
    against_ref = np.isin(kinds, ["difference", "ratio"])
    ref_groups = cells["attribute"].map(dict(references)).to_numpy(dtype=object)

    def position(metric: np.ndarray, group: np.ndarray) -> np.ndarray:
        keys = cells.copy()
        keys["metric"], keys["group"] = metric, group
        found = index.reindex(pd.MultiIndex.from_frame(keys)).to_numpy(dtype=np.float64)
        return found

    a = position(first, cells["group"].to_numpy(dtype=object))
    b = np.where(
        against_ref,
        position(first, np.where(pd.isna(ref_groups), "", ref_groups).astype(object)),
        position(second, cells["group"].to_numpy(dtype=object)),
    )
    found = np.isfinite(a) & np.isfinite(b)
    ai, bi = np.where(found, a, 0).astype(np.int64), np.where(found, b, 0).astype(np.int64)
    va, vb = np.where(found, value[ai], np.nan), np.where(found, value[bi], np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        combined = np.where(np.isin(kinds, ["difference", "minus"]), va - vb, np.where(vb != 0, va / vb, np.nan))
    own = value[rows]
    value[rows] = np.where(found & np.isfinite(own) & np.isfinite(combined), combined, own)
    hide[rows] |= found & (hide[ai] | hide[bi])
    if cause is not None:
        ca = np.where(found & hide[ai], cause[ai], PROTECTS)
        cb = np.where(found & hide[bi], cause[bi], PROTECTS)
        cause[rows] = np.minimum(cause[rows], np.minimum(ca, cb))
