"""``audit(cohort, scores, spec) -> AuditResult``: the orchestration of the audit kernels."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from phm_audit.audit._allocation import counterfactual_rows, raise_bar_rows, referral_rows
from phm_audit.audit._calibration import calibration_rows, weak_calibration_rows
from phm_audit.audit._fairness import fairness_rows
from phm_audit.audit._groups import Grouping, check_columns, encode_groups, intersection_name
from phm_audit.audit._judgement import judgement_rows
from phm_audit.audit._net_benefit import net_benefit_rows
from phm_audit.audit._operating_points import OperatingPoint, flag, parse_operating_point
from phm_audit.audit._result import CURVE_COLUMNS, AuditResult, RowBuilder
from phm_audit.audit._spec import AuditSpec, ScoredModel
from phm_audit.audit._stats import descending_order, rank_bins, top_k_mask
from phm_audit.audit._sweep_rows import buckets_from_order, capacities, sweep_rows
from phm_audit.exceptions import PhmInputError, PhmTypeError, closest

__all__ = ["as_scored_models", "audit", "prepare"]

ScoresInput = ScoredModel | Sequence[ScoredModel] | Mapping[str, Any]


def as_scored_models(scores: ScoresInput) -> list[ScoredModel]:
    """Normalise the ways of passing scores (one model, a list, or ``{name: array}``) to a list."""
    if isinstance(scores, ScoredModel):
        return [scores]
    if isinstance(scores, Mapping):
        return [v if isinstance(v, ScoredModel) else ScoredModel(str(k), np.asarray(v)) for k, v in scores.items()]
    if isinstance(scores, Sequence) and not isinstance(scores, str):
        out = list(scores)
        if not all(isinstance(s, ScoredModel) for s in out):
            raise PhmTypeError("scores must be ScoredModel objects, or a mapping of model name to an array of scores")
        return out
    raise PhmTypeError(f"scores must be a ScoredModel, a list of them, or {{name: array}}; got {type(scores).__name__}")


def _check_scores(models: list[ScoredModel], cohort: pd.DataFrame) -> None:
    if not models:
        raise PhmInputError("no scores to audit: pass at least one model's scores")
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise PhmInputError(f"model names must be unique; got {names}")
    for m in models:
        if m.scores.size != len(cohort):
            raise PhmInputError(
                f"model '{m.name}' has {m.scores.size:,} scores but the cohort has {len(cohort):,} people; "
                "score the same people, in the same order"
            )
        bad = ~np.isfinite(m.scores)
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            who = f"patient_id {cohort['patient_id'].iloc[first]}" if "patient_id" in cohort else f"row {first + 1}"
            raise PhmInputError(
                f"model '{m.name}' has {int(bad.sum()):,} missing or infinite scores (first at {who}); "
                "score everyone, or remove the people the model cannot score and say so"
            )


def _numeric_target(cohort: pd.DataFrame, name: str) -> np.ndarray:
    col = cohort[name]
    if col.dtype == bool:
        return col.to_numpy(dtype=np.float64)
    if not pd.api.types.is_numeric_dtype(col):
        raise PhmInputError(f"target column '{name}' must be numeric; got {col.dtype}")
    values = col.to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        raise PhmInputError(
            f"target column '{name}' has {int(bad.sum()):,} missing or infinite values (first at row "
            f"{int(np.flatnonzero(bad)[0]) + 1}); fill or remove them before the audit"
        )
    return values


def _need_strata(need: np.ndarray, edges: Sequence[float]) -> tuple[np.ndarray, list[str]]:
    order = np.argsort(need, kind="stable")
    pct = np.empty(need.size)
    pct[order] = (np.arange(need.size) + 0.5) * 100.0 / need.size
    cut = np.asarray(edges[1:-1])
    strata = np.searchsorted(cut, pct, side="right").astype(np.int64)
    labels = [f"p{edges[i]:g}_{edges[i + 1]:g}" for i in range(len(edges) - 1)]
    return strata, labels


#: Conventional reference groups, used when the spec names none and the group exists: the least
#: deprived fifth for deprivation (inequality is reported against it).
CONVENTIONAL_REFERENCE = {"imd_quintile": "5"}


def _default_reference(cohort: pd.DataFrame, attribute: str, spec: AuditSpec) -> str | None:
    if attribute in spec.reference:
        return spec.reference[attribute]
    conventional = CONVENTIONAL_REFERENCE.get(attribute)
    if conventional is not None and conventional in set(cohort[attribute].astype(str).unique()):
        return conventional
    return None


def prepare(cohort: pd.DataFrame, spec: AuditSpec) -> tuple[list[Grouping], dict[str, np.ndarray], list[str], str]:
    """Validate the cohort against the spec; return groupings, targets, notes and the high-need target."""
    if not isinstance(cohort, pd.DataFrame):
        raise PhmTypeError(f"cohort must be a pandas DataFrame; got {type(cohort).__name__}")
    if len(cohort) == 0:
        raise PhmInputError("the cohort is empty: there is nobody to audit")
    notes: list[str] = []
    check_columns(cohort, [spec.cost_target], "cost target")
    present = [t for t in spec.need_targets if t in cohort.columns]
    for t in spec.need_targets:
        if t not in cohort.columns:
            notes.append(f"need target '{t}' is not in the cohort, so it is not audited")
    if not present:
        hints = "; ".join(f"'{t}'{closest(t, map(str, cohort.columns))}" for t in spec.need_targets)
        raise PhmInputError(f"none of the need targets is in the cohort: {hints}")
    targets = {spec.cost_target: _numeric_target(cohort, spec.cost_target)}
    for t in present:
        targets[t] = _numeric_target(cohort, t)
    high = spec.high_need_target or ("need_true_next" if "need_true_next" in present else present[0])
    if high not in targets:
        check_columns(cohort, [high], "high-need target")
        targets[high] = _numeric_target(cohort, high)
    audited = [*spec.attributes, *(intersection_name(i) for i in spec.intersections)]
    for key in spec.reference:
        if key not in audited:
            raise PhmInputError(f"a reference group is given for '{key}', which is not audited{closest(key, audited)}")
    groupings = [encode_groups(cohort, [a], reference=_default_reference(cohort, a, spec)) for a in spec.attributes]
    for inter in spec.intersections:
        name = intersection_name(inter)
        reference = spec.reference.get(name)
        if reference is None:
            # the intersection's reference is made of each component's reference group
            parts = [encode_groups(cohort, [a], reference=_default_reference(cohort, a, spec)) for a in inter]
            reference = " | ".join(p.labels[p.reference] for p in parts)
        groupings.append(encode_groups(cohort, list(inter), reference=reference))
    return groupings, targets, notes, high


def _calibration(
    rows: RowBuilder,
    curves: list[pd.DataFrame],
    notes: list[str],
    cohort: pd.DataFrame,
    model: ScoredModel,
    groupings: list[Grouping],
    targets: dict[str, np.ndarray],
    needs: dict[str, np.ndarray],
    spec: AuditSpec,
    rng: np.random.Generator,
) -> None:
    score_bins = {b: rank_bins(model.scores, b) for b in {spec.n_score_bins, 10, 100}}
    for grouping in groupings:
        calibration_rows(
            rows,
            curves,
            model=model.name,
            grouping=grouping,
            score_bins=score_bins,
            cost=(spec.cost_target, targets[spec.cost_target]),
            needs=needs,
            n_score_bins=spec.n_score_bins,
            min_group_size=spec.min_group_size,
            n_boot=spec.n_boot,
            level=spec.confidence,
            rng=rng,
        )
    if model.target is None:
        return
    if model.target not in cohort.columns:
        notes.append(f"{model.name}: its target '{model.target}' is not in the cohort; weak calibration skipped")
        return
    observed = _numeric_target(cohort, model.target)
    for grouping in groupings:
        note = weak_calibration_rows(
            rows,
            curves,
            model=model.name,
            grouping=grouping,
            scores=model.scores,
            target=model.target,
            observed=observed,
            min_group_size=spec.min_group_size,
            n_boot=spec.n_boot,
            level=spec.confidence,
            rng=rng,
        )
        if note:
            notes.append(note)
            return


def audit(
    cohort: pd.DataFrame,
    scores: ScoresInput,
    spec: AuditSpec | None = None,
    *,
    progress: Callable[[int, int, str], None] | None = None,
) -> AuditResult:
    """Audit the scores of one or more models on a cohort.

    Parameters
    ----------
    cohort : pandas.DataFrame
        One row per person, with the protected attributes and targets the spec names (a cohort from
        :func:`phm_audit.synth.generate`, or any extract with the same meaning).
    scores : ScoredModel, list of ScoredModel, or mapping of name to array
        Each model's scores for the people of ``cohort``, in its row order; higher = higher risk.
    spec : AuditSpec, optional
        What to audit; the default audits ethnicity, deprivation, sex, age band and digital
        exclusion, and ethnicity x deprivation, at the top 1%, 3% and 5%.
    progress : callable, optional
        Called as ``progress(done, total, name)`` after each model is audited (the command line draws
        a bar with it).

    Returns
    -------
    AuditResult
        Immutable; ``result.table()`` is the tidy metrics table.

    Raises
    ------
    PhmInputError
        A missing or misspelled column, a group column with a single value, scores with NaN or of the
        wrong length, a reference group that does not exist, an operating point that flags nobody or
        everybody.

    Examples
    --------
    >>> from phm_audit.synth import generate
    >>> from phm_audit.audit import AuditSpec, audit
    >>> cohort = generate("england", n=5_000, seed=1)
    >>> spec = AuditSpec(attributes=["imd_quintile"], intersections=[], n_boot=20)
    >>> result = audit(cohort, {"prior_cost": cohort["cost_prior"].to_numpy()}, spec)
    >>> round(result.value(metric="selection_rate", attribute="imd_quintile", group="1",
    ...                    operating_point="top_3pct", analysis="fairness"), 3) >= 0
    True
    """
    spec = spec or AuditSpec()
    models = as_scored_models(scores)
    groupings, targets, notes, high = prepare(cohort, spec)
    _check_scores(models, cohort)
    operating_points = [parse_operating_point(o) for o in spec.operating_points]
    decisions = [*operating_points, parse_operating_point(spec.primary), parse_operating_point(spec.referral_gate)]
    places = _places(cohort, decisions)
    need = targets[high]
    need_order = descending_order(need)
    strata, stratum_labels = _need_strata(need, spec.need_strata)
    needs = {t: v for t, v in targets.items() if t != spec.cost_target and t in spec.need_targets}
    rows = RowBuilder()
    curves: list[pd.DataFrame] = []
    rng = np.random.default_rng(spec.seed)
    run = set(spec.analyses)
    level, n_boot, min_size = spec.confidence, spec.n_boot, spec.min_group_size
    positive_need = int((need > 0).sum())
    primary = parse_operating_point(spec.primary)
    for done, model in enumerate(models):
        if progress is not None:
            progress(done, len(models), model.name)
        for op in operating_points if "fairness" in run else []:
            flagged = flag(model.scores, op, places=places.get(op.by))
            high_need = top_k_mask(need, int(flagged.sum()), need_order)
            reason = ""
            if positive_need < flagged.sum():
                reason = (
                    f"only {positive_need:,} people have any {high} but {int(flagged.sum()):,} are flagged, "
                    "so 'high need' is not defined at this operating point"
                )
            for grouping in groupings:
                fairness_rows(
                    rows,
                    model=model.name,
                    grouping=grouping,
                    flagged=flagged,
                    high_need=high_need,
                    need_stratum=strata,
                    stratum_labels=stratum_labels,
                    operating_point=op.name,
                    target=high,
                    high_need_reason=reason,
                    min_group_size=min_size,
                    n_boot=n_boot,
                    level=level,
                    rng=rng,
                )
        if "calibration" in run:
            _calibration(rows, curves, notes, cohort, model, groupings, targets, needs, spec, rng)
        if "thresholds" in run:
            fractions, ks = capacities(len(cohort), spec.sweep_fractions)
            score_buckets = buckets_from_order(descending_order(model.scores), ks)
            need_buckets = buckets_from_order(need_order, ks)
            for grouping in groupings[: len(spec.attributes)]:  # single attributes; intersections are too fine
                sweep_rows(
                    rows,
                    model=model.name,
                    grouping=grouping,
                    score_buckets=score_buckets,
                    need_buckets=need_buckets,
                    need=need,
                    fractions=fractions,
                    target=high,
                    min_group_size=min_size,
                    n_boot=n_boot,
                    level=level,
                    rng=rng,
                )
        flagged = flag(model.scores, primary, places=places.get(primary.by))
        k = int(flagged.sum())
        high_need = top_k_mask(need, k, need_order)
        if "allocation" in run:
            others = {m.name: m.scores for m in models if m.name != model.name and m.kind == "clinical"}
            for grouping in groupings:
                counterfactual_rows(
                    rows,
                    model=model.name,
                    grouping=grouping,
                    scores=model.scores,
                    flagged=flagged,
                    need=need,
                    high_need=high_need,
                    operating_point=primary.name,
                    target=high,
                    alternatives=others,
                    n_boot=n_boot,
                    level=level,
                    rng=rng,
                )
        if "raise_bar" in run:
            schedule = [max(1, round(k * (1 + spec.raise_bar_change) ** t)) for t in range(spec.raise_bar_steps + 1)]
            for grouping in groupings:
                raise_bar_rows(
                    rows,
                    model=model.name,
                    grouping=grouping,
                    scores=model.scores,
                    need=need,
                    capacities=schedule,
                    target=high,
                    n_boot=n_boot,
                    level=level,
                    rng=rng,
                )
        if "referral" in run:
            if spec.referral_target in cohort.columns:
                gate = parse_operating_point(spec.referral_gate)
                refused = ~flag(model.scores, gate, places=places.get(gate.by))
                needs_specialist = _numeric_target(cohort, spec.referral_target) > 0
                for grouping in groupings:
                    referral_rows(
                        rows,
                        model=model.name,
                        grouping=grouping,
                        refused=refused,
                        operating_point=gate.name,
                        needs_specialist=needs_specialist,
                        target=spec.referral_target,
                        min_group_size=min_size,
                        n_boot=n_boot,
                        level=level,
                        rng=rng,
                    )
            else:
                notes.append(
                    f"referral management needs the ground truth '{spec.referral_target}', which the cohort "
                    "lacks; not analysed"
                )
        if (
            "net_benefit" in run
            and model.target == spec.net_benefit_target
            and spec.net_benefit_target in cohort.columns
        ):
            outcome = _numeric_target(cohort, spec.net_benefit_target)
            for grouping in groupings:
                note = net_benefit_rows(
                    rows,
                    model=model.name,
                    grouping=grouping,
                    probabilities=model.scores,
                    outcome=outcome,
                    target=spec.net_benefit_target,
                    min_group_size=min_size,
                    n_boot=n_boot,
                    level=level,
                    rng=rng,
                )
                if note:
                    notes.append(note)
                    break
    if progress is not None:
        progress(len(models), len(models), "")
    if "judgement" in run and len(models) > 1:
        k = int(flag(models[0].scores, primary, places=places.get(primary.by)).sum())
        notes.extend(
            judgement_rows(
                rows,
                models=models,
                groupings=groupings,
                need=need,
                cost=targets[spec.cost_target],
                k=k,
                operating_point=primary.name,
                need_target=high,
                cost_target=spec.cost_target,
                n_boot=n_boot,
                level=level,
                rng=rng,
            )
        )
    if "net_benefit" in run and not any(m.target == spec.net_benefit_target for m in models):
        notes.append(
            f"net benefit needs a model whose scores are probabilities of {spec.net_benefit_target}; none was audited"
        )
    meta = cohort.attrs.get("phm_audit") or {}
    scenario = meta.get("scenario") or {}
    return AuditResult(
        spec=spec,
        models=tuple(
            {"name": m.name, "kind": m.kind, "target": m.target, "label": m.label or m.target} for m in models
        ),
        groups={g.attribute: g.describe() for g in groupings},
        cohort={
            "n": len(cohort),
            "scenario": scenario.get("name"),
            "seed": meta.get("seed"),
            "source": meta.get("source"),
            "high_need_target": high,
        },
        notes=tuple(dict.fromkeys(notes)),
        _metrics=rows.frame(),
        _curves=pd.concat(curves, ignore_index=True) if curves else pd.DataFrame(columns=list(CURVE_COLUMNS)),
    )


def _places(cohort: pd.DataFrame, ops: list[OperatingPoint]) -> dict[str | None, np.ndarray | None]:
    """The place column of every operating point that shares its capacity out per place."""
    wanted = sorted({op.by for op in ops if op.by})
    check_columns(cohort, wanted, "operating point '@place'")
    out: dict[str | None, np.ndarray | None] = {None: None}
    out.update({col: cohort[col].to_numpy() for col in wanted})
    return out
