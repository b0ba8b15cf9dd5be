"""The analysis registry: every analysis an audit runs, declared once, run by one loop in :func:`audit`.

An analysis declares its name, what it needs and one ``run(context)``. :func:`phm_audit.audit.audit`
loops over :data:`REGISTRY` in its order: the analyses that look at one model at a time run once per
model, the others (judgement, label choice, explanations) once. Each (model, analysis) pair draws
its random numbers from its own seed, spawned from the spec's seed and the two names
(:func:`pair_rng`), so adding, removing or reordering models or analyses changes no other pair's
numbers.

What an analysis can need (``Analysis.needs``):

- ``"scores"``: one model's scores;
- ``"capacity"``: a decision (an operating point) that flags a number of people;
- ``"probability"``: scores that are probabilities of an outcome the cohort records;
- ``"several models"``: two or more models' scores, compared;
- ``"label scores"``: one learner's scores, trained on each candidate label (:class:`LabelScores`);
- ``"fitted models"``: fitted models to explain;
- ``"rows"``: the people themselves, not only counts by cell (label choice, explanations, the
  replacement simulation and equal-TPR allocation re-rank or re-score individuals).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from phm_audit.audit._cells import AtLeast, Cells, Dim, Distinct, First, Positive, Rank
from phm_audit.audit._groups import Grouping
from phm_audit.audit._operating_points import OperatingPoint, capacity_k, flag, parse_operating_point
from phm_audit.audit._result import RowBuilder
from phm_audit.audit._spec import AuditSpec, ScoredModel, is_cost_label
from phm_audit.audit._stats import descending_order, lowest_counts_masks, top_k_mask
from phm_audit.exceptions import PhmInputError

__all__ = ["REGISTRY", "Analysis", "Context", "LabelScores", "pair_rng"]


def pair_rng(seed: int, model: str, analysis: str) -> np.random.Generator:
    """The random numbers of one (model, analysis) pair: a seed spawned from ``seed`` and the two names.

    The spawn key is made of the names' CRC-32 checksums, so the stream of a pair depends on nothing
    but the spec's seed and the two names.

    Examples
    --------
    >>> a = pair_rng(7, "actuarial_cost", "fairness").integers(1 << 30)
    >>> b = pair_rng(7, "actuarial_cost", "fairness").integers(1 << 30)
    >>> c = pair_rng(7, "clinical_need", "fairness").integers(1 << 30)
    >>> bool(a == b), bool(a == c)
    (True, False)
    """
    key = (zlib.crc32(model.encode("utf-8")), zlib.crc32(analysis.encode("utf-8")))
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


@dataclass(frozen=True)
class LabelScores:
    """One learner's scores, trained on each candidate label (the input of the label-choice analysis).

    Parameters
    ----------
    scores : mapping of str to array-like
        Label -> the learner's scores of the audited people, trained on that label.
    learner : str, default "actuarial_cost"
        The learner's name; the rows' models are named ``learner[label]``.
    kind : str, default "actuarial"
        The learner's kind, recorded with each model.
    operating_point : str, default "top_pct:3"
        The decision compared (Obermeyer et al. used the top 3%).
    """

    scores: Mapping[str, Any]
    learner: str = "actuarial_cost"
    kind: str = "actuarial"
    operating_point: str = "top_pct:3"


@dataclass
class Context:
    """What every analysis reads, prepared once per audit; ``model`` and ``rng`` change per pair.

    The per-model values (orders, flags) are computed once and kept for the analyses that follow.
    """

    cohort: pd.DataFrame
    spec: AuditSpec
    models: list[ScoredModel]
    groupings: list[Grouping]
    targets: dict[str, np.ndarray]
    high: str
    places: dict[str | None, np.ndarray | None]
    rows: RowBuilder
    curves: list[pd.DataFrame]
    notes: list[str]
    numeric: Callable[[str], np.ndarray]
    cells: Cells
    label_scores: LabelScores | None = None
    fitted: Sequence[Any] = ()
    extra_models: list[dict[str, Any]] = field(default_factory=list)
    model: ScoredModel | None = None
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(0))
    _flags: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)

    @property
    def current(self) -> ScoredModel:
        """The model of a per-model analysis."""
        assert self.model is not None, "a per-model analysis runs with a model"
        return self.model

    @cached_property
    def need(self) -> np.ndarray:
        return self.targets[self.high]

    @cached_property
    def need_order(self) -> np.ndarray:
        order = getattr(self.cells, "order", None)
        return descending_order(self.need) if order is None else order(self.high, descending=True)

    def score_source(self, model: ScoredModel | None = None) -> str:
        """The name of a model's scores among the cells' sources."""
        return f"score:{(model or self.current).name}"

    def decision(self, op: OperatingPoint, model: ScoredModel | None = None) -> Dim:
        """The cell dimension of who ``op`` flags by a model's scores (code 1 = flagged).

        In memory, :meth:`flag`'s mask (kept for the analyses that need rows); in an engine, the
        first k of the order of the scores, or the scores at or above a cut-off.
        """
        m = model or self.current
        if self.cells.rows:
            name = f"flag:{m.name}:{op.name}"
            self.cells.add(name, self.flag(op, m))  # type: ignore[attr-defined]
            return Positive(name)
        if op.by is not None:
            raise PhmInputError(
                f"operating point '{op.name}' shares its capacity out per {op.by}, which only the in-memory engine "
                "does; audit with --engine memory, or use an operating point without '@'"
            )
        if op.kind == "score_ge":
            return AtLeast(self.score_source(m), float(op.value))
        return First(self.score_source(m), capacity_k(op, self.cells.n))

    def need_bands(self) -> tuple[Dim, list[str]]:
        """The dimension of each person's band of need (:func:`need_strata`) and the bands' labels."""
        below, labels = band_edges(self.cells.n, self.spec.need_strata)
        return Rank(self.high, tuple(below), descending=False), labels

    def score_bins(self, counts: Sequence[int]) -> dict[int, tuple[Dim, np.ndarray, np.ndarray]]:
        """For each number of bins, the cell dimension of :func:`~phm_audit.audit._stats.rank_bins` and each
        bin's lowest and highest score (the scores at the bins' edges, read in one pass for every count)."""
        source = self.score_source()
        out: dict[int, tuple[Dim, np.ndarray, np.ndarray]] = {}
        n = self.cells.n
        wanted: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        for b in counts:
            few = self.cells.distinct(source, b)
            if few is not None:
                out[b] = (Distinct(source, tuple(float(v) for v in few)), few.copy(), few.copy())
                continue
            edges = (np.arange(b + 1) * n + b - 1) // b
            nonempty = edges[1:] > edges[:-1]
            wanted[b] = (edges, edges[:-1][nonempty], edges[1:][nonempty] - 1)
        if wanted:
            positions = np.unique(np.concatenate([np.concatenate([lo, hi]) for _, lo, hi in wanted.values()]))
            found = dict(
                zip(positions.tolist(), self.cells.values_at(source, positions, descending=False), strict=True)
            )
            for b, (edges, lo, hi) in wanted.items():
                low, high = np.full(b, np.nan), np.full(b, np.nan)
                nonempty = edges[1:] > edges[:-1]
                low[nonempty] = [found[p] for p in lo.tolist()]
                high[nonempty] = [found[p] for p in hi.tolist()]
                out[b] = (Rank(source, tuple(int(e) for e in edges[1:-1]), descending=False), low, high)
        return out

    @cached_property
    def positive_need(self) -> int:
        """How many people have any need (one count per audit)."""
        cube = self.cells.cube([Positive(self.high)])
        return int(cube.counts[cube.index[:, 1] == 1].sum())

    def flagged_count(self, decision: Dim, op: OperatingPoint) -> int:
        """How many people a decision flags: its capacity, or a count (a cut-off), checked to be neither 0 nor N."""
        if isinstance(decision, First):
            return decision.k
        if isinstance(decision, Positive) and self.cells.rows:
            k = int(np.count_nonzero(self.cells.source(decision.source)))  # type: ignore[attr-defined]
        else:
            cube = self.cells.cube([decision])
            k = int(cube.counts[cube.index[:, 1] == 1].sum())
        _check_k(op, k, self.cells.n)
        return k

    @cached_property
    def primary(self) -> OperatingPoint:
        return parse_operating_point(self.spec.primary)

    @cached_property
    def single_attributes(self) -> list[Grouping]:
        """The groupings of single attributes (the intersections are too fine for some analyses)."""
        return self.groupings[: len(self.spec.attributes)]

    def flag(self, op: OperatingPoint, model: ScoredModel | None = None) -> np.ndarray:
        """Who ``op`` flags by ``model``'s scores (the current model by default); kept for reuse."""
        m = model or self.current
        key = (m.name, op.name)
        if key not in self._flags:
            self._flags[key] = flag(m.scores, op, places=self.places.get(op.by))
        return self._flags[key]

    def high_need(self, k: int) -> np.ndarray:
        """The ``k`` people of highest need (the tie rule of :func:`phm_audit.audit.flag`).

        By the order of need where an analysis has sorted for it already, else by an O(N) selection.
        """
        return top_k_mask(self.need, k, self.__dict__.get("need_order"))

    def each_group(
        self, kernel: Callable[..., Any], *, groupings: Sequence[Grouping] | None = None, sized: bool = True, **kw: Any
    ) -> str | None:
        """Call ``kernel`` once per grouping, with the rows, the model, the bootstrap and the pair's rng.

        ``sized`` passes the spec's ``min_group_size`` as well. A kernel that returns a note (it could
        not run, for example a target with one value) stops the loop: the note is kept and returned.
        """
        if sized:
            kw["min_group_size"] = self.spec.min_group_size
        for grouping in self.groupings if groupings is None else groupings:
            note = kernel(
                self.rows,
                model=self.current.name,
                grouping=grouping,
                n_boot=self.spec.n_boot,
                level=self.spec.confidence,
                rng=self.rng,
                **kw,
            )
            if isinstance(note, str) and note:
                self.notes.append(note)
                return note
        return None


