"""An attacker with the published tables: every subtraction of published totals the tables allow, with the
rounding taken into account, must not recover a suppressed count; and every published metric is declared."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pandas as pd
import pytest

from phm_audit.audit import AuditSpec, audit
from phm_audit.audit._metrics import UndeclaredMetricError, lookup
from phm_audit.report._disclosure import DisclosureControl, apply_disclosure, disclose_result, group_structure

CONTROL = DisclosureControl()
_TABLE = ["model", "analysis", "operating_point", "target", "feature"]
BIG = np.inf
#: A hidden count of 1..7 narrowed to an interval shorter than this (4 or fewer possible values, as
#: "1 to 4") counts as recovered: a published count, rounded to 5, says no more than 5 values.
WIDTH = 4.0


def _published_interval(count: float, signed: bool = False) -> tuple[float, float]:
    """What a rounded count (to 5, never into 1..7) says about the true count (a change may be negative)."""
    if not np.isfinite(count):
        return (-BIG if signed else 0.0, BIG)
    if count == 0:
        return (0.0, 0.0)
    size = abs(count)
    low = 8 if size == 10 else size - 2  # 8 and 9 are raised to 10
    return (float(low), float(size + 2)) if count > 0 else (-float(size + 2), -float(low))


def _counts(table: pd.DataFrame) -> pd.DataFrame:
    """Per row: the n it counts and, for a rate, its numerator (value x n), as the registry declares them."""
    roles = np.array([lookup(str(m), str(a)).n_role for a, m in zip(table["analysis"], table["metric"], strict=True)])
    n = pd.to_numeric(table["n"], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    value = table["value"].to_numpy(float)
    numerator = np.where(roles == "denominator", np.round(value * n), np.nan)
    count_value = np.where(roles == "value", np.round(value), np.nan)  # signed: a change can be negative
    return pd.DataFrame({"n": n, "numerator": numerator, "count": count_value}, index=table.index)


def _relations(cells: list[tuple[str, str, str]], structure, bands: bool) -> list[list[tuple[int, int]]]:
    """Linear relations ``sum(coef * x) = 0`` (a parent is a member with coef -1), or a plain partition."""
    index = {c: i for i, c in enumerate(cells)}
    out: list[list[tuple[int, int]]] = []
    by: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, (attribute, group, metric) in enumerate(cells):
        if group != "all":
            by[(attribute, metric)].append(i)
    for (attribute, metric), members in by.items():
        total = index.get((attribute, "all", metric))
        if total is not None:
            out.append([(i, 1) for i in members] + [(total, -1)])
        if attribute in structure:
            components, parts = structure[attribute]
            for k, component in enumerate(components):
                shared: dict[str, list[int]] = defaultdict(list)
                for i in members:
                    shared[parts[cells[i][1]][k]].append(i)
                for value, kids in shared.items():
                    parent = index.get((component, value, metric))
                    if parent is not None:
                        out.append([(i, 1) for i in kids] + [(parent, -1)])
    if bands:
        groups: dict[tuple[str, str], list[int]] = defaultdict(list)
        whole: dict[tuple[str, str], int] = {}
        for i, (attribute, group, metric) in enumerate(cells):
            if metric.startswith("selection_rate_need_"):
                groups[(attribute, group)].append(i)
            elif metric == "selection_rate":
                whole[(attribute, group)] = i
        for key, members in groups.items():
            if key in whole:
                out.append([(i, 1) for i in members] + [(whole[key], -1)])
    return out


def _propagate(low: np.ndarray, high: np.ndarray, relations: list[list[tuple[int, int]]]) -> None:
    """Narrow every cell's interval by every relation, until nothing changes (bounds propagation)."""
    for _ in range(6):
        changed = False
        for rel in relations:
            for j, cj in rel:
                # cj * x_j = - sum_{i != j} ci * x_i
                lo = -sum((ci * (high[i] if ci > 0 else low[i])) for i, ci in rel if i != j)
                hi = -sum((ci * (low[i] if ci > 0 else high[i])) for i, ci in rel if i != j)
                lo, hi = (lo, hi) if cj > 0 else (-hi, -lo)
                if lo > low[j] + 1e-9:
                    low[j], changed = lo, True
                if hi < high[j] - 1e-9:
                    high[j], changed = hi, True
        if not changed:
            break


