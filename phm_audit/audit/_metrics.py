"""The registry of published metrics: one declaration per metric, read by disclosure control and reports.

Every metric an audit publishes is declared here once: its kind (``count``, ``rate``, ``share``,
``ratio``, ``difference``, ``money``, ``score``), which counts it is made of, which side is harmful, a
plain label and a format. Disclosure control reads the kind from here and **fails closed**: a metric
without a declaration raises :class:`UndeclaredMetricError` where it would be published, so a new
metric can never be published raw.

What disclosure control does with each declaration:

- ``count``: the value is a number of people; suppressed at 1 to 7, rounded otherwise (``n_role="value"``).
- ``rate`` or ``share`` with ``n_role="denominator"``: ``n`` counts the denominator, so the numerator is
  ``value x n``; both are protected and the rate recomputed from rounded counts.
- ``share`` with ``n_role="numerator"``: ``n`` counts the numerator (a group's count over a total), so
  the denominator is ``n / value``.
- anything else: a statistic of many people, published when its ``n`` is published.

Names that hold another name (``flagged_share_if_by_<model>``, ``selection_rate_need_<band>``) are
declared as families, by prefix.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from phm_audit.exceptions import PhmAuditError

__all__ = ["KINDS", "METRICS", "MetricDecl", "UndeclaredMetricError", "check_declared", "lookup"]

#: The kinds a metric can be.
KINDS = ("count", "rate", "share", "ratio", "difference", "money", "score")


class UndeclaredMetricError(PhmAuditError, LookupError):
    """A metric about to be published has no declaration in the registry (a defect of phm-audit)."""


@dataclass(frozen=True)
class MetricDecl:
    """One published metric.

    Parameters
    ----------
    name : str
        The metric's name, or a prefix when ``family`` is true.
    kind : str
        One of :data:`KINDS`.
    label : str
        Plain words for readers.
    analysis : str, default "*"
        The analysis this declaration is for (``"*"``: any); one name can mean a rate in one analysis
        and a share of a total in another.
    n_role : str, default "none"
        What the row's ``n`` counts: ``"denominator"`` (of a rate), ``"numerator"`` (of a share of a
        total), ``"value"`` (the value itself is a count) or ``"none"``.
    numerator, denominator : str, optional
        The metrics (or counts) the value is made of, in words a reader can follow.
    harmful : str, default "none"
        ``"higher"`` or ``"lower"`` when that side is worse for a group, else ``"none"``.
    fmt : str, default "number"
        ``"percent"``, ``"number"``, ``"count"`` or ``"money"``.
    family : bool, default False
        ``name`` is a prefix naming a family of metrics.
    """

    name: str
    kind: str
    label: str
    analysis: str = "*"
    n_role: str = "none"
    numerator: str | None = None
    denominator: str | None = None
    harmful: str = "none"
    fmt: str = "number"
    family: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"metric {self.name}: kind must be one of {KINDS}; got {self.kind!r}")
        if self.n_role not in ("denominator", "numerator", "value", "none"):
            raise ValueError(f"metric {self.name}: unknown n_role {self.n_role!r}")
        if (self.kind == "count") != (self.n_role == "value"):
            raise ValueError(f"metric {self.name}: a count, and only a count, has n_role 'value'")


def _d(name: str, kind: str, label: str, **kw: object) -> MetricDecl:
    return MetricDecl(name, kind, label, **kw)  # type: ignore[arg-type]


_RATE = {"n_role": "denominator", "fmt": "percent"}

#: Every published metric.
METRICS: tuple[MetricDecl, ...] = (
    # --- counts of people -----------------------------------------------------------------------------
    _d("n", "count", "people in the group", n_role="value", fmt="count"),
    _d("dropped", "count", "people no longer flagged", n_role="value", fmt="count", harmful="higher"),
    _d("people_left_out", "count", "people left out of the calibration bins", n_role="value", fmt="count"),
    _d("replacement_swaps", "count", "people swapped in by the need-based allocation", n_role="value", fmt="count"),
    _d("equal_tpr_change_in_flagged", "count", "change in people flagged for equal tpr", n_role="value", fmt="count"),
    _d("sample_size", "count", "people in the explained sample", n_role="value", fmt="count"),
    _d("background_size", "count", "people in the explainer's background", n_role="value", fmt="count"),
    # --- rates of counts, n the denominator ------------------------------------------------------------
    _d("selection_rate", "rate", "share of the group flagged", numerator="flagged", denominator="n", **_RATE),
    _d("population_share", "share", "share of the population in the group", numerator="n", denominator="all", **_RATE),
    _d("flagged_share", "share", "share of the group's people among those flagged", **_RATE),
    _d("high_need_share", "share", "share of the group among those with the highest need", **_RATE),
    _d(
        "tpr",
        "rate",
        "share of high-need people flagged",
        numerator="flagged high need",
        denominator="high need",
        harmful="lower",
        **_RATE,
    ),
    _d("fnr", "rate", "share of high-need people not flagged", harmful="higher", **_RATE),
    _d("fpr", "rate", "share of other people flagged", **_RATE),
    _d("ppv", "rate", "share of flagged people with high need", **_RATE),
    _d("unmet_need_rate", "rate", "share of high-need people not flagged", harmful="higher", **_RATE),
    _d(
        "unmet_need_rate_if_by_",
        "rate",
        "unmet need if flagged by another score",
        harmful="higher",
        family=True,
        **_RATE,
    ),
    _d(
        "selection_rate_need_",
        "rate",
        "share flagged within a band of need",
        numerator="flagged in band",
        denominator="band",
        harmful="lower",
        family=True,
        **_RATE,
    ),
    _d("dropped_share", "rate", "share of those flagged no longer flagged", harmful="higher", **_RATE),
    _d(
        "refused_rate_among_needing", "rate", "share of people needing care who were refused", harmful="higher", **_RATE
    ),
    _d("equal_tpr_tpr", "rate", "tpr with thresholds set for equal tpr", **_RATE),
    # --- shares of a total, n the numerator --------------------------------------------------------------
    _d(
        "flagged_share",
        "share",
        "the group's share of those flagged",
        analysis="allocation",
        n_role="numerator",
        fmt="percent",
    ),
    _d(
        "flagged_share_if_by_",
        "share",
        "the group's share of those flagged by another score",
        analysis="allocation",
        n_role="numerator",
        fmt="percent",
        family=True,
    ),
    _d(
        "needing_share",
        "share",
        "the group's share of people needing care",
        analysis="referral",
        n_role="numerator",
        fmt="percent",
    ),
    # --- other shares (of need or cost, many people each) -------------------------------------------------
    _d("replacement_share", "share", "share of those flagged replaced by the need-based allocation", fmt="percent"),
    _d(
        "unmet_need_share",
        "share",
        "share of high-need people left unflagged after raising the bar",
        fmt="percent",
        harmful="higher",
    ),
    _d("refused_share", "share", "the group's share of refusals", fmt="percent"),
    _d("need_captured", "share", "share of the group's need among those flagged", fmt="percent"),
    _d("share_of_need_captured", "share", "share of all need among those flagged", fmt="percent"),
    _d("share_of_cost_captured", "share", "share of all cost among those flagged", fmt="percent"),
    _d("share_of_score", "share", "share of the score explained by a feature", fmt="percent"),
    # --- ratios -------------------------------------------------------------------------------------------
    _d("selection_ratio_at_equal_need", "ratio", "selection ratio at equal need", harmful="lower"),
    _d(
        "flagged_to_high_need_ratio",
        "ratio",
        "flagged share over high-need share",
        numerator="flagged_share",
        denominator="high_need_share",
        harmful="lower",
    ),
    _d("selection_rate_ratio", "ratio", "selection rate over the reference group's", harmful="lower"),
    _d("tpr_ratio", "ratio", "tpr over the reference group's", harmful="lower"),
    _d("fnr_ratio", "ratio", "fnr over the reference group's", harmful="higher"),
    _d("fpr_ratio", "ratio", "fpr over the reference group's"),
    _d("ppv_ratio", "ratio", "ppv over the reference group's"),
    _d("refused_rate_ratio", "ratio", "refusal rate over the reference group's", harmful="higher"),
    _d("label_gap_at_equal_score", "ratio", "need ratio over cost ratio at equal score", harmful="higher"),
    _d("need_ratio_at_equal_score", "ratio", "need at equal score over the reference group's", harmful="higher"),
    _d("cost_ratio_at_equal_score", "ratio", "cost at equal score over the reference group's"),
    _d("observed_expected_ratio", "ratio", "observed over expected"),
    # --- differences --------------------------------------------------------------------------------------
    _d("selection_rate_difference", "difference", "selection rate minus the reference group's", harmful="lower"),
    _d("tpr_difference", "difference", "tpr minus the reference group's", harmful="lower"),
    _d("fnr_difference", "difference", "fnr minus the reference group's", harmful="higher"),
    _d("fpr_difference", "difference", "fpr minus the reference group's"),
    _d("ppv_difference", "difference", "ppv minus the reference group's"),
    _d("unmet_need_gap", "difference", "unmet need rate minus the reference group's", harmful="higher"),
    _d(
        "unmet_need_gap_if_by_",
        "difference",
        "unmet need gap if flagged by another score",
        harmful="higher",
        family=True,
    ),
    _d("unmet_need_gap_change_if_by_", "difference", "change in the unmet need gap with another score", family=True),
    _d("net_benefit_minus_treat_all", "difference", "net benefit minus treating everyone"),
    _d("calibration_in_the_large", "difference", "mean observed minus mean predicted"),
    _d("gap_contribution", "difference", "a feature's part of the score gap"),
    _d("score_gap_at_equal_need", "difference", "score gap at equal need"),
    # --- scores and other statistics ----------------------------------------------------------------------
    _d("calibration_intercept", "score", "calibration intercept"),
    _d("calibration_slope", "score", "calibration slope"),
    _d("e50", "score", "median calibration error"),
    _d("e90", "score", "90th percentile calibration error"),
    _d("emax", "score", "largest calibration error"),
    _d("ici", "score", "integrated calibration index"),
    _d("bins_left_out", "score", "score bins left out (bins, not people)"),
    _d("auroc_high_cost", "score", "AUROC for high cost"),
    _d("auroc_high_need", "score", "AUROC for high need"),
    _d("net_benefit", "score", "net benefit"),
    _d("net_benefit_treat_all", "score", "net benefit of treating everyone (a transformed prevalence)"),
    _d("net_benefit_treat_none", "score", "net benefit of treating no one"),
    _d("additivity_max_error", "score", "largest additivity error of the explainer"),
    _d("base_value", "score", "the explainer's base value"),
    _d("mean_abs_shap", "score", "mean absolute SHAP value"),
    _d("mean_shap", "score", "mean SHAP value"),
    _d("mean_score", "score", "mean score"),
    _d("need_strata_excluded", "score", "need strata left out (strata, not people)"),
    _d("proxy_auroc", "score", "how well a feature predicts the group (AUROC)"),
    _d("proxy_auroc_all_features", "score", "how well all features predict the group (AUROC)"),
)


@lru_cache(maxsize=1)
def _index() -> tuple[dict[tuple[str, str], MetricDecl], tuple[MetricDecl, ...]]:
    exact: dict[tuple[str, str], MetricDecl] = {}
    for d in METRICS:
        if not d.family:
            key = (d.analysis, d.name)
            if key in exact:
                raise ValueError(f"metric {d.name} is declared twice for analysis {d.analysis}")
            exact[key] = d
    # longest prefix first, analysis-specific before any
    families = tuple(sorted((d for d in METRICS if d.family), key=lambda d: (-len(d.name), d.analysis == "*")))
    return exact, families


def lookup(metric: str, analysis: str = "*") -> MetricDecl:
    """The declaration of ``metric`` in ``analysis``.

    Parameters
    ----------
    metric : str
    analysis : str, default "*"

    Returns
    -------
    MetricDecl

    Raises
    ------
    UndeclaredMetricError
        The metric is not declared: it must not be published.

    Examples
    --------
    >>> lookup("flagged_share", "allocation").n_role
    'numerator'
    >>> lookup("flagged_share", "fairness").n_role
    'denominator'
    >>> lookup("selection_rate_need_p95_99").kind
    'rate'
    """
    exact, families = _index()
    found = exact.get((analysis, metric)) or exact.get(("*", metric))
    if found is not None:
        return found
    for d in families:
        if metric.startswith(d.name) and d.analysis in (analysis, "*"):
            return d
    raise UndeclaredMetricError(
        f"metric '{metric}' (analysis '{analysis}') is not declared in phm_audit.audit._metrics; a metric "
        "must be declared (kind, counts, label) before it can be published"
    )


def check_declared(pairs: Iterable[tuple[str, str]]) -> None:
    """Raise :class:`UndeclaredMetricError` for the first ``(analysis, metric)`` without a declaration."""
    for analysis, metric in pairs:
        lookup(str(metric), str(analysis))
