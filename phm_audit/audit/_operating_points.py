"""Operating points: one grammar for every decision an audit looks at, and one rule for who is flagged.

An operating point is a referral rule. Four kinds are understood, each written ``kind:value``:

================  ========================================================================
``top_pct:3``     the top 3% of scores: a capacity of k = ceil(3/100 x N) people
``top_k:2000``    the 2,000 highest scores: a capacity of k = 2,000 people
``per_100k:45``   45 places per 100,000 people: a capacity of k = round(45 x N / 100,000)
``score_ge:0.3``  everyone whose score is at least 0.3 (a cut-off, not a capacity)
================  ========================================================================

Each also has a canonical name, used in results and accepted as input: ``top_3pct``,
``top_0.5pct``, ``top_k_2000``, ``per_100k_45``, ``score_ge_0.3``.

A capacity can be shared out per place or practice by naming the column after ``@``:
``top_pct:3@practice_id`` flags the top 3% of each practice's list, ``per_100k:45@practice_id``
gives each practice round(45 x its list / 100,000) places, ``top_k:20@practice_id`` 20 places each
(canonical names ``top_3pct@practice_id`` and so on). A cut-off is the same everywhere, so
``score_ge`` takes no place.

The tie rule
------------
Capacity rules (``top_pct``, ``top_k``, ``per_100k``) flag exactly k people. People are ranked by
descending score and, among equal scores, by ascending position in the input, i.e. the order of
``np.argsort(-scores, kind="stable")``; the first k in that order are flagged. This is
deterministic and always gives exactly the capacity, so people tied at the boundary can fall on
either side of it: the earlier rows are in, the later rows out. A cut-off (``score_ge:x``) flags
everyone with score >= x: ties at the cut are in, so the number flagged is whatever it is.
Every kernel of :mod:`phm_audit.audit` (including the threshold sweep and "the k people with the
highest need") applies this same rule; per place, it applies within each place.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from numbers import Real
from typing import Any, Literal, cast, get_args

import numpy as np

from phm_audit._checks import as_scores
from phm_audit.exceptions import PhmInputError, PhmTypeError, closest

__all__ = [
    "OPERATING_POINT_FORMS",
    "OperatingPoint",
    "OperatingPointKind",
    "capacity_for_share",
    "capacity_k",
    "describe_point",
    "flag",
    "parse_operating_point",
    "resolve_k",
]

OperatingPointKind = Literal["top_pct", "top_k", "score_ge", "per_100k"]
_KINDS: tuple[str, ...] = get_args(OperatingPointKind)
_CAPACITY_KINDS = frozenset({"top_pct", "top_k", "per_100k"})

#: The accepted forms, shown in every error message about an operating point.
OPERATING_POINT_FORMS = (
    "top_pct:3 (the top 3% of scores), top_k:2000 (the 2,000 highest scores), "
    "per_100k:45 (45 places per 100,000 people), score_ge:0.3 (every score >= 0.3); "
    "or the canonical names top_3pct, top_k_2000, per_100k_45, score_ge_0.3; "
    "add @COLUMN to a capacity to share it out per place (top_pct:3@practice_id)"
)

# Floating-point slack when turning a share of N into a whole number of people: 7% of 100 is
# 7.000000000000001 in binary arithmetic and must give 7, not 8. Real shares never come within
# a relative 1e-12 of a whole number of people without being meant as one.
_RTOL = 1e-12

_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?"
_GRAMMAR = re.compile(rf"^(?P<kind>[a-z_0-9]+?)\s*:\s*(?P<value>{_NUMBER})$")
_CANONICAL = (
    (re.compile(rf"^top_(?P<value>{_NUMBER})pct$"), "top_pct"),
    (re.compile(rf"^top_k_(?P<value>{_NUMBER})$"), "top_k"),
    (re.compile(rf"^per_100k_(?P<value>{_NUMBER})$"), "per_100k"),
    (re.compile(rf"^score_ge_(?P<value>{_NUMBER})$"), "score_ge"),
)


def _format_number(value: float) -> str:
    """Shortest text that reads back as ``value``, without a trailing ``.0``: 3.0 -> '3', 0.5 -> '0.5'."""
    if value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return repr(value)


@dataclass(frozen=True)
class OperatingPoint:
    """A referral rule: a capacity (top %, top k, places per 100,000) or a score cut-off.

    Parameters
    ----------
    kind : {"top_pct", "top_k", "score_ge", "per_100k"}
        ``top_pct``: the top ``value`` percent of scores, k = ceil(value / 100 x N);
        ``top_k``: the ``value`` highest scores; ``per_100k``: ``value`` places per 100,000 people,
        k = round(value x N / 100,000) with halves rounded up; ``score_ge``: every score >= ``value``.
    value : float
        The percentage (in (0, 100]), the number of people (a whole number >= 1), the places per
        100,000 (> 0) or the cut-off (any finite number).
    by : str, optional
        A column of places (``practice_id``): the capacity is applied within each place, in
        proportion to its size for ``top_pct`` and ``per_100k`` and as ``value`` places each for
        ``top_k``. Not for ``score_ge``.

    Raises
    ------
    PhmInputError
        If ``kind`` is unknown or ``value`` is out of range for it.

    See Also
    --------
    parse_operating_point : build one from text such as ``"top_pct:3"``.
    flag : who an operating point flags (the tie rule is stated there).

    Examples
    --------
    >>> op = OperatingPoint("top_pct", 3)
    >>> op.name
    'top_3pct'
    >>> op.to_dict()
    {'kind': 'top_pct', 'value': 3.0, 'name': 'top_3pct'}
    >>> OperatingPoint("score_ge", 0.3).name
    'score_ge_0.3'
    """

    kind: OperatingPointKind
    value: float
    by: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.kind, str) or self.kind not in _KINDS:
            raise PhmInputError(
                f"unknown operating point kind {self.kind!r}{closest(str(self.kind), _KINDS)}; "
                f"kinds: {', '.join(_KINDS)}"
            )
        if isinstance(self.value, bool) or not isinstance(self.value, Real | np.integer | np.floating):
            raise PhmTypeError(
                f"operating point value must be a number, e.g. OperatingPoint('top_pct', 3); "
                f"got {self.value!r} of type {type(self.value).__name__}"
            )
        value = float(self.value)
        object.__setattr__(self, "value", value)
        shown = f"{self.kind}:{_format_number(value) if math.isfinite(value) else value}"
        if not math.isfinite(value):
            raise PhmInputError(f"operating point '{shown}': the value must be a finite number")
        if self.kind == "top_pct" and not 0 < value <= 100:
            raise PhmInputError(
                f"operating point '{shown}': top_pct is a percentage of the population and must lie in (0, 100], "
                "e.g. top_pct:3 for the top 3%"
            )
        if self.kind == "top_k" and (value < 1 or not value.is_integer()):
            raise PhmInputError(
                f"operating point '{shown}': top_k is a number of people and must be a whole number >= 1, "
                "e.g. top_k:2000"
            )
        if self.kind == "per_100k" and value <= 0:
            raise PhmInputError(
                f"operating point '{shown}': per_100k is a number of places per 100,000 people and must be > 0, "
                "e.g. per_100k:45"
            )
        if self.by is not None:
            if not isinstance(self.by, str) or not self.by.strip():
                raise PhmInputError(
                    f"operating point '{shown}': the place after '@' must be a column name, e.g. {shown}@practice_id"
                )
            object.__setattr__(self, "by", self.by.strip())
            if self.kind == "score_ge":
                raise PhmInputError(
                    f"operating point '{shown}@{self.by}': a cut-off is the same in every place, so score_ge takes "
                    "no '@place'; share out a capacity instead, e.g. top_pct:3@" + self.by
                )

    @property
    def name(self) -> str:
        """Canonical name: ``top_3pct``, ``top_0.5pct``, ``top_k_2000``, ``score_ge_0.3``, ``per_100k_45``."""
        number = _format_number(self.value)
        place = f"@{self.by}" if self.by else ""
        if self.kind == "top_pct":
            return f"top_{number}pct{place}"
        return f"{self.kind}_{number}{place}"

    @property
    def is_capacity(self) -> bool:
        """True for the rules that flag a fixed number of people (``top_pct``, ``top_k``, ``per_100k``)."""
        return self.kind in _CAPACITY_KINDS

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description: ``{"kind": ..., "value": ..., "name": ...}`` (and ``"by"`` per place)."""
        out: dict[str, Any] = {"kind": self.kind, "value": self.value, "name": self.name}
        if self.by:
            out["by"] = self.by
        return out

    def __str__(self) -> str:
        return self.name


