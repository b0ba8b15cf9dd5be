"""``audit(cohort, scores, spec) -> AuditResult``: the orchestration of the audit kernels."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from phm_audit._checks import as_scores, check_columns
from phm_audit.audit._analyses import REGISTRY, Context, LabelScores, pair_rng
from phm_audit.audit._cells import MemoryCells
from phm_audit.audit._groups import Grouping, encode_groups, intersection_name
from phm_audit.audit._operating_points import OperatingPoint, describe_point, parse_operating_point
from phm_audit.audit._result import CURVE_COLUMNS, AuditResult, RowBuilder, cohort_summary
from phm_audit.audit._spec import AuditSpec, ScoredModel
from phm_audit.exceptions import PhmInputError, PhmTypeError, closest

__all__ = ["as_scored_models", "audit", "key_order", "prepare", "run_analyses"]

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
        as_scores(m.scores, len(cohort), f"model '{m.name}'", verb="has")


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


#: Conventional reference groups, used when the spec names none and the group exists: the least
#: deprived fifth for deprivation (inequality is reported against it).
CONVENTIONAL_REFERENCE = {"imd_quintile": "5"}


def default_reference(cohort: pd.DataFrame, attribute: str, spec: AuditSpec) -> str | None:
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
    groupings = [encode_groups(cohort, [a], reference=default_reference(cohort, a, spec)) for a in spec.attributes]
    for inter in spec.intersections:
        name = intersection_name(inter)
        reference = spec.reference.get(name)
        if reference is None:
            # the intersection's reference is made of each component's reference group
            parts = [encode_groups(cohort, [a], reference=default_reference(cohort, a, spec)) for a in inter]
            reference = " | ".join(p.labels[p.reference] for p in parts)
        groupings.append(encode_groups(cohort, list(inter), reference=reference))
    return groupings, targets, notes, high


def audit(
    cohort: pd.DataFrame,
    scores: ScoresInput,
    spec: AuditSpec | None = None,
    *,
    progress: Callable[[int, int, str], None] | None = None,
    label_scores: LabelScores | None = None,
    fitted: Sequence[Any] = (),
    key: str | None = "patient_id",
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
    label_scores : LabelScores, optional
        One learner's scores, trained on each candidate label, for the label-choice analysis
        (:func:`phm_audit.pipeline.label_choice` fits them).
    fitted : sequence, optional
        Fitted models to explain (the ``explanations`` analysis, with SHAP).
    key : str or None, default "patient_id"
        The column that breaks ties in every order of the population (score descending, then key
        ascending), as an engine with no row order does (:func:`phm_audit.audit.audit_table`); where
        the cohort lacks it, or with None, ties go by row order. Its values must be unique.

    Notes
    -----
    The analyses are those of the registry (:data:`phm_audit.audit.ANALYSIS_REGISTRY`) named in
    ``spec.analyses``, in the registry's order. Each (model, analysis) pair draws its bootstrap from
    its own seed, spawned from ``spec.seed`` and the two names: adding, removing or reordering models
    changes no other model's numbers.

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
    if models or label_scores is None:
        _check_scores(models, cohort)
    named = spec.allocation_alternatives or ()
    unknown = [a for a in named if a not in {m.name for m in models}]
    if unknown:
        audited = [m.name for m in models]
        raise PhmInputError(
            f"allocation alternative '{unknown[0]}' is not an audited model{closest(unknown[0], audited)}; "
            f"models: {', '.join(audited)}"
        )
    order = key_order(cohort, key)
    if order is not None:  # ties by row position are now ties by key
        moved = cohort.iloc[order].reset_index(drop=True)
        moved.attrs = dict(cohort.attrs)
        cohort = moved
        models = [replace(m, scores=m.scores[order]) for m in models]
        targets = {k: v[order] for k, v in targets.items()}
        groupings = [replace(g, codes=g.codes[order]) for g in groupings]
        if label_scores is not None:
            moved_scores = {k: np.asarray(v)[order] for k, v in label_scores.scores.items()}
            label_scores = replace(label_scores, scores=moved_scores)
    cells = MemoryCells(
        cohort,
        [],
        {**{f"score:{m.name}": m.scores for m in models}, **targets},
        more=lambda name: _numeric_target(cohort, name),
        codes=[(g.codes, g.n_groups) for g in groupings],
    )
    first = cells.first_of_strata()
    groupings = [replace(g, strata=g.codes[first]) for g in groupings]
    decisions = [parse_operating_point(o) for o in (*spec.operating_points, spec.primary, spec.referral_gate)]
    if label_scores is not None:
        decisions.append(parse_operating_point(label_scores.operating_point))
    numeric: dict[str, np.ndarray] = {}

    def target(name: str) -> np.ndarray:
        if name not in numeric:
            numeric[name] = _numeric_target(cohort, name)
        return numeric[name]

    ctx = Context(
        cohort=cohort,
        spec=spec,
        models=models,
        groupings=groupings,
        targets=targets,
        high=high,
        places=_places(cohort, decisions),
        rows=RowBuilder(),
        curves=[],
        notes=notes,
        numeric=target,
        cells=cells,
        label_scores=label_scores,
        fitted=tuple(fitted),
    )
    return run_analyses(ctx, progress)


def run_analyses(ctx: Context, progress: Callable[[int, int, str], None] | None = None) -> AuditResult:
    """Run the registry's analyses that the spec names on a prepared context, and gather the result.

    An analysis that needs rows is left out, with a note, where the people are not at hand (an engine).
    """
    spec, models = ctx.spec, ctx.models
    chosen = [REGISTRY[name] for name in REGISTRY if name in spec.analyses]
    if not ctx.cells.rows:
        for analysis in chosen:
            if "rows" in analysis.needs:
                ctx.notes.append(
                    f"{analysis.name} re-ranks or re-scores individual people, so it needs rows; it was not run on "
                    f"the {ctx.cells.engine} engine (audit in memory for it: --engine memory)"
                )
        chosen = [a for a in chosen if "rows" not in a.needs]
    per_model = [a for a in chosen if a.per_model and (models and a.applies(ctx))]
    for done, model in enumerate(models):
        if progress is not None:
            progress(done, len(models), model.name)
        ctx.model = model
        for analysis in per_model:
            ctx.rng = pair_rng(spec.seed, model.name, analysis.name)
            analysis.run(ctx)
    if progress is not None:
        progress(len(models), len(models), "")
    ctx.model = None
    for analysis in chosen:
        if not analysis.per_model and analysis.applies(ctx):
            ctx.rng = pair_rng(spec.seed, "", analysis.name)
            analysis.run(ctx)
    table = ctx.rows.frame()
    described = {
        m.name: {"name": m.name, "kind": m.kind, "target": m.target, "label": m.label or m.target} for m in models
    }
    for extra in ctx.extra_models:  # models the analyses name (label choice), or describe further (explanations)
        described[extra["name"]] = {**extra, **described.get(extra["name"], {})}
    return AuditResult(
        spec=spec,
        models=tuple(described.values()),
        groups={g.attribute: g.describe() for g in ctx.groupings},
        cohort=cohort_summary(ctx.cohort, ctx.high, n=ctx.cells.n),
        notes=tuple(dict.fromkeys(ctx.notes)),
        _metrics=table,
        _curves=pd.concat(ctx.curves, ignore_index=True) if ctx.curves else pd.DataFrame(columns=list(CURVE_COLUMNS)),
        primary_operating_point=parse_operating_point(spec.primary).name if models else "",
        operating_points={str(n): describe_point(str(n)) for n in table["operating_point"].unique()},
    )


def key_order(cohort: pd.DataFrame, key: str | None) -> np.ndarray | None:
    """The stable order of ``cohort`` by ``key``, or None where it is in key order already (or has no key).

    Raises
    ------
    PhmInputError
        A key with missing or repeated values.
    """
    if key is None or key not in cohort.columns:
        return None
    values = cohort[key]
    if values.isna().any():
        raise PhmInputError(f"key column '{key}' has missing values; every person needs a key (or pass key=None)")
    array = values.to_numpy()
    if array.dtype.kind in "iuf" and bool(np.all(array[1:] > array[:-1])):  # strictly increasing: in key order
        return None
    order = np.argsort(array, kind="stable")
    ordered = array[order]
    repeated = np.flatnonzero(ordered[1:] == ordered[:-1])
    if repeated.size:
        raise PhmInputError(
            f"key column '{key}' repeats the value {ordered[repeated[0]]!r}; ties are broken by a unique key — "
            "remove the duplicates or pass key=None to break ties by row order"
        )
    return order


def _places(cohort: pd.DataFrame, ops: list[OperatingPoint]) -> dict[str | None, np.ndarray | None]:
    """The place column of every operating point that shares its capacity out per place."""
    wanted = sorted({op.by for op in ops if op.by})
    check_columns(cohort, wanted, "operating point '@place'")
    out: dict[str | None, np.ndarray | None] = {None: None}
    out.update({col: cohort[col].to_numpy() for col in wanted})
    return out