def band_edges(n: int, edges: Sequence[float]) -> tuple[list[int], list[str]]:
    """How many people of ``n`` lie below each inner edge of the bands of need, and the bands' labels.

    A person of ascending rank r sits at percentile (r + 0.5) x 100 / N; the count below an edge is
    found from the edge (no array of N percentiles), with the same floating-point comparison.

    Examples
    --------
    >>> band_edges(10, (0.0, 80.0, 90.0, 100.0))
    ([8, 9], ['p0_80', 'p80_90', 'p90_100'])
    """

    def percentile(r: int) -> float:
        return (r + 0.5) * 100.0 / n

    below = []
    for cut in (float(e) for e in edges[1:-1]):
        count = min(max(math.ceil(cut * n / 100.0 - 0.5), 0), n)
        while count > 0 and percentile(count - 1) >= cut:
            count -= 1
        while count < n and percentile(count) < cut:
            count += 1
        below.append(count)
    return below, [f"p{edges[i]:g}_{edges[i + 1]:g}" for i in range(len(edges) - 1)]


def need_strata(need: np.ndarray, edges: Sequence[float]) -> tuple[np.ndarray, list[str]]:
    """Each person's band of need (percentiles of the whole population) and the bands' labels.

    A person of ascending rank r (ties in input order) sits at percentile (r + 0.5) x 100 / N, and in
    the band whose edges hold it (:func:`band_edges`). The ranks are not sorted for: the people below
    each inner edge are found by one selection (:func:`~phm_audit.audit._stats.lowest_counts_masks`).
    """
    below, labels = band_edges(need.size, edges)
    strata = (~lowest_counts_masks(need, np.asarray(below, dtype=np.int64))).sum(axis=0).astype(np.int64)
    return strata, labels