def attack(raw: pd.DataFrame, published: pd.DataFrame, structure) -> list[str]:
    """Every suppressed count of 1..threshold people that the published tables pin down exactly."""
    true, shown = _counts(raw), _counts(published)
    # the same count published by another analysis (the same model, operating point, target, group and
    # metric, as fairness and the threshold sweep both publish the number flagged at top_3pct): the attacker
    # starts from it
    identity = raw[["model", "operating_point", "target", "feature", "attribute", "group", "metric"]].astype(str)
    elsewhere = pd.DataFrame(index=raw.index)
    for kind in ("n", "numerator", "count"):
        frame = identity.assign(_true=true[kind], _shown=shown[kind])
        elsewhere[kind] = frame.groupby([*identity.columns, "_true"], dropna=False)["_shown"].transform("max")
    metric = raw["metric"].astype(str)
    banded = (raw["analysis"] == "fairness") & (
        (metric == "selection_rate") | metric.str.startswith("selection_rate_need_")
    )
    family = np.where(banded, "selection_rate*", metric)
    found: list[str] = []
    for (_, fam), rows in raw.assign(_f=family).groupby(["analysis", "_f"], sort=False).indices.items():
        sub = raw.iloc[rows]
        for _, idx in sub.groupby(_TABLE, sort=False, dropna=False).indices.items():
            part = sub.iloc[idx]
            cells = list(zip(part["attribute"], part["group"], part["metric"], strict=True))
            rels = _relations(cells, structure, bands=fam == "selection_rate*")
            if not rels:
                continue
            for kind in ("n", "numerator", "count"):
                t = true.loc[part.index, kind].to_numpy(float)
                s = shown.loc[part.index, kind].to_numpy(float)
                if not np.isfinite(t).any():
                    continue
                known = np.where(np.isfinite(s), s, elsewhere.loc[part.index, kind].to_numpy(float))
                bounds = np.array([_published_interval(v, signed=kind == "count") for v in known])
                low, high = bounds[:, 0].copy(), bounds[:, 1].copy()
                _propagate(low, high, rels)
                hidden = ~np.isfinite(s) & np.isfinite(t)
                small = (np.abs(t) >= 1) & (np.abs(t) <= CONTROL.threshold)
                # a hidden count pinned down: exactly (whatever it is: a hidden 0 of a few people is
                # disclosed too), or a small one narrowed more than a published count would be
                # bounds that cross (low > high) mean a relation that does not hold for this metric (equal-TPR
                # allocation is solved per grouping, so an intersection's cells do not add up to their parent's):
                # they pin nothing down, for the attacker as for this test
                feasible = low <= high + 1e-6
                exact = hidden & feasible & ((high - low < 1) | (small & (high - low < WIDTH)))
                for i in np.flatnonzero(exact):
                    found.append(
                        f"{cells[i]} {kind} {part.iloc[i][_TABLE].tolist()}: true {t[i]:g}, derived {low[i]:g}"
                    )
    return found


def _structure(groups) -> dict:
    """The attacker's view of each intersection: its labels matched to the joined labels of its components
    (independent of phm-audit's own structure)."""
    from itertools import product

    out = {}
    for attribute, info in groups.items():
        components = [c for c in groups if c != attribute and " x " not in c and c in attribute.split(" x ")]
        if len(components) < 2:
            continue
        order = attribute.split(" x ")
        known = {" | ".join(p): p for p in product(*(groups[c]["labels"] for c in order))}
        out[attribute] = (tuple(order), {lab: known[lab] for lab in info["labels"]})
    return out


def _audit(cohort_factory, n: int, seed: int):
    cohort = cohort_factory("england", n, seed)
    scores = {
        "prior_cost": cohort["cost_prior"].to_numpy(np.float64),
        "conditions": cohort["n_ltc_recorded"].to_numpy(np.float64) + cohort["age"].to_numpy(np.float64) / 200,
    }
    spec = AuditSpec(
        attributes=("ethnicity", "imd_quintile", "sex"),
        intersections=(("ethnicity", "imd_quintile"),),
        operating_points=("top_pct:3", "top_pct:3@practice_id", "top_k:40"),
        n_boot=0,
        analyses=("fairness", "allocation", "referral", "thresholds"),
    )
    return audit(cohort, scores, spec)


@pytest.mark.parametrize("n", [3_000, pytest.param(20_000, marks=pytest.mark.slow)])
def test_no_suppressed_count_is_recovered_by_any_subtraction(cohort_factory, n):
    result = _audit(cohort_factory, n, 11)
    published = disclose_result(result, CONTROL)
    raw, shown = result.table(), published.table()
    assert (raw[["model", "metric", "group"]].to_numpy() == shown[["model", "metric", "group"]].to_numpy()).all()
    found = attack(raw, shown, _structure(result.groups))
    assert not found, f"{len(found)} hidden counts recovered, first: {found[:3]}"
    # and nothing published is itself a count of 1..7
    counts = _counts(shown)
    for kind in counts:
        values = np.abs(counts[kind].to_numpy(float))
        assert not ((values >= 1) & (values <= CONTROL.threshold)).any(), kind


