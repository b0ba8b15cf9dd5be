"""Disclosure control of text: counts of people in free text, in operating-point labels and in provenance
(rule 7 of :mod:`phm_audit.report._disclosure`)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from phm_audit.report._control import DisclosureControl, is_small, rounded_counts

__all__ = ["disclose_label", "disclose_provenance", "scrub_text"]

_NUMBER = re.compile(r"(?<![\w.,])(\d{1,3}(?:,\d{3})+|\d+)(?![\w%]|[.,]\d)")


def scrub_text(text: str, control: DisclosureControl) -> str:
    """Treat whole numbers in free text as counts: 1..threshold become ``*``, others are rounded."""
    if not control.enabled or not text:
        return text

    def sub(match: re.Match[str]) -> str:
        raw = match.group(1)
        value = int(raw.replace(",", ""))
        if 1 <= value <= control.threshold:
            return "*"
        rounded = int(rounded_counts(np.array([float(value)]), control)[0])
        return f"{rounded:,}" if "," in raw else str(rounded)

    return _NUMBER.sub(sub, text)


#: Counts of people inside operating-point labels (``step_1_k_588``: the capacity after a step).
_LABEL_COUNT = re.compile(r"(?<=_k_)(\d+)(?![\d.])")


def disclose_label(labels: pd.Series, control: DisclosureControl) -> pd.Series:
    """Operating-point labels whose count of people (``_k_588``) is rounded, or ``_k_under_N`` when 1 to threshold.

    Examples
    --------
    >>> disclose_label(pd.Series(["step_1_k_588", "step_2_k_3", "top_3pct"]), DisclosureControl()).tolist()
    ['step_1_k_590', 'step_2_k_under_8', 'top_3pct']
    """
    if not control.enabled:
        return labels

    def sub(match: re.Match[str]) -> str:
        value = int(match.group(1))
        if 1 <= value <= control.threshold:
            return f"under_{control.threshold + 1}"
        return str(int(rounded_counts(np.array([float(value)]), control)[0]))

    mapping = {lab: _LABEL_COUNT.sub(sub, str(lab)) for lab in dict.fromkeys(labels.astype(str))}
    return labels.astype(str).map(mapping)


def disclose_provenance(provenance: Mapping[str, Any] | None, control: DisclosureControl) -> dict[str, Any]:
    """Provenance with its counts of people (``n``, ``n_audited``, ``n_trained``, ...) rounded or suppressed.

    Examples
    --------
    >>> disclose_provenance({"n_audited": 1527, "n_trained": 3, "seed": 7}, DisclosureControl())
    {'n_audited': 1525, 'n_trained': None, 'seed': 7}
    """
    out = dict(provenance or {})
    if not control.enabled:
        return out
    for key, value in out.items():
        if (
            (key == "n" or str(key).startswith("n_"))
            and isinstance(value, int | np.integer)
            and not isinstance(value, bool)
        ):
            v = np.array([float(value)])
            out[key] = None if is_small(v, control)[0] else int(rounded_counts(v, control)[0])
    return out