@dataclass(frozen=True)
class Analysis:
    """One analysis of the registry.

    Parameters
    ----------
    name : str
        The name used in ``AuditSpec.analyses`` and the ``analysis`` column.
    needs : frozenset of str
        What it needs (see the module's docstring).
    run : callable
        ``run(context)`` adds rows, curves and notes to the context.
    per_model : bool, default True
        Run once per model (with ``context.model`` set) rather than once per audit.
    applies : callable, optional
        ``applies(context)`` is false where the analysis cannot run; it then adds its own note.
    """

    name: str
    needs: frozenset[str]
    run: Callable[[Context], None]
    per_model: bool = True
    applies: Callable[[Context], bool] = lambda _ctx: True


def _fairness(ctx: Context) -> None:
    from phm_audit.audit._fairness import fairness_rows

    bands, labels = ctx.need_bands()
    positive_need = ctx.positive_need
    plans = []
    for op in (parse_operating_point(o) for o in ctx.spec.operating_points):
        decision = ctx.decision(op)
        k = ctx.flagged_count(decision, op)
        reason = ""
        if positive_need < k:
            reason = (
                f"only {positive_need:,} people have any {ctx.high} but {k:,} are flagged, "
                "so 'high need' is not defined at this operating point"
            )
        plans.append((op, [decision, First(ctx.high, k), bands], reason))
    cubes = ctx.cells.cubes([(dims, []) for _, dims, _ in plans])  # one pass over the people in an engine
    for (op, _, reason), cube in zip(plans, cubes, strict=True):
        ctx.each_group(
            fairness_rows,
            cube=cube,
            stratum_labels=labels,
            operating_point=op.name,
            target=ctx.high,
            high_need_reason=reason,
        )