def parse_operating_point(text: str | OperatingPoint) -> OperatingPoint:
    """Read an operating point written in the grammar ``kind:value`` or as a canonical name.

    Parameters
    ----------
    text : str or OperatingPoint
        ``top_pct:3``, ``top_k:2000``, ``per_100k:45``, ``score_ge:0.3``, or a canonical name
        (``top_3pct``, ``top_k_2000``, ``per_100k_45``, ``score_ge_0.3``). Surrounding blanks and
        letter case are ignored. An :class:`OperatingPoint` is returned unchanged.

    Returns
    -------
    OperatingPoint

    Raises
    ------
    PhmInputError
        If the text does not follow the grammar (the message names the text and lists the accepted
        forms) or the value is out of range for its kind.
    PhmTypeError
        If ``text`` is neither a string nor an :class:`OperatingPoint`.

    Examples
    --------
    >>> parse_operating_point("top_pct:3")
    OperatingPoint(kind='top_pct', value=3.0)
    >>> parse_operating_point("top_0.5pct").name
    'top_0.5pct'
    >>> parse_operating_point("per_100k:45").name
    'per_100k_45'
    >>> parse_operating_point("top 3 percent")
    Traceback (most recent call last):
    ...
    phm_audit.exceptions.PhmInputError: operating point 'top 3 percent' is not understood; ...
    """
    if isinstance(text, OperatingPoint):
        return text
    if not isinstance(text, str):
        raise PhmTypeError(
            f"an operating point must be a string such as 'top_pct:3' or an OperatingPoint; "
            f"got {text!r} of type {type(text).__name__}"
        )
    rule, at, place = text.partition("@")
    by = place.strip() if at else None  # a column name keeps its letter case
    if at and not by:
        raise PhmInputError(
            f"operating point '{text}': name the column of places after '@', e.g. top_pct:3@practice_id"
        )
    cleaned = rule.strip().lower()
    match = _GRAMMAR.match(cleaned)
    if match is not None:
        kind = match["kind"]
        if kind not in _KINDS:
            raise PhmInputError(
                f"operating point '{text}' has an unknown kind '{kind}'{closest(kind, _KINDS)}; "
                f"write one of: {OPERATING_POINT_FORMS}"
            )
        return OperatingPoint(cast(OperatingPointKind, kind), float(match["value"]), by)
    for pattern, canonical_kind in _CANONICAL:
        match = pattern.match(cleaned)
        if match is not None:
            return OperatingPoint(cast(OperatingPointKind, canonical_kind), float(match["value"]), by)
    raise PhmInputError(f"operating point '{text}' is not understood; write one of: {OPERATING_POINT_FORMS}")


