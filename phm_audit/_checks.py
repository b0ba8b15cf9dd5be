"""Checks shared by every stage: columns of a table, a vector of scores, a whole number.

Each check names the argument, the value and the fix; a wrong type is a :class:`PhmTypeError`, a
wrong value a :class:`PhmInputError`. A shared helper: it imports no stage.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from phm_audit.exceptions import PhmInputError, PhmTypeError, closest

__all__ = ["as_scores", "check_columns", "check_int"]


def check_columns(frame: pd.DataFrame, columns: Iterable[str], what: str, *, fix: str = "") -> None:
    """Raise one :class:`PhmInputError` naming every column of ``columns`` that ``frame`` lacks.

    Parameters
    ----------
    frame : pandas.DataFrame
        The table (a cohort, an extract).
    columns : iterable of str
        The columns needed.
    what : str
        What needs them, for the message (``"protected attribute"``, ``"model 'x'"``).
    fix : str, optional
        How to get them, appended to the message.

    Raises
    ------
    PhmInputError
        Naming each missing column with the closest existing one.

    Examples
    --------
    >>> check_columns(pd.DataFrame({"cost_next": [1.0]}), ["cost_nxt"], "cost target")
    Traceback (most recent call last):
    ...
    phm_audit.exceptions.PhmInputError: cost target: column(s) not found: 'cost_nxt' (did you mean 'cost_next'?)
    """
    have = [str(c) for c in frame.columns]
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        hints = "; ".join(f"'{c}'{closest(c, have)}" for c in missing)
        raise PhmInputError(f"{what}: column(s) not found: {hints}" + (f"; {fix}" if fix else ""))


def as_scores(values: object, n: int | None, what: str, *, verb: str = "returned", noun: str = "scores") -> np.ndarray:
    """Return ``values`` as a finite float64 vector (of length ``n``), or say what is wrong with it.

    Parameters
    ----------
    values : array-like
        One number per person: what a model returned, or an argument (a one-column DataFrame is
        read as its column; numbers written as text are read as numbers).
    n : int or None
        People expected; None checks only that there is someone.
    what : str
        Who gave the values, the subject of the message (``"model 'x'"``, ``"scores"``).
    verb, noun : str
        The message's verb and plural noun: ``"model 'x' returned 3 scores for 4 people"`` by
        default; an argument reads better as ``verb="has", noun="values"``.

    Returns
    -------
    ndarray of float64, shape (n,)

    Raises
    ------
    PhmInputError
        Wrong shape or length, nobody, non-numeric, missing or infinite values: the message counts
        the bad values and names the first bad row (rows counted from 1).

    Examples
    --------
    >>> as_scores([0.2, 1], 2, "model 'x'")
    array([0.2, 1. ])
    >>> as_scores([0.2, float("nan"), float("inf")], None, "scores", verb="has", noun="values")
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    phm_audit.exceptions.PhmInputError: scores has 2 missing or infinite values (the first at row 2: nan); ...
    """
    one = noun.removesuffix("s")
    if isinstance(values, pd.DataFrame) and values.shape[1] == 1:
        values = values.iloc[:, 0]
    try:
        arr = np.asarray(values)
    except (TypeError, ValueError) as exc:
        raise PhmInputError(f"{what} {verb} {type(values).__name__}, not an array of {noun} ({exc})") from None
    if arr.ndim != 1:
        raise PhmInputError(
            f"{what} {verb} an array of shape {arr.shape}; expected one {one} per person, a one-dimensional "
            f"array of shape ({'N' if n is None else n},)"
        )
    if n is None and arr.shape[0] == 0:
        raise PhmInputError(f"{what} is empty; pass one {one} per person")
    if n is not None and arr.shape[0] != n:
        raise PhmInputError(f"{what} {verb} {arr.shape[0]:,} {noun} for {n:,} people; expected one per person")
    if arr.dtype.kind not in "biuf":
        raw = pd.Series(arr)
        converted = pd.to_numeric(raw, errors="coerce")
        bad = (converted.isna() & raw.notna()).to_numpy()
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise PhmInputError(
                f"{what} {verb} non-numeric {noun} (first: '{arr[i]}' at row {i + 1}); {noun} must be numbers"
            )
        arr = converted.to_numpy(np.float64)
    out = np.ascontiguousarray(arr, dtype=np.float64)
    bad = ~np.isfinite(out)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise PhmInputError(
            f"{what} {verb} {int(bad.sum()):,} missing or infinite {noun} (the first at row {i + 1}: {out[i]}); "
            f"every {one} must be a finite number"
        )
    return out


def check_int(value: object, name: str, low: int | None = None) -> int:
    """Return ``value`` as an int, refusing anything but a whole number of at least ``low``.

    Parameters
    ----------
    value : object
        What the caller passed (``True`` and ``2.0`` are not whole numbers here).
    name : str
        The argument's name, for the message.
    low : int, optional
        The smallest value allowed; default no bound.

    Returns
    -------
    int

    Raises
    ------
    PhmTypeError
        If ``value`` is not an int (a numpy integer is one).
    PhmInputError
        If it is below ``low``.

    Examples
    --------
    >>> check_int(200, "n_boot", 0)
    200
    >>> check_int(500, "n", 2000)
    Traceback (most recent call last):
    ...
    phm_audit.exceptions.PhmInputError: n must be at least 2,000; got 500
    """
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise PhmTypeError(f"{name} must be a whole number; got {value!r}")
    if low is not None and value < low:
        raise PhmInputError(f"{name} must be at least {low:,}; got {value:,}")
    return int(value)