def test_a_group_name_with_a_pipe_does_not_switch_the_intersection_checks_off(cohort_factory):
    cohort = cohort_factory("england", 3_000, 12).copy()
    cohort["ethnicity"] = cohort["ethnicity"].astype(str).replace({"White": "White | British"})
    spec = AuditSpec(
        attributes=("ethnicity", "imd_quintile"),
        intersections=(("ethnicity", "imd_quintile"),),
        operating_points=("top_pct:3",),
        n_boot=0,
        analyses=("fairness",),
    )
    result = audit(cohort, {"prior_cost": cohort["cost_prior"].to_numpy(np.float64)}, spec)
    structure = group_structure(result.groups)
    assert structure["ethnicity x imd_quintile"][1]["White | British | 1"] == ("White | British", "1")
    published = disclose_result(result, CONTROL)
    found = attack(result.table(), published.table(), _structure(result.groups))
    assert not found, found[:3]
    # the group sizes in audit.json too: no intersection cell is its parent minus its published siblings
    sizes = {a: dict(zip(i["labels"], i["sizes"], strict=True)) for a, i in published.groups.items()}
    for (attribute, components), parts in (((k, v[0]), v[1]) for k, v in _structure(result.groups).items()):
        for k, component in enumerate(components):
            for value in set(p[k] for p in parts.values()):
                kids = [lab for lab, p in parts.items() if p[k] == value]
                hidden = [lab for lab in kids if sizes[attribute][lab] is None]
                if sizes[component].get(value) is not None:
                    assert len(hidden) != 1, (attribute, value, hidden)


def test_every_metric_is_declared_and_an_undeclared_one_is_never_published(cohort_factory):
    result = _audit(cohort_factory, 3_000, 13)
    for a, m in result.table()[["analysis", "metric"]].drop_duplicates().itertuples(index=False):
        lookup(str(m), str(a))
    table = result.table().head(3).assign(metric="a_new_metric")
    with pytest.raises(UndeclaredMetricError, match="a_new_metric"):
        apply_disclosure(table, result.curves().head(0), CONTROL)


@pytest.mark.slow
def test_every_metric_of_a_demo_size_audit_is_declared_and_none_recoverable():
    # the demo's analyses (label choice and SHAP explanations included) on fewer people
    from phm_audit._demo import build_demo_result

    result, _ = build_demo_result(n=20_000, n_boot=0, explain=True)
    pairs = result.table()[["analysis", "metric"]].drop_duplicates()
    for a, m in pairs.itertuples(index=False):
        lookup(str(m), str(a))
    published = disclose_result(result, CONTROL)
    found = attack(result.table(), published.table(), _structure(result.groups))
    assert not found, f"{len(found)} hidden counts recovered, first: {found[:3]}"


def test_provenance_capacities_and_count_bounds_are_disclosed(cohort_factory):
    from phm_audit.report._disclosure import disclose_label, disclose_provenance

    assert disclose_provenance({"n_audited": 1527, "n_trained": 1473, "n_table": 5}, CONTROL) == {
        "n_audited": 1525,
        "n_trained": 1475,
        "n_table": None,
    }
    assert disclose_label(pd.Series(["step_1_k_588", "step_2_k_46", "step_3_k_4"]), CONTROL).tolist() == [
        "step_1_k_590",
        "step_2_k_45",
        "step_3_k_under_8",
    ]
    table = pd.DataFrame(
        {
            "model": "m",
            "analysis": "raise_bar",
            "attribute": "sex",
            "group": ["F", "M"],
            "operating_point": "step_1_k_46",
            "metric": "dropped",
            "value": [40.0, 60.0],
            "ci_low": [5.0, 50.0],
            "ci_high": [70.0, 75.0],
            "n": [400, 600],
            "target": "",
            "feature": "",
            "reason": "",
        }
    )
    out, _ = apply_disclosure(
        table,
        pd.DataFrame(
            columns=["model", "attribute", "target", "bins", "group", "bin", "mean", "ci_low", "ci_high", "n"]
        ),
        CONTROL,
    )
    assert np.isnan(out["ci_low"].iloc[0]) and out["ci_low"].iloc[1] == 50
    assert set(out["operating_point"]) == {"step_1_k_45"}