def _check_k(op: OperatingPoint, k: int, n: int) -> None:
    """A cut-off that flags nobody or everybody is refused (a capacity rule was checked by :func:`capacity_k`)."""
    if k == 0:
        raise PhmInputError(f"operating point '{op.name}' flags nobody (k = 0 of N = {n:,}); choose a lower cut-off")
    if k == n:
        raise PhmInputError(f"operating point '{op.name}' flags everybody (k = N = {n:,}); choose a higher cut-off")


def _calibration(ctx: Context) -> None:
    from phm_audit.audit._calibration import calibration_rows, weak_calibration_rows

    spec, model = ctx.spec, ctx.current
    needs = [t for t in ctx.targets if t != spec.cost_target and t in spec.need_targets]
    values = [spec.cost_target, *needs]
    bins = sorted(ctx.score_bins(sorted({spec.n_score_bins, 10, 100})).items())
    cubes = ctx.cells.cubes([([dim], values) for _, (dim, _, _) in bins])  # one pass over the people in an engine
    score_bins = {b: (cube, low, high) for (b, (_, low, high)), cube in zip(bins, cubes, strict=True)}
    ctx.each_group(
        calibration_rows, curves=ctx.curves, score_bins=score_bins, names=values, n_score_bins=spec.n_score_bins
    )
    if model.target is None:
        return
    if model.target not in ctx.cohort.columns:
        ctx.notes.append(f"{model.name}: its target '{model.target}' is not in the cohort; weak calibration skipped")
        return
    if not ctx.cells.rows:
        ctx.notes.append(
            f"{model.name}: weak calibration (slope, intercept, ICI) fits each person's score and needs rows; "
            f"not run on the {ctx.cells.engine} engine (audit in memory for it: --engine memory)"
        )
        return
    ctx.each_group(
        weak_calibration_rows,
        curves=ctx.curves,
        scores=model.scores,
        target=model.target,
        observed=ctx.numeric(model.target),
    )


def _thresholds(ctx: Context) -> None:
    from phm_audit.audit._sweep_rows import capacities, sweep_rows

    fractions, ks = capacities(ctx.cells.n, ctx.spec.sweep_fractions)
    edges = tuple(int(k) for k in ks)
    ctx.each_group(
        sweep_rows,
        groupings=ctx.single_attributes,
        cube=ctx.cells.cube([Rank(ctx.score_source(), edges), Rank(ctx.high, edges)], [ctx.high]),
        fractions=fractions,
        target=ctx.high,
    )


def alternatives(ctx: Context) -> dict[str, np.ndarray]:
    """The other models an allocation is compared with.

    ``AuditSpec.allocation_alternatives`` when given; otherwise every other model that ranks need: one
    declared ``kind="clinical"``, or one with a ``target`` of its own that is not a cost (see
    :func:`phm_audit.audit.is_cost_label`). Rules and supplied scores declare neither, so they are
    compared only when named.
    """
    model, named = ctx.current, ctx.spec.allocation_alternatives
    if named is not None:
        return {m.name: m.scores for m in ctx.models if m.name in named and m.name != model.name}
    return {
        m.name: m.scores
        for m in ctx.models
        if m.name != model.name
        and (m.kind == "clinical" or (m.target is not None and not is_cost_label(m.target, ctx.spec)))
    }


def _allocation(ctx: Context) -> None:
    from phm_audit.audit._allocation import counterfactual_rows

    flagged = ctx.flag(ctx.primary)
    others = alternatives(ctx)
    ctx.each_group(
        counterfactual_rows,
        sized=False,
        scores=ctx.current.scores,
        flagged=flagged,
        need=ctx.need,
        high_need=ctx.high_need(int(flagged.sum())),
        operating_point=ctx.primary.name,
        target=ctx.high,
        alternatives=others,
    )


def _raise_bar(ctx: Context) -> None:
    from phm_audit.audit._allocation import raise_bar_rows

    spec = ctx.spec
    k = int(ctx.flag(ctx.primary).sum())
    schedule = [max(1, round(k * (1 + spec.raise_bar_change) ** t)) for t in range(spec.raise_bar_steps + 1)]
    ctx.each_group(
        raise_bar_rows, sized=False, scores=ctx.current.scores, need=ctx.need, capacities=schedule, target=ctx.high
    )


def _referral_applies(ctx: Context) -> bool:
    if ctx.spec.referral_target in ctx.cohort.columns:
        return True
    ctx.notes.append(
        f"referral management needs the ground truth '{ctx.spec.referral_target}', which the cohort lacks; not analysed"
    )
    return False


def _referral(ctx: Context) -> None:
    from phm_audit.audit._allocation import referral_rows

    gate = parse_operating_point(ctx.spec.referral_gate)
    ctx.each_group(
        referral_rows,
        cube=ctx.cells.cube([Positive(ctx.spec.referral_target), ctx.decision(gate)]),
        operating_point=gate.name,
        target=ctx.spec.referral_target,
    )


