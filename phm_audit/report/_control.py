"""The settings of disclosure control, the reasons it gives, and its two rules for one count: small or rounded.

See :mod:`phm_audit.report._disclosure` for the rules in full.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from phm_audit.exceptions import PhmInputError, PhmTypeError, closest
from phm_audit.report._protection import round_counts

__all__ = [
    "COMPLEMENT_SMALL",
    "OWN_SMALL",
    "PRESETS",
    "PROTECTS",
    "SECONDARY_REASON",
    "DisclosureControl",
    "Preset",
    "complement_reason",
    "is_small",
    "rounded_counts",
    "sentence",
    "suppressed_reason",
]


class Preset(NamedTuple):
    """The rules of one secure data environment: the threshold, the rounding, and whose rules they are."""

    threshold: int
    rounding: int
    source: str


#: The output rules of the secure data environments phm-audit knows, by the name ``--disclosure`` takes.
PRESETS: dict[str, Preset] = {
    "opensafely": Preset(7, 5, "OpenSAFELY's output-checking rules"),
    "nhs-sde": Preset(9, 5, "NHS England Secure Data Environment's output rules"),
}


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
    preset_name : str, optional
        The secure data environment whose rules these are (a key of :data:`PRESETS`); set by
        :meth:`preset`, and then ``threshold`` and ``rounding`` must be that environment's.

    Examples
    --------
    >>> DisclosureControl().describe()
    'counts of 1 to 7 suppressed; other counts rounded to the nearest 5; rates recomputed from rounded counts'
    >>> DisclosureControl.preset("nhs-sde").threshold
    9
    """

    threshold: int = 7
    rounding: int = 5
    enabled: bool = True
    preset_name: str | None = None

    @classmethod
    def preset(cls, name: str) -> DisclosureControl:
        """The rules of a secure data environment's output checkers, by name.

        Parameters
        ----------
        name : str
            ``"opensafely"`` (OpenSAFELY's output-checking rules: counts of 1 to 7 suppressed, others
            rounded to the nearest 5) or ``"nhs-sde"`` (NHS England Secure Data Environment's output
            rules: counts under 10, that is 1 to 9, suppressed, others rounded to the nearest 5). Under
            both, rates and shares are recomputed from the rounded counts and complementary suppression
            protects every suppressed cell.

        Returns
        -------
        DisclosureControl

        Raises
        ------
        PhmInputError
            ``name`` is not a known preset (the message names the closest and lists them all).

        Examples
        --------
        >>> DisclosureControl.preset("opensafely").describe()
        "OpenSAFELY's output-checking rules: counts of 1 to 7 suppressed; other counts rounded to the nearest 5; \
rates recomputed from rounded counts"
        """
        rules = PRESETS.get(name) if isinstance(name, str) else None
        if rules is None:
            raise PhmInputError(
                f"unknown disclosure preset {name!r}{closest(str(name), PRESETS)}; the presets are "
                + ", ".join(PRESETS)
            )
        return cls(threshold=rules.threshold, rounding=rules.rounding, preset_name=name)

    def __post_init__(self) -> None:
        for name, low in (("threshold", 0), ("rounding", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                raise PhmTypeError(f"DisclosureControl {name} must be a whole number; got {value!r}")
            if value < low:
                raise PhmInputError(f"DisclosureControl {name} must be at least {low}; got {value}")
        if not isinstance(self.enabled, bool):
            raise PhmTypeError(f"DisclosureControl enabled must be True or False; got {self.enabled!r}")
        if self.preset_name is not None:
            rules = PRESETS.get(self.preset_name) if isinstance(self.preset_name, str) else None
            if rules is None:
                raise PhmInputError(
                    f"DisclosureControl preset_name must be one of {', '.join(PRESETS)}; got {self.preset_name!r}"
                    f"{closest(str(self.preset_name), PRESETS)}"
                )
            if (self.threshold, self.rounding, self.enabled) != (rules.threshold, rules.rounding, True):
                raise PhmInputError(
                    f"the {self.preset_name} preset suppresses counts of 1 to {rules.threshold} and rounds to "
                    f"{rules.rounding}, with control on; got threshold {self.threshold}, rounding {self.rounding}, "
                    f"enabled {self.enabled}: use DisclosureControl.preset({self.preset_name!r}), or leave out "
                    "preset_name for other settings"
                )

    def describe(self) -> str:
        """The rules in one line, for reports."""
        if not self.enabled:
            return "disclosure control is OFF: exact counts are published, including counts of 1 to 7 people"
        rounding = "not rounded" if self.rounding == 1 else f"rounded to the nearest {self.rounding}"
        rules = (
            f"counts of 1 to {self.threshold} suppressed; other counts {rounding}; rates recomputed from rounded counts"
        )
        return rules if self.preset_name is None else f"{PRESETS[self.preset_name].source}: {rules}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy, with the rules in words (and the preset's name, when they are a preset's)."""
        out: dict[str, Any] = {
            "enabled": self.enabled,
            "threshold": self.threshold,
            "rounding": self.rounding,
            "rules": self.describe(),
        }
        if self.preset_name is not None:
            out["preset"] = self.preset_name
        return out


def sentence(text: str) -> str:
    """``text`` with its first letter in capitals and the rest as written (``str.capitalize`` would lower
    "OpenSAFELY" and "NHS").

    Examples
    --------
    >>> sentence("counts of 1 to 9 suppressed under NHS England's rules")
    "Counts of 1 to 9 suppressed under NHS England's rules"
    """
    return text[:1].upper() + text[1:]


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
