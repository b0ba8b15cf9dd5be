"""What the user declares about an audit, apart from how it is computed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from phm_audit._checks import check_int
from phm_audit.exceptions import PhmInputError, PhmTypeError

__all__ = ["AuditSpec", "ScoredModel", "is_cost_label"]

DEFAULT_ATTRIBUTES = ("ethnicity", "imd_quintile", "sex", "age_band", "digitally_excluded")
DEFAULT_INTERSECTIONS = (("ethnicity", "imd_quintile"),)
DEFAULT_OPERATING_POINTS = ("top_pct:1", "top_pct:3", "top_pct:5")
DEFAULT_NEED_TARGETS = ("n_conditions_next", "need_true_next")
#: Bands of need (percentiles of the whole population) for "equally sick, equally flagged".
DEFAULT_NEED_STRATA = (0.0, 80.0, 90.0, 95.0, 99.0, 100.0)
#: The equity attributes of NHS England's Core20PLUS5 approach, where audited: deprivation (the most
#: deprived fifth is IMD quintile 1), ethnicity, and their intersection.
DEFAULT_EQUITY_ATTRIBUTES = ("imd_quintile", "ethnicity", "ethnicity x imd_quintile")
#: Every analysis ``audit`` can run (the registry of :mod:`phm_audit.audit._analyses`, in its order); those
#: a cohort cannot support are skipped with a note; label choice and explanations run when their
#: inputs (a learner's scores on each label, fitted models) are given to :func:`phm_audit.audit.audit`.
ANALYSES = (
    "fairness",
    "calibration",
    "thresholds",
    "allocation",
    "raise_bar",
    "referral",
    "net_benefit",
    "judgement",
    "label_choice",
    "explanations",
)


@dataclass(frozen=True)
class AuditSpec:
    """The questions an audit asks: which groups, compared with whom, at which decisions, against what.

    Parameters
    ----------
    attributes : sequence of str
        Protected attributes audited one at a time.
    intersections : sequence of sequence of str
        Attribute combinations audited jointly (``("ethnicity", "imd_quintile")``).
    reference : mapping of str to str
        Reference group per attribute (or intersection name ``"ethnicity x imd_quintile"``, with the
        group written ``"White | 3"``). Default: the largest group, except for ``imd_quintile``,
        where it is quintile 5 (the least deprived), as inequality is conventionally reported; an
        intersection's default is made of its components' references (``"White | 5"``).
    operating_points : sequence of str
        Decisions to audit, in the grammar ``top_pct:3``, ``top_k:2000``, ``score_ge:0.3``,
        ``per_100k:45``.
    cost_target : str
        The cost-like outcome (``cost_next``).
    need_targets : sequence of str
        Need-like outcomes (``n_conditions_next``; ``need_true_next`` where the cohort has ground
        truth). Targets missing from the cohort are skipped and the result says so.
    high_need_target : str, optional
        The need that defines "high need" for tpr, fnr, fpr and ppv; default the ground truth
        ``need_true_next`` when present, otherwise the first need target present.
    min_group_size : int
        Groups smaller than this are reported as undefined, with the reason.
    n_boot : int
        Bootstrap replicates for intervals (0: none).
    confidence : float
        Interval level.
    seed : int
        Seed of the bootstrap.
    n_score_bins : int
        Score bins for the ratios at equal score (20 by default). Finer bins leave too few people of a
        small group in each: with percentiles, a group of 5% of 30,000 people has about 15 people a bin,
        and the bootstrap of a mean of so few heavy-tailed costs gives intervals that are too narrow
        (on ``no_gap``, 30,000 people, 20 seeds: with percentiles 18 of 20 label-gap intervals held the
        null value for Asian people; with 20 bins 19 or 20 of 20 for each group, and the spread of the
        estimates across seeds matched the intervals). The curves of mean cost and need by score keep
        deciles and percentiles.
    need_strata : sequence of float
        Percentile edges of need for selection at equal need.
    analyses : sequence of str
        Which analyses to run (see :data:`ANALYSES`).
    primary_operating_point : str, optional
        The decision used by the analyses that take one (allocation, referral, judgement, raising
        the bar); default ``top_pct:3`` when listed, otherwise the first operating point.
    sweep_fractions : sequence of float, optional
        Capacities (shares of the population) of the threshold sweep; default 100 points from 0.5%
        to 50%.
    raise_bar_change : float
        Relative change of capacity at each step of raising the bar (-0.02: 2% fewer places a year).
    raise_bar_steps : int
        Number of steps after the start (the primary operating point).
    referral_gate : str
        Operating point of the referral-management gate (``top_pct:20``: the top fifth of scores are
        referred onward).
    referral_target : str
        Ground truth of need for specialist care (``specialist_need_next``).
    net_benefit_target : str
        Binary outcome of the decision curves (``emergency_admission_next``).
    allocation_alternatives : sequence of str, optional
        The models each model's allocation is compared with (flagging by them instead). Default
        (None): every other model that ranks need: declared ``kind="clinical"``, or with a ``target``
        that is not a cost (:func:`is_cost_label`).
    explain_sample_size : int, optional
        People explained per model by the ``explanations`` analysis; default ``min(5000, N)``.
    explain_background_size : int, default 200
        People in the SHAP explainer's background sample.
    equity_attributes : sequence of str, optional
        Attributes (or intersections, ``"ethnicity x imd_quintile"``) the report's headline ranks
        first, as the inequalities the audit is about. Default (None): NHS England's Core20PLUS5,
        :data:`DEFAULT_EQUITY_ATTRIBUTES`, where audited. Other attributes (age, sex: clinical risk
        factors as well as protected characteristics) stay fully audited in the detail and reach the
        headline only when named here, or when their effect is a label gap.

    Examples
    --------
    >>> AuditSpec().equity
    ('imd_quintile', 'ethnicity', 'ethnicity x imd_quintile')
    >>> AuditSpec(attributes=["sex", "age_band"], intersections=[], equity_attributes=["sex"]).equity
    ('sex',)
    """

    attributes: tuple[str, ...] = DEFAULT_ATTRIBUTES
    intersections: tuple[tuple[str, ...], ...] = DEFAULT_INTERSECTIONS
    reference: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    operating_points: tuple[str, ...] = DEFAULT_OPERATING_POINTS
    cost_target: str = "cost_next"
    need_targets: tuple[str, ...] = DEFAULT_NEED_TARGETS
    high_need_target: str | None = None
    min_group_size: int = 50
    n_boot: int = 200
    confidence: float = 0.95
    seed: int = 0
    n_score_bins: int = 20
    need_strata: tuple[float, ...] = DEFAULT_NEED_STRATA
    analyses: tuple[str, ...] = ANALYSES
    primary_operating_point: str | None = None
    sweep_fractions: tuple[float, ...] | None = None
    raise_bar_change: float = -0.02
    raise_bar_steps: int = 5
    referral_gate: str = "top_pct:20"
    referral_target: str = "specialist_need_next"
    net_benefit_target: str = "emergency_admission_next"
    equity_attributes: tuple[str, ...] | None = None
    allocation_alternatives: tuple[str, ...] | None = None
    explain_sample_size: int | None = None
    explain_background_size: int = 200

    def __post_init__(self) -> None:
        object.__setattr__(self, "attributes", tuple(_names(self.attributes, "attributes")))
        object.__setattr__(self, "intersections", tuple(tuple(_names(i, "intersections")) for i in self.intersections))
        object.__setattr__(
            self, "reference", MappingProxyType({str(k): str(v) for k, v in dict(self.reference).items()})
        )
        object.__setattr__(self, "operating_points", tuple(str(o) for o in self.operating_points))
        object.__setattr__(self, "need_targets", tuple(_names(self.need_targets, "need_targets")))
        object.__setattr__(self, "need_strata", tuple(float(x) for x in self.need_strata))
        object.__setattr__(self, "analyses", tuple(_names(self.analyses, "analyses")))
        if self.allocation_alternatives is not None:
            alternatives = tuple(_names(self.allocation_alternatives, "allocation_alternatives"))
            object.__setattr__(self, "allocation_alternatives", alternatives)
        if self.equity_attributes is not None:
            equity = tuple(_names(self.equity_attributes, "equity_attributes"))
            audited = list(self.attributes) + [" x ".join(i) for i in self.intersections]
            for name in equity:
                if name not in audited:
                    from phm_audit.exceptions import closest

                    raise PhmInputError(
                        f"equity attribute '{name}' is not audited{closest(name, audited)}; "
                        f"audited attributes: {', '.join(audited)}"
                    )
            object.__setattr__(self, "equity_attributes", equity)
        for name in self.analyses:
            if name not in ANALYSES:
                from phm_audit.exceptions import closest

                raise PhmInputError(
                    f"unknown analysis '{name}'{closest(name, ANALYSES)}; analyses: {', '.join(ANALYSES)}"
                )
        if self.sweep_fractions is not None:
            fr = np.asarray(self.sweep_fractions, dtype=np.float64)
            if fr.size == 0 or np.any((fr <= 0) | (fr > 1)):
                raise PhmInputError("sweep_fractions must be shares of the population in (0, 1]")
            object.__setattr__(self, "sweep_fractions", tuple(float(x) for x in fr))
        if not -1 < self.raise_bar_change < 1:
            raise PhmInputError(f"raise_bar_change must lie between -1 and 1 (e.g. -0.02); got {self.raise_bar_change}")
        check_int(self.raise_bar_steps, "raise_bar_steps", 1)
        if not self.attributes and not self.intersections:
            raise PhmInputError("an audit needs at least one protected attribute (attributes=...)")
        for it in self.intersections:
            if len(it) < 2:
                raise PhmInputError(f"an intersection needs two or more attributes; got {list(it)}")
        if not self.operating_points:
            raise PhmInputError("an audit needs at least one operating point, e.g. 'top_pct:3'")
        check_int(self.min_group_size, "min_group_size", 1)
        if self.explain_sample_size is not None:
            check_int(self.explain_sample_size, "explain_sample_size", 1)
        check_int(self.explain_background_size, "explain_background_size", 1)
        check_int(self.n_boot, "n_boot", 0)
        check_int(self.n_score_bins, "n_score_bins", 2)
        if not 0.5 < self.confidence < 1:
            raise PhmInputError(f"confidence must lie between 0.5 and 1, e.g. 0.95; got {self.confidence}")
        strata = np.asarray(self.need_strata)
        if strata.size < 2 or strata[0] != 0 or strata[-1] != 100 or np.any(np.diff(strata) <= 0):
            raise PhmInputError(
                f"need_strata must rise from 0 to 100, e.g. (0, 80, 90, 95, 99, 100); got {list(self.need_strata)}"
            )
        # operating points are checked against the grammar here, so a typo fails before any work
        from phm_audit.audit._operating_points import parse_operating_point

        for op in self.operating_points:
            parse_operating_point(op)
        parse_operating_point(self.referral_gate)
        if self.primary_operating_point is not None:
            parse_operating_point(self.primary_operating_point)

    @property
    def primary(self) -> str:
        """The operating point used by single-decision analyses."""
        if self.primary_operating_point is not None:
            return self.primary_operating_point
        from phm_audit.audit._operating_points import parse_operating_point

        names = [parse_operating_point(o).name for o in self.operating_points]
        return self.operating_points[names.index("top_3pct")] if "top_3pct" in names else self.operating_points[0]

    @property
    def equity(self) -> tuple[str, ...]:
        """The equity attributes: those given, or the audited ones of :data:`DEFAULT_EQUITY_ATTRIBUTES`."""
        if self.equity_attributes is not None:
            return self.equity_attributes
        audited = set(self.attributes) | {" x ".join(i) for i in self.intersections}
        return tuple(a for a in DEFAULT_EQUITY_ATTRIBUTES if a in audited)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy of the spec."""
        return {
            "attributes": list(self.attributes),
            "intersections": [list(i) for i in self.intersections],
            "reference": dict(self.reference),
            "operating_points": list(self.operating_points),
            "cost_target": self.cost_target,
            "need_targets": list(self.need_targets),
            "high_need_target": self.high_need_target,
            "min_group_size": self.min_group_size,
            "n_boot": self.n_boot,
            "confidence": self.confidence,
            "seed": self.seed,
            "n_score_bins": self.n_score_bins,
            "need_strata": list(self.need_strata),
            "analyses": list(self.analyses),
            "primary_operating_point": self.primary,
            "sweep_fractions": None if self.sweep_fractions is None else list(self.sweep_fractions),
            "raise_bar_change": self.raise_bar_change,
            "raise_bar_steps": self.raise_bar_steps,
            "referral_gate": self.referral_gate,
            "referral_target": self.referral_target,
            "net_benefit_target": self.net_benefit_target,
            "equity_attributes": list(self.equity),
            "explain_sample_size": self.explain_sample_size,
            "explain_background_size": self.explain_background_size,
            "allocation_alternatives": None
            if self.allocation_alternatives is None
            else list(self.allocation_alternatives),
        }


