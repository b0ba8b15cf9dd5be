"""Checks of a user's table before an audit, in the user's words: the file, its row numbers, every bad row.

Row numbers are those of the file as the user sees it: in a CSV file the header is row 1, so the first
person is row 2; a Parquet file has no header row, so its rows are called "data rows" from 1.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from phm_audit.exceptions import PhmInputError, PhmWarning

__all__ = ["check_outcome_columns", "check_score_column", "file_rows"]

#: Bad rows named in a message; the rest are counted.
SHOWN_ROWS = 5


def file_rows(positions: Sequence[int] | np.ndarray, path: str | Path) -> str:
    """Words for rows of the user's file, from 0-based positions in the table read from it.

    Parameters
    ----------
    positions : sequence of int
        0-based positions of the rows in the table as read (the file's order).
    path : str or Path
        The file (its extension says whether row 1 is a header).

    Returns
    -------
    str

    Examples
    --------
    >>> file_rows([0, 49, 60, 61, 62, 63, 70], "extract.csv")
    'rows 2, 51, 62, 63, 64 and 2 more of extract.csv (the header is row 1)'
    >>> file_rows([27], "cohort.parquet")
    'data row 28 of cohort.parquet'
    """
    pos = np.asarray(positions, dtype=np.int64)
    csv = Path(path).suffix.lower() == ".csv"
    numbers = pos + (2 if csv else 1)
    shown = ", ".join(str(int(x)) for x in numbers[:SHOWN_ROWS])
    more = f" and {pos.size - SHOWN_ROWS:,} more" if pos.size > SHOWN_ROWS else ""
    noun = ("row" if csv else "data row") + ("s" if pos.size > 1 else "")
    tail = " (the header is row 1)" if csv else ""
    return f"{noun} {shown}{more} of {Path(path).name}{tail}"


def check_score_column(table: pd.DataFrame, column: str, path: str | Path) -> np.ndarray:
    """A score column as float64, or an error naming every row that is not a number.

    Parameters
    ----------
    table : pandas.DataFrame
        The table as read from ``path``.
    column : str
    path : str or Path

    Returns
    -------
    ndarray of float64
    """
    raw = table[column]
    values = pd.to_numeric(raw, errors="coerce")
    bad = (values.isna() & raw.notna()).to_numpy()
    if bad.any():
        first = raw[bad].iloc[0]
        raise PhmInputError(
            f"score column '{column}' has {int(bad.sum()):,} non-numeric values (first '{first}'; "
            f"{file_rows(np.flatnonzero(bad), path)}); scores must be numbers"
        )
    array = values.to_numpy(np.float64)
    missing = ~np.isfinite(array)
    if missing.any():
        raise PhmInputError(
            f"score column '{column}' has {int(missing.sum()):,} missing or infinite scores "
            f"({file_rows(np.flatnonzero(missing), path)}); score everyone, or remove the people the model "
            "cannot score and say so"
        )
    return array


def check_outcome_columns(
    table: pd.DataFrame,
    columns: Mapping[str, str],
    path: str | Path,
    *,
    allow_negative: bool = False,
) -> None:
    """Refuse outcome columns that are not numbers, missing, negative, or (need) the same for everyone.

    Every problem of every column is reported at once, each with its count and the first rows of the
    file that hold it.

    Parameters
    ----------
    table : pandas.DataFrame
        The table as read from ``path`` (in the file's order).
    columns : mapping of str to str
        Column name to what it measures: ``"money"`` (a cost) or ``"need"``.
    path : str or Path
        The file, for row numbers.
    allow_negative : bool, default False
        Keep negative values (with a warning) instead of refusing them.

    Raises
    ------
    PhmInputError
        Listing every problem found.
    """
    problems: list[str] = []
    for column, role in columns.items():
        if column not in table.columns:
            continue
        raw = table[column]
        values = raw.astype(np.float64) if raw.dtype == bool else pd.to_numeric(raw, errors="coerce")
        array = values.to_numpy(np.float64)
        text = (values.isna() & raw.notna()).to_numpy()
        missing = ~np.isfinite(array) & ~text
        if text.any():
            problems.append(
                f"'{column}' has {int(text.sum()):,} values that are not numbers (first '{raw[text].iloc[0]}'; "
                f"{file_rows(np.flatnonzero(text), path)})"
            )
        if missing.any():
            problems.append(
                f"'{column}' has {int(missing.sum()):,} missing or infinite values "
                f"({file_rows(np.flatnonzero(missing), path)}); fill or remove them"
            )
        negative = np.isfinite(array) & (array < 0)
        what = "a cost" if role == "money" else "need"
        if negative.any():
            where = file_rows(np.flatnonzero(negative), path)
            if allow_negative:
                warnings.warn(
                    f"'{column}' has {int(negative.sum()):,} negative values ({where}); kept because of "
                    f"--allow-negative: shares of {what} that include them can exceed 100%",
                    PhmWarning,
                    stacklevel=2,
                )
            else:
                problems.append(
                    f"'{column}' has {int(negative.sum()):,} negative values ({where}); {what} cannot be "
                    "negative: correct them, or add --allow-negative to keep them"
                )
        finite = array[np.isfinite(array)]
        if role == "need" and finite.size and np.all(finite == finite[0]):
            problems.append(
                f"need column '{column}' is {finite[0]:g} for every person: people with high need cannot be "
                "told apart, so no rate at equal need is defined; name a column that measures need"
            )
    if problems:
        raise PhmInputError(f"{Path(path).name}: " + "; ".join(problems))