def capacity_for_share(share: float, n: int) -> int:
    """Capacity of a share of the population: k = ceil(share x n), forgiving floating-point fuzz.

    Parameters
    ----------
    share : float
        Share of the population, in [0, 1].
    n : int
        Population size.

    Returns
    -------
    int
        ``ceil(share * n)``, except that a product within a relative 1e-12 of a whole number is that
        whole number (0.07 x 100 is 7 people, not 8).

    Examples
    --------
    >>> capacity_for_share(0.07, 100)
    7
    >>> capacity_for_share(0.03, 1001)
    31
    """
    x = float(share) * int(n)
    nearest = round(x)
    if abs(x - nearest) <= _RTOL * max(1.0, abs(x)):
        return int(nearest)
    return math.ceil(x)


def _capacity(op: OperatingPoint, n: int) -> int:
    if op.kind == "top_pct":
        return capacity_for_share(op.value / 100.0, n)
    if op.kind == "top_k":
        return int(op.value)
    # per_100k: nearest whole number of places, halves rounded up
    x = op.value * n / 100_000.0
    return math.floor(x + 0.5 + _RTOL * max(1.0, abs(x)))


def resolve_k(op: str | OperatingPoint, scores: Any) -> int:
    """How many people an operating point flags among ``scores``.

    Parameters
    ----------
    op : str or OperatingPoint
        The operating point (see :func:`parse_operating_point`).
    scores : array-like of float
        One finite score per person (higher = higher risk).

    Returns
    -------
    int
        k: ceil(pct / 100 x N) for ``top_pct``; the value for ``top_k``; round(value x N / 100,000)
        (halves up) for ``per_100k``; the number of scores >= the cut for ``score_ge``.

    Raises
    ------
    PhmInputError
        If the operating point flags nobody or everybody, or its capacity exceeds the population;
        the message names the operating point, k and N.

    Examples
    --------
    >>> import numpy as np
    >>> scores = np.arange(1000.0)
    >>> resolve_k("top_pct:3", scores), resolve_k("per_100k:450", scores), resolve_k("score_ge:990", scores)
    (30, 5, 10)
    """
    op = parse_operating_point(op)
    values = as_scores(scores, None, "scores", verb="has", noun="values")
    n = values.size
    if op.kind == "score_ge":
        k = int(np.count_nonzero(values >= op.value))
        if k == 0:
            raise PhmInputError(
                f"operating point '{op.name}' flags nobody (k = 0 of N = {n:,}): the highest score is "
                f"{values.max():g}; choose a lower cut-off"
            )
        if k == n:
            raise PhmInputError(
                f"operating point '{op.name}' flags everybody (k = N = {n:,}): the lowest score is "
                f"{values.min():g}; choose a higher cut-off"
            )
        return k
    return capacity_k(op, n)