def is_cost_label(label: str, spec: AuditSpec) -> bool:
    """Whether a model's label (what it was trained to predict) is a cost.

    The spec's cost target is one, and so is any label naming a cost (``avoidable_cost_next``).
    The audit compares a model with those trained on a health outcome, and the report calls a gap
    that a cost label makes a label-choice gap.

    Examples
    --------
    >>> spec = AuditSpec()
    >>> is_cost_label("cost_next", spec), is_cost_label("avoidable_cost_next", spec)
    (True, True)
    >>> is_cost_label("emergency_admission_next", spec)
    False
    """
    return label == spec.cost_target or "cost" in label


def _names(values: Sequence[str] | str, what: str) -> list[str]:
    if isinstance(values, str):
        raise PhmTypeError(f"{what} must be a list of column names, not the single string '{values}'")
    return [str(v) for v in values]


@dataclass(frozen=True)
class ScoredModel:
    """A model's scores on the audited people, with what the audit needs to know about the model.

    Parameters
    ----------
    name : str
        Model name, as it appears in results.
    scores : array-like of float
        One score per person of the audited cohort, in its row order; higher = higher risk.
    kind : str, default "supplied"
        ``actuarial``, ``clinical``, ``rule``, ``judgement`` or ``supplied``.
    target : str, optional
        The outcome the score predicts on its own scale (a probability or an expected value of that
        column); enables weak calibration (calibration-in-the-large, slope, ICI).
    label : str, optional
        The outcome the model was trained on, or a rule ranks by (``cost_next`` for last year's cost),
        whether or not the score is on its scale; default ``target``. The report's headline reads it
        to tell a cost label from a need label.
    """

    name: str
    scores: np.ndarray
    kind: str = "supplied"
    target: str | None = None
    label: str | None = None

    def __post_init__(self) -> None:
        arr = np.asarray(self.scores)
        if arr.dtype.kind not in "biuf":
            raise PhmInputError(f"scores of model '{self.name}' must be numeric; got values of type {arr.dtype}")
        arr = arr.astype(np.float64, copy=True).ravel()
        arr.setflags(write=False)
        object.__setattr__(self, "scores", arr)