def _net_benefit_applies(ctx: Context) -> bool:
    target = ctx.spec.net_benefit_target
    if not any(m.target == target for m in ctx.models):
        ctx.notes.append(f"net benefit needs a model whose scores are probabilities of {target}; none was audited")
        return False
    if target not in ctx.cohort.columns:
        ctx.notes.append(f"net benefit needs the outcome '{target}', which the cohort lacks; not analysed")
        return False
    return True


def _net_benefit(ctx: Context) -> None:
    from phm_audit.audit._net_benefit import net_benefit_rows

    target = ctx.spec.net_benefit_target
    if ctx.current.target != target:
        return
    ctx.each_group(net_benefit_rows, probabilities=ctx.current.scores, outcome=ctx.numeric(target), target=target)


def judgement_capacity(ctx: Context) -> int:
    """The one capacity the models are compared at: the primary operating point's.

    A capacity rule flags the same number of people whatever the scores, so any model gives it. A
    cut-off flags a number that depends on each model's scores; the comparison then uses the median
    of those numbers (the same whatever the models' order) and says so in a note.
    """
    counts = sorted(int(ctx.flag(ctx.primary, m).sum()) for m in ctx.models)
    if ctx.primary.is_capacity:
        return counts[0]
    k = counts[(len(counts) - 1) // 2]
    ctx.notes.append(
        f"judgement compares the models at one capacity; the primary operating point {ctx.primary.name} is a "
        f"cut-off that flags {counts[0]:,} to {counts[-1]:,} people by model, so they are compared at the "
        f"median, {k:,}"
    )
    return k


def _judgement(ctx: Context) -> None:
    from phm_audit.audit._judgement import judgement_rows

    ctx.notes.extend(
        judgement_rows(
            ctx.rows,
            models=ctx.models,
            groupings=ctx.groupings,
            need=ctx.need,
            cost=ctx.targets[ctx.spec.cost_target],
            k=judgement_capacity(ctx),
            operating_point=ctx.primary.name,
            need_target=ctx.high,
            cost_target=ctx.spec.cost_target,
            n_boot=ctx.spec.n_boot,
            level=ctx.spec.confidence,
            rng=lambda name: pair_rng(ctx.spec.seed, name, "judgement"),
        )
    )


def _label_choice(ctx: Context) -> None:
    from phm_audit.audit._label_choice import label_choice_rows

    assert ctx.label_scores is not None
    ctx.extra_models.extend(label_choice_rows(ctx, ctx.label_scores))


def _explanations(ctx: Context) -> None:
    from phm_audit.audit._explain import explain_rows_for

    seed = int(ctx.rng.integers(2**31 - 1))
    result = explain_rows_for(
        list(ctx.fitted),
        ctx.cohort,
        ctx.spec,
        sample_size=ctx.spec.explain_sample_size,
        background_size=ctx.spec.explain_background_size,
        seed=seed,
    )
    ctx.rows.extend(result.table())
    ctx.extra_models.extend(dict(m) for m in result.models)
    if len(result.curves()):
        ctx.curves.append(result.curves())
    ctx.notes.extend(result.notes)


#: Every analysis, in the order :func:`phm_audit.audit.audit` runs them.
REGISTRY: dict[str, Analysis] = {
    a.name: a
    for a in (
        Analysis("fairness", frozenset({"scores", "capacity"}), _fairness),
        Analysis("calibration", frozenset({"scores"}), _calibration),
        Analysis("thresholds", frozenset({"scores", "capacity"}), _thresholds),
        Analysis("allocation", frozenset({"scores", "capacity", "rows"}), _allocation),
        Analysis("raise_bar", frozenset({"scores", "capacity", "rows"}), _raise_bar),
        Analysis("referral", frozenset({"scores", "capacity"}), _referral, applies=_referral_applies),
        Analysis("net_benefit", frozenset({"probability", "rows"}), _net_benefit, applies=_net_benefit_applies),
        Analysis(
            "judgement",
            frozenset({"several models", "capacity", "rows"}),
            _judgement,
            per_model=False,
            applies=lambda ctx: len(ctx.models) > 1,
        ),
        Analysis(
            "label_choice",
            frozenset({"label scores", "capacity", "rows"}),
            _label_choice,
            per_model=False,
            applies=lambda ctx: ctx.label_scores is not None,
        ),
        Analysis(
            "explanations",
            frozenset({"fitted models", "rows"}),
            _explanations,
            per_model=False,
            applies=lambda ctx: bool(ctx.fitted),
        ),
    )
}