def capacity_k(op: OperatingPoint, n: int) -> int:
    """How many people a capacity rule flags in a population of ``n``; the checks of :func:`resolve_k`."""
    k = _capacity(op, n)
    if k > n:
        raise PhmInputError(
            f"operating point '{op.name}' asks for a capacity of k = {k:,} people but the population has only "
            f"N = {n:,}; choose a smaller capacity"
        )
    if k == n:
        raise PhmInputError(f"operating point '{op.name}' flags everybody (k = N = {n:,}); choose a smaller capacity")
    if k == 0:
        raise PhmInputError(
            f"operating point '{op.name}' flags nobody: its capacity rounds to k = 0 in a population of "
            f"N = {n:,}; choose a larger capacity"
        )
    return k


def flag(scores: Any, op: str | OperatingPoint, *, places: Any = None) -> np.ndarray:
    """Who an operating point flags: a boolean mask, one entry per person.

    Tie rule: a capacity rule (``top_pct``, ``top_k``, ``per_100k``) flags exactly k people
    (k from :func:`resolve_k`; for ``top_pct`` k = ceil(pct / 100 x N)), the first k in the order of
    descending score and then ascending position in the input, i.e. the first k of
    ``np.argsort(-scores, kind="stable")``. People tied at the boundary are therefore split by their
    position: earlier rows in, later rows out. A cut-off ``score_ge:x`` flags everyone with
    score >= x (ties at the cut are in).

    Parameters
    ----------
    scores : array-like of float
        One finite score per person (higher = higher risk).
    op : str or OperatingPoint
        The operating point.
    places : array-like, optional
        One place (practice) per person; needed when the operating point has ``@place``. Each place
        gets its own capacity (see :class:`OperatingPoint`) and the tie rule applies within it.

    Returns
    -------
    ndarray of bool
        True for the people flagged.

    Raises
    ------
    PhmInputError
        If scores are not finite, or the operating point flags nobody or everybody or exceeds the
        population (see :func:`resolve_k`).

    Examples
    --------
    >>> import numpy as np
    >>> scores = np.array([0.9, 0.5, 0.5, 0.5, 0.1])
    >>> flag(scores, "top_k:2")  # the tie at 0.5 goes to the earlier row
    array([ True,  True, False, False, False])
    >>> flag(scores, "score_ge:0.5")  # ties at the cut are in
    array([ True,  True,  True,  True, False])
    >>> flag(scores, "top_pct:50")  # ceil(0.5 x 5) = 3 people
    array([ True,  True,  True, False, False])
    """
    op = parse_operating_point(op)
    values = as_scores(scores, None, "scores", verb="has", noun="values")
    if op.by is not None:
        return _flag_per_place(values, op, places)
    k = resolve_k(op, values)
    if op.kind == "score_ge":
        return values >= op.value
    n = values.size
    # O(N) selection instead of a full sort: the k-th largest score is the boundary; everyone above it
    # is in and the ties at it are taken in input order, which is exactly the stable descending order.
    boundary = np.partition(values, n - k)[n - k]
    mask = values > boundary
    missing = k - int(np.count_nonzero(mask))
    mask[np.flatnonzero(values == boundary)[:missing]] = True
    return mask


def _capacities(op: OperatingPoint, sizes: np.ndarray) -> np.ndarray:
    """:func:`_capacity` for many population sizes at once (one per place)."""
    n = sizes.astype(np.float64)
    if op.kind == "top_pct":
        x = op.value / 100.0 * n
        nearest = np.rint(x)
        return np.where(np.abs(x - nearest) <= _RTOL * np.maximum(1.0, x), nearest, np.ceil(x)).astype(np.int64)
    if op.kind == "top_k":
        return np.full(sizes.shape, int(op.value), dtype=np.int64)
    x = op.value * n / 100_000.0
    return np.floor(x + 0.5 + _RTOL * np.maximum(1.0, x)).astype(np.int64)


