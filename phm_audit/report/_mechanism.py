"""The headline's mechanisms: what a model's label is, and whether a group's need is under-stated by the
label or by the base rate (see :mod:`phm_audit.report._headline`); and the published numbers it reads."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from phm_audit.audit import AuditSpec, is_cost_label, lookup
from phm_audit.report._rules import Finding

__all__ = [
    "GROUND_TRUTH_TARGETS",
    "TableIndex",
    "clean",
    "is_proxy",
    "label_kind",
    "mechanism_of",
    "model_label",
    "parity",
    "shown",
]


def clean(x: Any) -> float | None:
    """A finite number, or None."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


#: Need targets that are ground truth (synthetic cohorts only); every other need target is a recorded proxy.
GROUND_TRUTH_TARGETS = ("need_true_next",)


def model_label(model: Mapping[str, Any]) -> str | None:
    """The label a model was trained on (or a rule ranks by), as the audit records it: the model's
    ``label`` (:class:`~phm_audit.audit.ScoredModel`), else its ``target`` (a label-choice model
    ``learner[label]`` has its label as target); None if not known.

    Examples
    --------
    >>> model_label({"name": "prior_cost", "kind": "rule", "target": None, "label": "cost_next"})
    'cost_next'
    >>> model_label({"name": "actuarial_cost[n_conditions_next]", "kind": "clinical", "target": "n_conditions_next"})
    'n_conditions_next'
    >>> model_label({"name": "mine", "kind": "supplied", "target": None}) is None
    True
    """
    for key in ("label", "target"):
        if model.get(key):
            return str(model[key])
    return None


def label_kind(label: str | None, spec: AuditSpec) -> str | None:
    """``cost`` for a cost label (:func:`phm_audit.audit.is_cost_label`), ``need`` otherwise; None if unknown."""
    if label is None:
        return None
    return "cost" if is_cost_label(label, spec) else "need"


def is_proxy(target: str) -> bool:
    """Whether a need target is a recorded proxy (not ground truth)."""
    return target not in GROUND_TRUTH_TARGETS


def shown(f: Finding | None, fdr: float | None) -> bool:
    """A comparison on the harmful side of parity that is a discovery (or, without multiplicity control,
    whose interval excludes parity): the headline reports it, whatever its size; its grade says how large."""
    if f is None or not f.adverse or f.value is None or f.ci_low is None or f.ci_high is None:
        return False
    if fdr is None:
        return f.ci_low > parity(f) or f.ci_high < parity(f)
    return f.q_value is not None and f.q_value <= fdr and (f.ci_low > parity(f) or f.ci_high < parity(f))


def parity(f: Finding) -> float:
    """Parity of a finding's comparison: 0 for a difference, 1 for a ratio (the metric registry's kind)."""
    return 0.0 if lookup(f.metric, f.analysis).kind == "difference" else 1.0


def mechanism_of(
    label: str | None,
    lg: Finding | None,
    nr: Finding | None,
    index: TableIndex,
    model: str,
    attribute: str,
    group: str,
    op: str,
    spec: AuditSpec,
    label_gap: float,
    fdr: float | None,
    *,
    strict: bool = True,
) -> str | None:
    """``label``, ``base_rate`` or None for a model's calibration cells of one group (see the module docs).

    ``strict``: a mechanism needs its comparison graded flag (beyond the rule's threshold and a
    discovery); otherwise, for a group already found under-served, a discovery on the harmful side
    of parity at least half-way to the threshold, on a group of at least
    ``FindingRules.min_calibration_n`` people, is enough.
    """

    def evidence(f: Finding | None) -> bool:
        if f is None:
            return False
        if strict:
            return f.grade == "flag" and f.adverse
        # a discovery at least half-way to the flag threshold (a label gap of 1.05 for the default 1.1)
        return shown(f, fdr) and not f.reason and f.effect >= 0.5

    lg_flag, nr_flag = evidence(lg), evidence(nr)

    def holds_one(lo: float | None, hi: float | None) -> bool:
        return lo is not None and hi is not None and lo <= 1 <= hi

    kind = label_kind(label, spec)
    if kind == "cost":
        return "label" if lg_flag else None
    if kind == "need" and label is not None:
        if not nr_flag or nr is None:
            return None
        if label in GROUND_TRUTH_TARGETS or nr.target == label:
            return "base_rate"
        # a recorded proxy as the label, need measured otherwise (ground truth): the label is the mechanism
        # where the score is calibrated to its own label across groups (its ratio against the label holds 1)
        own = index.get(model, "calibration", attribute, group, op, "need_ratio_at_equal_score", label)
        if own[0] is None or nr.value is None or nr.ci_low is None or own[2] is None:
            return None
        # the part of the need ratio the label accounts for: need over the label at equal score, beyond the
        # flag threshold of a label gap, with the two intervals apart
        if nr.value / own[0] > label_gap and own[2] < nr.ci_low:
            return "label"
        return "base_rate"
    if lg_flag and lg is not None:
        cr = index.get(model, "calibration", attribute, group, op, "cost_ratio_at_equal_score")
        if holds_one(cr[1], cr[2]):
            return "label"
    if nr_flag and lg is not None and holds_one(lg.ci_low, lg.ci_high):
        return "base_rate"
    return None


class TableIndex:
    """Single values of the published tidy table, by model, analysis, attribute, group, operating point,
    metric and target."""

    def __init__(self, table: pd.DataFrame) -> None:
        analysis, metric = table["analysis"], table["metric"]
        wanted = (
            ((analysis == "fairness") & metric.isin(["flagged_share", "high_need_share"]))
            | ((analysis == "calibration") & metric.str.endswith("_at_equal_score"))
            | ((analysis == "thresholds") & (metric == "unmet_need_rate"))
            | ((analysis == "allocation") & metric.str.startswith("flagged_share"))
        )
        sub = table[wanted]
        keys = sub[["model", "analysis", "attribute", "group", "operating_point", "metric", "target"]].astype(str)
        values = sub["value"].to_numpy(dtype=np.float64)
        lows = sub["ci_low"].to_numpy(dtype=np.float64)
        highs = sub["ci_high"].to_numpy(dtype=np.float64)
        ns = sub["n"].to_numpy(dtype=np.float64, na_value=np.nan)
        self.rows: dict[tuple[str, ...], tuple[float | None, float | None, float | None, int | None]] = {}
        for key, v, lo, hi, n in zip(
            map(tuple, keys.to_numpy()), values.tolist(), lows.tolist(), highs.tolist(), ns.tolist(), strict=True
        ):
            row = (clean(v), clean(lo), clean(hi), None if not math.isfinite(n) else int(n))
            self.rows[key] = row
            self.rows.setdefault((*key[:6], "*"), row)
        th = sub[sub["analysis"] == "thresholds"]
        self.sweep_ops: dict[str, list[str]] = {
            str(model): list(dict.fromkeys(map(str, ops)))
            for model, ops in th.groupby("model", sort=False)["operating_point"]
        }

    def get(
        self, model: str, analysis: str, attribute: str, group: str, op: str, metric: str, target: str = "*"
    ) -> tuple[float | None, float | None, float | None, int | None]:
        return self.rows.get((model, analysis, attribute, group, op, metric, target), (None, None, None, None))
