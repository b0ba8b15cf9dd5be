"""The settings of disclosure control, the reasons it gives, and its two rules for one count: small or rounded.

See :mod:`phm_audit.report._disclosure` for the rules in full.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from phm_audit.exceptions import PhmInputError, PhmTypeError
from phm_audit.report._protection import round_counts

__all__ = [
    "COMPLEMENT_SMALL",
    "OWN_SMALL",
    "PROTECTS",
    "SECONDARY_REASON",
    "DisclosureControl",
    "complement_reason",
    "is_small",
    "rounded_counts",
    "suppressed_reason",
]


@dataclass(frozen=True)
class DisclosureControl:
    """Settings of statistical disclosure control.

    Parameters
    ----------
    threshold : int, default 7
        Counts of 1 to ``threshold`` people are suppressed.
    rounding : int, default 5
        Other counts are rounded to the nearest multiple of this (1: no rounding).
    enabled : bool, default True
        ``False`` publishes exact counts; every report made so says so at the top.

    Examples
    --------
    >>> DisclosureControl().describe()
    'counts of 1 to 7 suppressed; other counts rounded to the nearest 5; rates recomputed from rounded counts'
    """

    threshold: int = 7
    rounding: int = 5
    enabled: bool = True

    def __post_init__(self) -> None:
        for name, low in (("threshold", 0), ("rounding", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                raise PhmTypeError(f"DisclosureControl {name} must be a whole number; got {value!r}")
            if value < low:
                raise PhmInputError(f"DisclosureControl {name} must be at least {low}; got {value}")
        if not isinstance(self.enabled, bool):
            raise PhmTypeError(f"DisclosureControl enabled must be True or False; got {self.enabled!r}")

    def describe(self) -> str:
        """The rules in one line, for reports."""
        if not self.enabled:
            return "disclosure control is OFF: exact counts are published, including counts of 1 to 7 people"
        rounding = "not rounded" if self.rounding == 1 else f"rounded to the nearest {self.rounding}"
        return (
            f"counts of 1 to {self.threshold} suppressed; other counts {rounding}; rates recomputed from rounded counts"
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy, with the rules in words."""
        return {
            "enabled": self.enabled,
            "threshold": self.threshold,
            "rounding": self.rounding,
            "rules": self.describe(),
        }


#: Why a hidden row is hidden, strongest first (a derived row takes the strongest of its sources).
OWN_SMALL, COMPLEMENT_SMALL, PROTECTS = 1, 2, 3

#: The ``reason`` of a value hidden only so that a smaller suppressed one cannot be worked out.
SECONDARY_REASON = "suppressed (disclosure control): hidden so that a smaller suppressed group cannot be derived"


def complement_reason(control: DisclosureControl) -> str:
    """The ``reason`` of a rate hidden because its complement (1 - rate, e.g. fnr for tpr) counts few people."""
    return (
        "suppressed (disclosure control): its complement (1 minus this rate) counts fewer than "
        f"{control.threshold + 1} people"
    )


def suppressed_reason(control: DisclosureControl) -> str:
    """The ``reason`` given to a suppressed value."""
    return f"suppressed (disclosure control): fewer than {control.threshold + 1} people"


def rounded_counts(counts: np.ndarray, control: DisclosureControl) -> np.ndarray:
    """Round non-negative counts to the nearest multiple, halves up; never into 1..threshold or to 0."""
    return round_counts(counts, control.threshold, control.rounding)


def is_small(counts: np.ndarray, control: DisclosureControl) -> np.ndarray:
    return np.isfinite(counts) & (counts >= 0.5) & (counts < control.threshold + 0.5)