def _flag_per_place(values: np.ndarray, op: OperatingPoint, places: Any) -> np.ndarray:
    """Flag each place's own capacity: one sort by (place, descending score, input position)."""
    if places is None:
        raise PhmInputError(
            f"operating point '{op.name}' shares its capacity out per '{op.by}': pass that column "
            f"(flag(scores, op, places=cohort['{op.by}']))"
        )
    where = np.asarray(places)
    if where.shape != values.shape:
        raise PhmInputError(
            f"operating point '{op.name}': '{op.by}' has {where.size:,} values for {values.size:,} scores; "
            "give one place per person"
        )
    if where.dtype.kind not in "biu":
        if _isna(where).any():
            raise PhmInputError(
                f"operating point '{op.name}': '{op.by}' has missing values; every person needs a place"
            )
        where = np.unique(where.astype(str), return_inverse=True)[1]
    labels, code = np.unique(where, return_inverse=True)
    sizes = np.bincount(code)
    k = _capacities(op, sizes)
    over = np.flatnonzero(k > sizes)
    if over.size:
        i = int(over[0])
        raise PhmInputError(
            f"operating point '{op.name}' asks for {int(k[i]):,} places in {op.by} {labels[i]!s}, which has only "
            f"{int(sizes[i]):,} people ({over.size:,} place(s) too small); choose a smaller capacity"
        )
    n, total = values.size, int(k.sum())
    if total == 0:
        raise PhmInputError(
            f"operating point '{op.name}' flags nobody: every {op.by}'s capacity rounds to 0; choose a larger capacity"
        )
    if total == n:
        raise PhmInputError(f"operating point '{op.name}' flags everybody (k = N = {n:,}); choose a smaller capacity")
    order = np.lexsort((np.arange(n), -values, code))
    starts = np.cumsum(sizes) - sizes
    ranked_code = code[order]
    rank = np.arange(n) - starts[ranked_code]
    mask = np.zeros(n, dtype=bool)
    mask[order] = rank < k[ranked_code]
    return mask


def _isna(values: np.ndarray) -> np.ndarray:
    """Missing entries of an object or float array (None, NaN, pandas NA)."""
    import pandas as pd

    return np.asarray(pd.isna(values), dtype=bool)


#: The other names the ``operating_point`` column holds, besides the canonical names of decisions.
_OTHER_POINTS = (
    (re.compile(r"^step_(?P<step>\d+)_k_(?P<value>\d+|under_\d+)$"), "step", "step {step} (capacity {value})"),
    (re.compile(rf"^score_bins_(?P<value>{_NUMBER})$"), "score_bins", "{value} bins of score"),
    (re.compile(rf"^pt_(?P<value>{_NUMBER})$"), "threshold_probability", "a threshold probability of {value}"),
)


def _words(op: OperatingPoint) -> str:
    number = _format_number(op.value)
    words = {
        "top_pct": f"the top {number}%",
        "top_k": f"the top {int(op.value):,} people",
        "per_100k": f"{number} places per 100,000 people",
        "score_ge": f"a score of at least {number}",
    }[op.kind]
    return f"{words} of each {op.by}" if op.by else words


def describe_point(name: str) -> dict[str, Any]:
    """What an ``operating_point`` value of the metrics table means, as structured fields.

    Returns a dictionary with ``kind`` (an operating point's kind, or ``step`` of raising the bar,
    ``score_bins`` of calibration, ``threshold_probability`` of net benefit, ``all`` where the row
    holds for every decision, ``""`` where none applies), ``value`` (the number in the name, or None),
    ``place`` (the column a capacity is shared over, or None), ``fraction`` (the share of the
    population flagged, for ``top_pct``), ``step`` (for ``step``) and ``words`` (plain words for readers).
    The report reads these; it never parses the names.

    Examples
    --------
    >>> describe_point("top_3pct")["words"], describe_point("top_3pct")["fraction"]
    ('the top 3%', 0.03)
    >>> describe_point("top_k_20@practice_id")["words"]
    'the top 20 people of each practice_id'
    >>> describe_point("step_2_k_581")["words"]
    'step 2 (capacity 581)'
    """
    out: dict[str, Any] = {"kind": "", "value": None, "place": None, "fraction": None, "step": None, "words": name}
    if name in ("", "all"):
        return {**out, "kind": name, "words": "every decision" if name == "all" else ""}
    for pattern, kind, words in _OTHER_POINTS:
        m = pattern.match(name)
        if m:
            parts = m.groupdict()
            step = int(parts["step"]) if "step" in parts else None
            hidden = parts["value"].startswith("under_")  # a capacity hidden by disclosure control
            value = None if hidden else float(parts["value"])
            shown = {**parts, "value": parts["value"].replace("_", " ")}
            return {**out, "kind": kind, "value": value, "step": step, "words": words.format(**shown)}
    try:
        op = parse_operating_point(name)
    except PhmInputError:
        return out
    fraction = op.value / 100 if op.kind == "top_pct" else None
    return {**out, "kind": op.kind, "value": op.value, "place": op.by, "fraction": fraction, "words": _words(op)}
